//! The store interface: what a run needs of a store, and what tools read
//! from one.
//!
//! The runtime talks to a store only through [`RunStore`]; `flyte-sqlite`
//! (the embedded default, under `FLYTE_HOME`) implements it, and so can any
//! other backend (a test keeps one in memory). A store is used from many
//! threads at once and must not block the caller on the hot path:
//! [`RunStore::record_action`], [`RunStore::record_fan_out`] and
//! [`RunStore::cache_put`] queue their record and return; what could not be
//! written is counted, and reported when the run ends
//! ([`RunClosed`]).
//!
//! # The life of a recorded run
//!
//! 1. [`RunStore::begin_run`] records a new run as running and holds its
//!    liveness (another process sees that it is going on; a run whose
//!    process died is marked [`RunStatus::Killed`] by the store);
//!    or [`RunStore::find_run`] + [`RunStore::resume_run`] take an earlier
//!    run up again, with where its succeeded outputs are.
//! 2. Each action and fan-out that ends is appended.
//! 3. [`RunStore::end_run`] writes the run's end after everything queued,
//!    releases its liveness and says what could not be written.

use crate::record::{ActionRecord, ActionStatus, FanOutRecord, Origin, RunRecord, RunStatus};
use crate::{ActionId, ErrorKind, TaskError};
use std::collections::HashMap;
use std::future::Future;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

/// A future a store returns, boxed so the trait stays object-safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A run's number in its store, given by [`RunStore::begin_run`] or
/// [`RunStore::find_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunKey(pub i64);

/// How a run is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRef<'a> {
    /// By its id.
    Id(&'a str),
    /// By its name (`Runner::name`; names are unique in a store).
    Name(&'a str),
}

/// A run to record.
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its name, if it has one.
    pub name: Option<&'a str>,
    /// The root task's name.
    pub root_task: &'a str,
    /// The root action's id.
    pub root_action: ActionId,
    /// The root call's encoded inputs, when they encode (a run without them
    /// cannot be resumed by id).
    pub inputs: Option<&'a [u8]>,
}

/// Where a store keeps a recorded output: what [`RunStore::resume_run`]
/// gives for each succeeded action, for [`RunStore::recorded_output`]. The
/// numbers mean what the store says (for `flyte-sqlite`, a batch row and a
/// position in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutputAt {
    /// The unit the store reads at once.
    pub batch: i64,
    /// The place in it.
    pub index: u32,
}

/// One action as it ended, borrowed from the code that ran it: the store
/// copies what it keeps.
#[derive(Debug)]
pub struct ActionEnd<'a> {
    /// Its id.
    pub id: ActionId,
    /// The action that started it (none for the root).
    pub parent: Option<ActionId>,
    /// The fan-out and index, for a `map`/`gather` item.
    pub item: Option<(ActionId, u64)>,
    /// The task's name (from its definition: the same task gives the same
    /// pointer, which a store may use to skip comparing the bytes).
    pub task: &'static str,
    /// The group label.
    pub group: Option<&'a Arc<str>>,
    /// How it ended.
    pub status: ActionStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When it started.
    pub started_at: SystemTime,
    /// When it ended.
    pub ended_at: SystemTime,
    /// The error, when it failed or was cancelled.
    pub error: Option<&'a TaskError>,
    /// Whether it ran or its output came from the cache.
    pub origin: Origin,
    /// The output, when it succeeded and the store should keep it.
    pub output: Option<OutputRef<'a>>,
}

impl ActionEnd<'_> {
    /// The record a store keeps of it, output encoded.
    ///
    /// # Errors
    ///
    /// When the output does not encode.
    pub fn to_record(&self) -> Result<ActionRecord, TaskError> {
        let mut record = ActionRecord::new(
            self.id,
            self.task.to_owned(),
            self.status,
            self.started_at,
            Some(self.ended_at),
        );
        record.parent = self.parent;
        record.item = self.item;
        record.group = self.group.map(|g| g.to_string());
        record.attempts = self.attempts;
        record.error = self.error.cloned();
        record.origin = self.origin;
        record.output_bytes = self.output.as_ref().map(OutputRef::to_vec).transpose()?;
        Ok(record)
    }
}

