//! Run locks: a file per running run, locked by the process that runs it.
//!
//! The operating system drops a process's file locks when it dies, however
//! it dies. So a run recorded as running whose lock file can be locked by
//! someone else has lost its process: it was killed.

use super::StoreError;
use flyte_core::TaskError;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// How a run ended, left in its lock file when the database could not take
/// it (a full disk): the next open of the store records it from there.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RunEndNote {
    pub(crate) status: String,
    /// Actions whose records were lost.
    pub(crate) lost: u64,
    pub(crate) error: Option<TaskError>,
}

/// The lock of one running run; released (and its file removed) on drop.
#[derive(Debug)]
pub(crate) struct RunLock {
    file: File,
    path: PathBuf,
}

/// What trying a run's lock found.
pub(crate) enum LockState {
    /// We hold it now: no live process runs the run.
    Taken(RunLock),
    /// Another process (or another run in this one) holds it.
    Held,
}

impl RunLock {
    /// Tries to lock run `id`'s file under `dir`, creating it.
    pub(crate) fn try_take(dir: &Path, id: &str) -> Result<LockState, StoreError> {
        let path = dir.join(format!("{id}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(LockState::Taken(RunLock { file, path })),
            Err(TryLockError::WouldBlock) => Ok(LockState::Held),
            Err(TryLockError::Error(source)) => Err(StoreError::io(&path)(source)),
        }
    }
}

impl RunLock {
    /// Writes `end` into the lock file and releases the lock, keeping the
    /// file (best effort: on a full disk even this may fail, and the run is
    /// then marked killed by the next open).
    pub(crate) fn release_with_end(self, end: &RunEndNote) {
        let written = serde_json::to_vec(end).map(|json| {
            let mut file = &self.file;
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(&json))
                .and_then(|()| file.sync_all())
        });
        if let Ok(Ok(())) = written {
            let _ = self.file.unlock();
            std::mem::forget(self); // keep the file: it holds the end
        }
    }

    /// The end a process left in this (now released) lock file, if any.
    pub(crate) fn left_end(&self) -> Option<RunEndNote> {
        let mut text = String::new();
        (&self.file).read_to_string(&mut text).ok()?;
        serde_json::from_str(&text).ok()
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed first, while still locked, so no one locks a file that is
        // about to disappear; the lock itself goes with the handle.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_seen_as_held_until_dropped() {
        let dir = std::env::temp_dir().join(format!("flyte-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let LockState::Taken(lock) = RunLock::try_take(&dir, "r1").unwrap() else {
            panic!("a fresh lock should be free");
        };
        assert!(matches!(
            RunLock::try_take(&dir, "r1").unwrap(),
            LockState::Held
        ));
        drop(lock);
        assert!(matches!(
            RunLock::try_take(&dir, "r1").unwrap(),
            LockState::Taken(_)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
