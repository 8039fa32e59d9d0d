//! The words stores and their callers share: keys, references, what a run
//! begins and ends with, an action's end, cache entries, log lines, filters.

use super::error::StoreError;
use crate::record::{ActionRecord, ActionStatus, AttemptTimes, Origin, RunRecord, RunStatus};
use crate::{ActionId, TaskError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

/// A future a store returns, boxed so the trait stays object-safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A run's number in its store, given by [`RunLog::begin_run`](super::RunLog::begin_run) or
/// [`RunLog::find_run`](super::RunLog::find_run).
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

/// Where a store keeps a recorded output: what [`RunLog::resume_run`](super::RunLog::resume_run)
/// gives for each succeeded action, for [`RunLog::recorded_output`](super::RunLog::recorded_output). The
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
    /// When it was queued (see [`ActionRecord::queued_at`]).
    pub queued_at: SystemTime,
    /// When it began to execute (see [`ActionRecord::started_at`]).
    pub started_at: SystemTime,
    /// When it ended.
    pub ended_at: SystemTime,
    /// Each attempt's times, when it had more than one.
    pub attempt_times: &'a [AttemptTimes],
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
        record.queued_at = self.queued_at;
        record.attempt_times = self.attempt_times.to_vec();
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

/// What [`RunLog::end_run`](super::RunLog::end_run) could not write.
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

/// Which runs [`RunReader::list_runs`](super::RunReader::list_runs) lists, newest first. The default lists
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

/// One cache entry, as [`TaskCache::entries`](super::TaskCache::entries) lists it.
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

#[cfg(test)]
mod tests {
    use super::*;

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
