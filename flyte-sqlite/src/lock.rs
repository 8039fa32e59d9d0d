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
    /// When the run ended (ms since the Unix epoch), not when the note is
    /// read: the run's duration stays its own.
    #[serde(default)]
    pub(crate) ended_at: Option<i64>,
}

/// Bytes a running run's lock file holds from the start, so that its end
/// can be written over them when the disk is full: overwriting a file's
/// own blocks needs no free space (on ext4, xfs and tmpfs; a copy-on-write
/// filesystem such as btrfs or ZFS may still refuse). An end with an error
/// message longer than this is cut to fit.
const RESERVED: usize = 4096;

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
    /// Fills the lock file with [`RESERVED`] bytes of blanks, the room its
    /// run's end may need later (see [`RunLock::release_with_end`]).
    pub(crate) fn reserve(&self) -> Result<(), StoreError> {
        let mut file = &self.file;
        file.rewind()
            .and_then(|()| file.write_all(&[b' '; RESERVED]))
            .map_err(StoreError::io(&self.path))
    }

    /// Writes `end` into the lock file, over the blanks reserved for it
    /// (so that it fits on a full disk), and releases the lock, keeping the
    /// file for the next open of the store. Best effort: when even this
    /// fails, the next open marks the run killed.
    pub(crate) fn release_with_end(self, end: &RunEndNote) {
        let Some(json) = note_json(end) else {
            return;
        };
        let mut file = &self.file;
        let written = file
            .rewind()
            .and_then(|()| file.write_all(&json))
            .and_then(|()| file.sync_data());
        if written.is_ok() {
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

/// `end` as JSON padded with blanks to [`RESERVED`] bytes (which JSON
/// ignores), its error message cut if it would not fit otherwise.
fn note_json(end: &RunEndNote) -> Option<Vec<u8>> {
    let fits = |note: &RunEndNote| {
        serde_json::to_vec(note)
            .ok()
            .filter(|j| j.len() <= RESERVED)
    };
    let mut json = fits(end).or_else(|| {
        [RESERVED / 16, 0]
            .into_iter()
            .find_map(|chars| fits(&end.with_message_cut(chars)))
    })?;
    json.resize(RESERVED, b' ');
    Some(json)
}

impl RunEndNote {
    /// This end with its error message cut to its first `chars` characters.
    fn with_message_cut(&self, chars: usize) -> RunEndNote {
        RunEndNote {
            status: self.status.clone(),
            lost: self.lost,
            error: self.error.as_ref().map(|e| {
                let kept: String = e.message().chars().take(chars).collect();
                let message = format!("{kept}… (cut to fit the run's lock file on a full disk)");
                TaskError::new(e.kind(), message)
            }),
            ended_at: self.ended_at,
        }
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
