//! [`Store`] as a [`RunStore`] with every capability: what runs record
//! through, its task cache, what tools read, and operating runs.

use crate::actions::MAX_VALUE;
use crate::lock::{LockState, RunEndNote, RunLock};
use crate::writer::Write;
use crate::{lock, Store, StoreError};
use flyte_core::backend::RunStore;
use flyte_core::record::{ActionRecord, FanOutRecord, RunRecord};
use flyte_core::store::{
    ActionEnd, CacheEntry, CacheInfo, LogLine, NewRun, OutputAt, RunClosed, RunEnd, RunFilter,
    RunKey, RunLog, RunOperations, RunReader, RunRef, StoreFuture, TaskCache,
};
use flyte_core::ActionId;
use rusqlite::OptionalExtension;
use std::collections::HashMap;
use std::ops::ControlFlow;

impl Store {
    /// Takes the liveness lock of run `id`: a file under `runs/` this
    /// process holds while it runs the run, with room reserved in it for
    /// the run's end (see [`RunLock::release_with_end`]).
    fn take_lock(&self, id: &str) -> Result<RunLock, StoreError> {
        match RunLock::try_take(&self.0.locks, id)? {
            LockState::Taken(lock) => {
                lock.reserve()?;
                Ok(lock)
            }
            LockState::Held => Err(StoreError::RunBusy { id: id.to_owned() }),
        }
    }
}

impl RunStore for Store {
    fn location(&self) -> String {
        self.home().display().to_string()
    }

    flyte_core::every_capability!();
}

impl RunLog for Store {
    fn find_run(&self, run: RunRef<'_>) -> Result<Option<(RunKey, RunRecord)>, StoreError> {
        let found = match run {
            RunRef::Id(id) => self.run_head("id", id)?,
            RunRef::Name(name) => self.run_head("name", name)?,
        };
        Ok(found.map(|(seq, run)| (RunKey(seq), run)))
    }

    fn run_inputs(&self, run: RunKey) -> Result<Option<Vec<u8>>, StoreError> {
        self.stored_inputs(run.0)
    }

    fn begin_run(&self, run: &NewRun<'_>) -> Result<RunKey, StoreError> {
        let held = self.take_lock(run.id)?;
        let seq = self.insert_run(run)?;
        lock(&self.0.live).insert(seq, held);
        Ok(RunKey(seq))
    }

    fn resume_run(&self, run: RunKey, id: &str) -> Result<HashMap<ActionId, OutputAt>, StoreError> {
        let held = self.take_lock(id)?;
        let replay = self.succeeded_actions(run.0)?;
        self.restart_run(run.0)?;
        lock(&self.0.live).insert(run.0, held);
        Ok(replay)
    }

    fn recorded_output(&self, at: OutputAt) -> Result<Option<Vec<u8>>, StoreError> {
        let mut last = lock(&self.0.last_batch);
        if last.as_ref().is_none_or(|(row, _)| *row != at.batch) {
            *last = Some((at.batch, self.batch_at(at.batch)?));
        }
        let batch = last.as_ref().map(|(_, batch)| batch);
        let action = batch.and_then(|b| b.get(usize::try_from(at.index).ok()?));
        Ok(action.and_then(|a| a.output_bytes.clone()))
    }

    fn record_action(&self, run: RunKey, end: &ActionEnd<'_>) {
        if let Ok(writer) = self.writer() {
            writer.action(run.0, end);
        }
    }

    fn record_fan_out(&self, run: RunKey, fan_out: &FanOutRecord) {
        self.write(Write::FanOut(run.0, Box::new(fan_out.clone())));
    }