/// A succeeded action's output, for its record.
pub enum OutputRef<'a> {
    /// Already encoded (for the cache, or by a body that encodes as it runs).
    Bytes(&'a [u8]),
    /// The value, encoded when the store packs it: no buffer of its own.
    Encode(&'a dyn Fn(&mut Vec<u8>) -> Result<(), TaskError>),
}

impl OutputRef<'_> {
    /// Appends the encoded output to `buf`.
    ///
    /// # Errors
    ///
    /// When the output does not encode.
    pub fn write_to(&self, buf: &mut Vec<u8>) -> Result<(), TaskError> {
        match self {
            OutputRef::Bytes(bytes) => {
                buf.extend_from_slice(bytes);
                Ok(())
            }
            OutputRef::Encode(encode) => encode(buf),
        }
    }

    /// The encoded output.
    ///
    /// # Errors
    ///
    /// When the output does not encode.
    pub fn to_vec(&self) -> Result<Vec<u8>, TaskError> {
        let mut buf = Vec::new();
        self.write_to(&mut buf)?;
        Ok(buf)
    }
}

impl std::fmt::Debug for OutputRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputRef::Bytes(b) => write!(f, "Bytes({})", b.len()),
            OutputRef::Encode(_) => f.write_str("Encode"),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// Succeeded, failed or cancelled.
    pub status: RunStatus,
    /// The root's error.
    pub error: Option<TaskError>,
}

/// What [`RunStore::end_run`] could not write.
#[derive(Debug, Clone, Default)]
pub struct RunClosed {
    /// Actions (and fan-outs) of the run whose records are not in the store.
    pub lost_actions: u64,
    /// Whether the run's end is not in the store either.
    pub end_lost: bool,
    /// The last failure, when something was lost.
    pub error: Option<StoreError>,
}

/// One output to cache.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    /// The key: a hash of the task, its cache version, output type and inputs.
    pub key: [u8; 32],
    /// The task's name.
    pub task: &'static str,
    /// The task's cache version.
    pub version: &'static str,
    /// The output's type name.
    pub output_type: &'static str,
    /// The encoded output (shared: a store may keep it visible to lookups
    /// before it is written).
    pub value: Arc<[u8]>,
}

/// Which runs [`RunStore::list_runs`] lists, newest first. The default lists
/// every run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunFilter {
    /// Only runs in this state.
    pub status: Option<RunStatus>,
    /// Only runs whose root is this task.
    pub task: Option<String>,
    /// Only the run with this name.
    pub name: Option<String>,
    /// Only runs started at or after this time.
    pub since: Option<SystemTime>,
    /// At most this many runs.
    pub limit: Option<usize>,
    /// Skip this many matching runs first (with `limit`: pages).
    pub offset: usize,
}

impl RunFilter {
    /// Every run.
    pub fn all() -> RunFilter {
        RunFilter::default()
    }

    /// Only runs in state `status`.
    #[must_use]
    pub fn status(mut self, status: RunStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only runs of root task `task`.
    #[must_use]
    pub fn task(mut self, task: impl Into<String>) -> Self {
        self.task = Some(task.into());
        self
    }

    /// Only the run named `name`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only runs started at or after `since`.
    #[must_use]
    pub fn since(mut self, since: SystemTime) -> Self {
        self.since = Some(since);
        self
    }

    /// One page: `limit` runs after the first `offset`.
    #[must_use]
    pub fn page(mut self, offset: usize, limit: usize) -> Self {
        self.offset = offset;
        self.limit = Some(limit);
        self
    }

    /// Whether `run` passes the filter (paging aside): for stores that
    /// filter in memory.
    pub fn matches(&self, run: &RunRecord) -> bool {
        self.status.is_none_or(|s| run.status == s)
            && self.task.as_ref().is_none_or(|t| run.root_task == *t)
            && self
                .name
                .as_ref()
                .is_none_or(|n| run.name.as_ref() == Some(n))
            && self.since.is_none_or(|s| run.started_at >= s)
    }
}

/// What a run needs of a store, and what tools read from one. See the
/// [module docs](self) for the life of a run.
///
/// Implementations are shared between threads (`Arc<dyn RunStore>`); the
/// recording methods queue and return at once, the others may block on
/// I/O and are called off the hot path.
pub trait RunStore: std::fmt::Debug + Send + Sync + 'static {
    /// Where the store is, for people: a directory, a database URL without
    /// its password, `memory`.
    fn location(&self) -> String;

    /// The run `run` refers to, without its actions, with its key.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn find_run(&self, run: RunRef<'_>) -> Result<Option<(RunKey, RunRecord)>, StoreError>;

    /// The inputs stored with a run (`None`: they did not encode).
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn run_inputs(&self, run: RunKey) -> Result<Option<Vec<u8>>, StoreError>;

