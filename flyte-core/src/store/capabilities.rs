//! What a store can do, one trait per capability: a backend implements the
//! ones it supports and names them in its
//! [`RunStore`](crate::backend::RunStore).
//!
//! Every store records runs ([`RunLog`]); the task cache ([`TaskCache`]),
//! the read API of tools ([`RunReader`]) and operating runs
//! ([`RunOperations`]: abort, logs, published progress, deleting) are each
//! optional. Implementations are shared between threads; the methods that
//! record (`record_action`, `record_fan_out`, `put`, `record_log`,
//! `publish_progress`) queue and return at once, the others may block on
//! I/O and are called off the hot path.

use super::error::StoreError;
use super::vocabulary::{
    ActionEnd, CacheEntry, CacheInfo, LogLine, NewRun, OutputAt, RunClosed, RunEnd, RunFilter,
    RunKey, RunRef, StoreFuture,
};
use crate::record::{ActionRecord, FanOutRecord, RunRecord};
use crate::ActionId;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::SystemTime;

/// What a run writes, and what taking it up again reads back: the one
/// capability every store has. See the [module docs](super) for the life
/// of a run.
pub trait RunLog: Send + Sync {
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
    /// [`RunLog::end_run`] or [`RunLog::release_run`].
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

    /// The output kept at `at` (from [`RunLog::resume_run`]).
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn recorded_output(&self, at: OutputAt) -> Result<Option<Vec<u8>>, StoreError>;

    /// Appends an ended action of run `run`. Queues and returns; a record
    /// that cannot be written is counted for [`RunLog::end_run`].
    fn record_action(&self, run: RunKey, end: &ActionEnd<'_>);

    /// Appends an ended fan-out of run `run`, as [`RunLog::record_action`].
    fn record_fan_out(&self, run: RunKey, fan_out: &FanOutRecord);

    /// Writes the end of run `run` after everything queued for it, releases
    /// its liveness, and says what of the run could not be written.
    fn end_run(&self, run: RunKey, end: RunEnd) -> StoreFuture<'_, RunClosed>;

    /// Releases the liveness of run `run` without an end: the store shows it
    /// as killed (it ended without saying how).
    fn release_run(&self, run: RunKey);

    /// Waits until everything queued so far is written.
    fn flush(&self) -> StoreFuture<'_, Result<(), StoreError>>;
}

/// The task cache: outputs filed under their keys, shared by every run of
/// the store.
pub trait TaskCache: Send + Sync {
    /// The cached output under `key`; one put by this process is found at
    /// once, before it is written.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn get(&self, key: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Files an output under its key, replacing what was there. Queues and
    /// returns.
    fn put(&self, entry: CacheEntry);

    /// Every cache entry, without its value, oldest first.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn entries(&self) -> Result<Vec<CacheInfo>, StoreError>;

    /// Removes the cache entries under `keys`; returns how many there were.
    ///
    /// # Errors
    ///
    /// When it cannot be written.
    fn remove(&self, keys: &[[u8; 32]]) -> Result<u64, StoreError>;
}

/// What tools read: runs listed and filtered, a run's actions batch by
/// batch, its fan-outs.
pub trait RunReader: Send + Sync {
    /// Recorded runs that pass `filter`, newest first, without actions.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError>;

    /// Calls `each` with the actions of run `run`, a batch at a time in the
    /// order they were written (an action resumed and run again appears
    /// again: its latest record is its state), without their outputs unless
    /// `outputs`; `each` may stop the reading early.
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

    /// Every action record of run `run`, read through
    /// [`RunReader::actions`] (a long run's are many: prefer reading batch
    /// by batch where that will do).
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn all_actions(&self, run: RunKey, outputs: bool) -> Result<Vec<ActionRecord>, StoreError> {
        let mut all = Vec::new();
        self.actions(run, outputs, &mut |batch| {
            all.extend(batch);
            ControlFlow::Continue(())
        })?;
        Ok(all)
    }

    /// The fan-outs of run `run`, in the order they ended.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn fan_outs(&self, run: RunKey) -> Result<Vec<FanOutRecord>, StoreError>;

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
}

/// Operating runs from another process: abort, logs, published progress,
/// and deleting what is no longer wanted.
pub trait RunOperations: Send + Sync {
    /// Asks the process running run `run` to cancel it. That process checks
    /// [`RunOperations::abort_requested`] ten times or more a second.
    ///
    /// # Errors
    ///
    /// When it cannot be written.
    fn request_abort(&self, run: RunKey) -> Result<(), StoreError>;

    /// Whether someone asked to cancel run `run`. Called often while the
    /// run lives: keep it cheap.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn abort_requested(&self, run: RunKey) -> Result<bool, StoreError>;

    /// Appends a log line of run `run` (a `tracing` event of one of its
    /// tasks). Queues and returns.
    fn record_log(&self, run: RunKey, line: &LogLine);

    /// The log lines of run `run` after sequence number `after` (0: from
    /// the start), oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn logs(&self, run: RunKey, after: u64, limit: usize) -> Result<Vec<LogLine>, StoreError>;

    /// Publishes what the progress display of run `run` shows now, for
    /// `flyte watch` in another process. Queues and returns.
    fn publish_progress(&self, run: RunKey, lines: &[String]);

    /// What the display of run `run` last published, and when.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn published_progress(
        &self,
        run: RunKey,
    ) -> Result<Option<(SystemTime, Vec<String>)>, StoreError>;

    /// Deletes ended runs with their actions, fan-outs and logs; a run still
    /// running is kept. Returns how many runs were deleted.
    ///
    /// # Errors
    ///
    /// When it cannot be written.
    fn delete_runs(&self, runs: &[RunKey]) -> Result<u64, StoreError>;

    /// Gives the space of deleted records back to the system, where the
    /// backend needs that done by hand.
    ///
    /// # Errors
    ///
    /// When it cannot be written.
    fn compact(&self) -> Result<(), StoreError>;
}