    fn end_run(&self, run: RunKey, end: RunEnd) -> StoreFuture<'_, RunClosed> {
        Box::pin(async move {
            let note = RunEndNote {
                status: end.status.as_str().to_owned(),
                lost: 0,
                error: end.error.clone(),
                ended_at: Some(crate::millis(std::time::SystemTime::now())),
            };
            self.write(Write::RunEnd(run.0, end));
            let flushed = RunLog::flush(self).await;
            let closed = match (flushed, self.lost(run.0)) {
                (Ok(()), None) => RunClosed::default(),
                (_, Some(lost)) => RunClosed {
                    lost_actions: lost.actions,
                    end_lost: lost.run_end,
                    error: Some(lost.error),
                },
                (Err(e), None) => RunClosed {
                    lost_actions: 0,
                    end_lost: true,
                    error: Some(e),
                },
            };
            let held = lock(&self.0.live).remove(&run.0);
            if let (true, Some(held)) = (closed.end_lost, held) {
                // The database shows the run as running. Its end is left in
                // its lock file instead, where the next open of the store
                // finds it and records it (rather than marking it killed).
                held.release_with_end(&RunEndNote {
                    lost: closed.lost_actions,
                    ..note
                });
            }
            closed
        })
    }

    fn release_run(&self, run: RunKey) {
        lock(&self.0.live).remove(&run.0);
    }

    fn flush(&self) -> StoreFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.writer()?.flush().await })
    }
}

impl TaskCache for Store {
    fn get(&self, key: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.0.writer.as_ref().and_then(|w| w.pending_cache(key)) {
            return Ok(Some(value.to_vec()));
        }
        self.read(|conn| {
            conn.prepare_cached("SELECT value FROM cache WHERE key = ?1")?
                .query_row([key], |r| r.get(0))
                .optional()
        })
    }

    fn put(&self, entry: CacheEntry) {
        if entry.value.len() > MAX_VALUE {
            // Not cached (a row that large would fail the writer's whole
            // commit); the run's record says why, when it records it too.
            let error = StoreError::too_large(
                entry.task,
                entry.value.len(),
                self.0.db.display().to_string(),
            );
            flyte_core::sync::warn_once(&error.to_string());
            return;
        }
        self.write(Write::Cache(Box::new(entry)));
    }

    fn entries(&self) -> Result<Vec<CacheInfo>, StoreError> {
        self.list_cache()
    }

    fn remove(&self, keys: &[[u8; 32]]) -> Result<u64, StoreError> {
        self.remove_cache(keys)
    }
}

impl RunReader for Store {
    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        self.filtered_runs(filter)
    }

    fn actions(
        &self,
        run: RunKey,
        outputs: bool,
        each: &mut dyn FnMut(Vec<ActionRecord>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        self.each_batch(run.0, |_, mut batch| {
            if !outputs {
                for action in &mut batch {
                    action.output_bytes = None;
                }
            }
            each(batch)
        })
    }

    fn fan_outs(&self, run: RunKey) -> Result<Vec<FanOutRecord>, StoreError> {
        self.stored_fan_outs(run.0)
    }

    fn ended_actions(&self, run: RunKey) -> Result<u64, StoreError> {
        self.count_ended(run)
    }
}

impl RunOperations for Store {
    fn request_abort(&self, run: RunKey) -> Result<(), StoreError> {
        self.mark_abort_requested(run)
    }

    fn abort_requested(&self, run: RunKey) -> Result<bool, StoreError> {
        self.is_abort_requested(run)
    }

    fn delete_runs(&self, runs: &[RunKey]) -> Result<u64, StoreError> {
        self.remove_runs(runs)
    }

    fn compact(&self) -> Result<(), StoreError> {
        self.vacuum()
    }

    fn record_log(&self, run: RunKey, line: &LogLine) {
        self.write(Write::Log(run.0, Box::new(line.clone())));
    }

    fn logs(&self, run: RunKey, after: u64, limit: usize) -> Result<Vec<LogLine>, StoreError> {
        self.read_logs(run, after, limit)
    }

    fn publish_progress(&self, run: RunKey, lines: &[String]) {
        if let Ok(json) = serde_json::to_string(lines) {
            self.write(Write::Progress(run.0, json));
        }
    }

    fn published_progress(
        &self,
        run: RunKey,
    ) -> Result<Option<(std::time::SystemTime, Vec<String>)>, StoreError> {
        self.read_progress(run)
    }
}