    /// Records a new run as running, and holds its liveness until
    /// [`RunStore::end_run`] or [`RunStore::release_run`].
    ///
    /// # Errors
    ///
    /// When it cannot be written, or its id or name is taken.
    fn begin_run(&self, run: &NewRun<'_>) -> Result<RunKey, StoreError>;

    /// Takes recorded run `run` (id `id`) up again for another execution:
    /// holds its liveness, records it as running, and returns where the
    /// outputs of its succeeded actions are, by action id.
    ///
    /// # Errors
    ///
    /// [`StoreError::RunBusy`] when a live process runs it; or when the
    /// store cannot be read or written.
    fn resume_run(&self, run: RunKey, id: &str) -> Result<HashMap<ActionId, OutputAt>, StoreError>;

    /// The output kept at `at` (from [`RunStore::resume_run`]).
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn recorded_output(&self, at: OutputAt) -> Result<Option<Vec<u8>>, StoreError>;

    /// Appends an ended action of run `run`. Queues and returns; a record
    /// that cannot be written is counted for [`RunStore::end_run`].
    fn record_action(&self, run: RunKey, end: &ActionEnd<'_>);

    /// Appends an ended fan-out of run `run`, as [`RunStore::record_action`].
    fn record_fan_out(&self, run: RunKey, fan_out: &FanOutRecord);

    /// Writes the end of run `run` after everything queued for it, releases
    /// its liveness, and says what of the run could not be written.
    fn end_run(&self, run: RunKey, end: RunEnd) -> StoreFuture<'_, RunClosed>;

    /// Releases the liveness of run `run` without an end: the store shows it
    /// as killed (it ended without saying how).
    fn release_run(&self, run: RunKey);

    /// The cached output under `key`; one put by this process is found at
    /// once, before it is written.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn cache_get(&self, key: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Files an output under its key, replacing what was there. Queues and
    /// returns.
    fn cache_put(&self, entry: CacheEntry);

    /// Waits until everything queued so far is written.
    fn flush(&self) -> StoreFuture<'_, Result<(), StoreError>>;

    /// Recorded runs that pass `filter`, newest first, without actions.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError>;

    /// Calls `each` with the actions of run `run`, a batch at a time in the
    /// order they were written (an action resumed and run again appears
    /// again: its latest record is its state), without their outputs unless
    /// `outputs`; `each` may stop the reading early. Returns whether the
    /// run exists.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn actions(
        &self,
        run: RunKey,
        outputs: bool,
        each: &mut dyn FnMut(Vec<ActionRecord>) -> ControlFlow<()>,
    ) -> Result<(), StoreError>;

    /// The fan-outs of run `run`, in the order they ended.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn fan_outs(&self, run: RunKey) -> Result<Vec<FanOutRecord>, StoreError>;

    // Operating a store (the command line). A store that cannot do one of
    // these says so with `StoreError::Unsupported`.

    /// Asks the process running run `run` to cancel it. That process checks
    /// [`RunStore::abort_requested`] ten times or more a second.
    ///
    /// # Errors
    ///
    /// When it cannot be written, or the store cannot abort runs.
    fn request_abort(&self, run: RunKey) -> Result<(), StoreError> {
        let _ = run;
        Err(self.unsupported("aborting runs"))
    }

    /// Whether someone asked to cancel run `run` (see
    /// [`RunStore::request_abort`]). Called often while the run lives: keep
    /// it cheap.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn abort_requested(&self, run: RunKey) -> Result<bool, StoreError> {
        let _ = run;
        Ok(false)
    }

    /// Every cache entry, without its value, oldest first.
    ///
    /// # Errors
    ///
    /// When the store cannot be read, or it cannot list its cache.
    fn cache_entries(&self) -> Result<Vec<CacheInfo>, StoreError> {
        Err(self.unsupported("listing the cache"))
    }

    /// Removes the cache entries under `keys`; returns how many there were.
    ///
    /// # Errors
    ///
    /// When it cannot be written, or the store cannot remove entries.
    fn cache_remove(&self, keys: &[[u8; 32]]) -> Result<u64, StoreError> {
        let _ = keys;
        Err(self.unsupported("removing cache entries"))
    }

    /// Deletes ended runs with their actions and fan-outs; a run still
    /// running is kept. Returns how many runs were deleted.
    ///
    /// # Errors
    ///
    /// When it cannot be written, or the store cannot delete runs.
    fn delete_runs(&self, runs: &[RunKey]) -> Result<u64, StoreError> {
        let _ = runs;
        Err(self.unsupported("deleting runs"))
    }

