//! Why a store could not be used, and the limits on what it keeps.

use crate::{ErrorKind, TaskError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a store could not be used. Each message names the problem and what
/// to do.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file or directory of the store could not be made or opened.
    #[error(
        "cannot use {}: {source} (set FLYTE_HOME to a writable directory, \
         or turn recording off: FLYTE_PERSIST=off, or Runner::persist(false) in code)",
        path.display()
    )]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// Why.
        source: Arc<std::io::Error>,
    },
    /// The database file is damaged or is not a flyte store.
    #[error(
        "{} is damaged or not a flyte store ({reason}): move it away to start a \
         new store there, or set FLYTE_HOME to another directory",
        path.display()
    )]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What the database said.
        reason: String,
    },
    /// The store was written by a newer flyte.
    #[error(
        "{location} was written by a newer flyte (its schema is version {found}; this \
         flyte knows up to {known}): upgrade flyte to use it, or use another store \
         (FLYTE_HOME, or FLYTE_POSTGRES_URL for a fleet)"
    )]
    NewerSchema {
        /// The store: its file, or its database without the password.
        location: String,
        /// The version in the file.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// The database or its directory cannot be written.
    #[error(
        "{} is read-only: make it and its directory writable, set FLYTE_HOME to a \
         writable directory, or turn recording off (FLYTE_PERSIST=off, or \
         Runner::persist(false) in code; Store::open_read_only reads such a store)",
        path.display()
    )]
    ReadOnly {
        /// The database file.
        path: PathBuf,
    },
    /// The disk holding the database is full (or the process may write no
    /// larger files).
    #[error(
        "cannot write {}: the disk is full ({reason}): free some space, or set \
         FLYTE_HOME to a directory on another disk",
        path.display()
    )]
    Full {
        /// The database file.
        path: PathBuf,
        /// What the database said.
        reason: String,
    },
    /// The database file cannot be opened.
    #[error(
        "cannot open the database {} ({reason}): it must be a file this process may \
         read and write (is a directory in its place?), or set FLYTE_HOME to another \
         directory",
        path.display()
    )]
    CannotOpen {
        /// The database file.
        path: PathBuf,
        /// What the database or the system said.
        reason: String,
    },
    /// A run is going on in another process (or another run of this one).
    #[error("run {id} is going on in another process: wait for it to end")]
    RunBusy {
        /// The run's id.
        id: String,
    },
    /// The backend failed in a way not listed here.
    #[error("the flyte store ({backend}) failed: {source}")]
    Backend {
        /// Which backend: `sqlite`, `postgres`, ...
        backend: &'static str,
        /// Its error.
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// No database server answers where the store is.
    #[error(
        "cannot reach the flyte store at {location} ({reason}): start the database \
         server there, or point FLYTE_POSTGRES_URL at one that runs"
    )]
    Unreachable {
        /// The store's location, without its password.
        location: String,
        /// What the connection said.
        reason: String,
    },
    /// The store cannot do what was asked of it.
    #[error("the flyte store at {store} does not support {operation}")]
    Unsupported {
        /// What was asked.
        operation: &'static str,
        /// The store's location.
        store: String,
    },
    /// An output is larger than the store keeps in one record. A local
    /// run goes on without it in its record (a resume runs the task again);
    /// on a fleet, which passes outputs through the store, the action fails.
    #[error(
        "the output of task {task} ({}) is larger than {location} keeps in one value \
         (up to {}): pass large data by reference instead (a file path or an object key)",
        human_bytes(*bytes),
        human_bytes(*limit)
    )]
    TooLarge {
        /// The task whose output it is.
        task: String,
        /// Its size, in bytes.
        bytes: u64,
        /// The most the store keeps in one value.
        limit: u64,
        /// The store (its file, or its database without the password).
        location: String,
    },
    /// The store's writer is gone (only at process exit).
    #[error("the flyte store's writer has stopped")]
    WriterStopped,
}

impl StoreError {
    /// The error for an I/O failure on `path`, for `map_err`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_owned(),
            source: Arc::new(source),
        }
    }

    /// The refusal of `task`'s output of `bytes` bytes, over
    /// [`MAX_STORED_VALUE`], by the store at `location`.
    pub fn too_large(task: &str, bytes: usize, location: String) -> StoreError {
        StoreError::TooLarge {
            task: task.to_owned(),
            bytes: bytes as u64,
            limit: MAX_STORED_VALUE as u64,
            location,
        }
    }

    /// A backend's own error.
    pub fn backend(
        backend: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Backend {
            backend,
            source: Arc::new(source),
        }
    }
}

/// `bytes` for people: `812 B`, `64.0 KiB`, `1.2 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The largest output a store keeps in one record: SQLite keeps values of
/// up to 1,000,000,000 bytes and PostgreSQL fields of up to 1 GiB, and a
/// record holds more than the value. Larger outputs are refused with
/// [`StoreError::TooLarge`].
pub const MAX_STORED_VALUE: usize = 900_000_000;

/// Values larger than this are kept, with a warning once per task (see
/// [`warn_large_output`]).
pub const LARGE_OUTPUT: u64 = 128 << 20;

/// Warns, once per task, that `task` returned an output over
/// [`LARGE_OUTPUT`] that `location` keeps whole: it costs the time to copy
/// and write it and the memory to hold it while it is written.
pub fn warn_large_output(task: &str, location: &str) {
    crate::sync::warn_once(&format!(
        "task {task} returned an output of over {}: each such output is kept whole in \
         {location} and in memory until it is written, which slows the run and grows \
         the process; pass large data by reference instead (a file path or an object key)",
        human_bytes(LARGE_OUTPUT)
    ));
}

/// A store error as a task error of kind [`ErrorKind::Store`]; the
/// `StoreError` stays its source (`downcast_ref::<StoreError>()`).
impl From<StoreError> for TaskError {
    fn from(e: StoreError) -> Self {
        TaskError::from_source(ErrorKind::Store, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn a_store_error_stays_the_source_of_its_task_error() {
        let e = StoreError::RunBusy { id: "r1".into() };
        let task: TaskError = e.into();
        assert_eq!(task.kind(), ErrorKind::Store);
        assert!(task.message().contains("run r1 is going on"));
        assert!(matches!(
            task.downcast_ref::<StoreError>(),
            Some(StoreError::RunBusy { .. })
        ));
        assert!(std::error::Error::source(&task).is_some());
    }
}