    /// Appends a log line of run `run` (a `tracing` event of one of its
    /// tasks). Queues and returns; a store that keeps no logs drops it.
    fn record_log(&self, run: RunKey, line: &LogLine) {
        let _ = (run, line);
    }

    /// The log lines of run `run` after sequence number `after` (0: from
    /// the start), oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// When the store cannot be read, or keeps no logs.
    fn logs(&self, run: RunKey, after: u64, limit: usize) -> Result<Vec<LogLine>, StoreError> {
        let _ = (run, after, limit);
        Err(self.unsupported("logs"))
    }

    /// Publishes what the progress display of run `run` shows now, for
    /// `flyte watch` in another process. Queues and returns.
    fn publish_progress(&self, run: RunKey, lines: &[String]) {
        let _ = (run, lines);
    }

    /// What the display of run `run` last published, and when.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn published_progress(
        &self,
        run: RunKey,
    ) -> Result<Option<(SystemTime, Vec<String>)>, StoreError> {
        let _ = run;
        Ok(None)
    }

    /// How many actions of run `run` have ended so far.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn ended_actions(&self, run: RunKey) -> Result<u64, StoreError> {
        let mut n = 0u64;
        self.actions(run, false, &mut |batch| {
            n += batch.len() as u64;
            ControlFlow::Continue(())
        })?;
        Ok(n)
    }

    /// Gives the space of deleted records back to the system, where the
    /// backend needs that done by hand. Default: nothing to do.
    ///
    /// # Errors
    ///
    /// When it cannot be written.
    fn compact(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The work queue of a store that spreads runs over a fleet of worker
    /// processes (see [`crate::queue`]). `None`, the default: a run's
    /// actions run in its own process.
    fn queue(&self) -> Option<Arc<dyn crate::queue::WorkQueue>> {
        None
    }

    /// The error of an operation this store does not implement.
    #[doc(hidden)]
    fn unsupported(&self, operation: &'static str) -> StoreError {
        StoreError::Unsupported {
            operation,
            store: self.location(),
        }
    }
}

/// One log line of a run: a `tracing` event emitted inside one of its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogLine {
    /// Its place in the run's log (0 until stored).
    pub seq: u64,
    /// The action it came from.
    pub action: Option<ActionId>,
    /// When it was emitted.
    pub at: SystemTime,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The event's target (its module, by default).
    pub target: String,
    /// The message, then the other fields as `name=value`.
    pub message: String,
}

impl LogLine {
    /// A line not yet stored.
    pub fn new(
        action: Option<ActionId>,
        at: SystemTime,
        level: impl Into<String>,
        target: impl Into<String>,
        message: impl Into<String>,
    ) -> LogLine {
        LogLine {
            seq: 0,
            action,
            at,
            level: level.into(),
            target: target.into(),
            message: message.into(),
        }
    }
}

/// One cache entry, as [`RunStore::cache_entries`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheInfo {
    /// Its key.
    pub key: [u8; 32],
    /// The task whose output it is.
    pub task: String,
    /// The cache version it was filed under (the task's code version,
    /// or the version the task names).
    pub version: String,
    /// The output's Rust type.
    pub output_type: String,
    /// The size of the encoded output, in bytes.
    pub size: u64,
    /// When it was filed.
    pub created_at: SystemTime,
}

impl CacheInfo {
    /// An entry's description.
    pub fn new(
        key: [u8; 32],
        task: String,
        version: String,
        output_type: String,
        size: u64,
        created_at: SystemTime,
    ) -> CacheInfo {
        CacheInfo {
            key,
            task,
            version,
            output_type,
            size,
            created_at,
        }
    }
}

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

    #[test]
    fn filters_match_on_every_field() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(100);
        let mut run = RunRecord::new(
            "r".into(),
            "env.t".into(),
            ActionId(1),
            RunStatus::Failed,
            at,
        );
        run.name = Some("nightly".into());
        assert!(RunFilter::all().matches(&run));
        assert!(RunFilter::all()
            .status(RunStatus::Failed)
            .task("env.t")
            .name("nightly")
            .since(at)
            .matches(&run));
        assert!(!RunFilter::all().status(RunStatus::Succeeded).matches(&run));
        assert!(!RunFilter::all().task("env.u").matches(&run));
        assert!(!RunFilter::all().name("other").matches(&run));
        assert!(!RunFilter::all()
            .since(at + std::time::Duration::from_secs(1))
            .matches(&run));
    }
}
