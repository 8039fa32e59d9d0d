//! A store kept in memory (feature `memory-store`): every capability, no
//! file, no server; gone with the process. For tests of pipelines and of
//! tools, and for runs whose record only the process itself reads.
//!
//! ```
//! use flyte_core::backend::RunStore;
//! use flyte_core::memory::MemoryStore;
//! use flyte_core::store::RunFilter;
//! use std::sync::Arc;
//!
//! let store: Arc<dyn RunStore> = Arc::new(MemoryStore::new());
//! assert_eq!(store.location(), "memory");
//! assert!(store.reader()?.list_runs(&RunFilter::all())?.is_empty());
//! # Ok::<(), flyte_core::store::StoreError>(())
//! ```

use crate::backend::RunStore;
use crate::queue::WorkQueue;
use crate::record::{ActionRecord, ActionStatus, FanOutRecord, RunRecord, RunStatus};
use crate::store::{
    ActionEnd, CacheEntry, CacheInfo, LogLine, NewRun, OutputAt, RunClosed, RunEnd, RunFilter,
    RunKey, RunLog, RunOperations, RunReader, RunRef, StoreError, StoreFuture, TaskCache,
    MAX_STORED_VALUE,
};
use crate::sync::lock;
use crate::ActionId;
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// How many actions [`RunReader::actions`] hands over at once.
const BATCH: usize = 256;

/// A store kept in memory. Cheap to make; one lock for everything (a
/// store for tests and small runs, not for millions of actions a second).
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    queue: Option<Arc<dyn WorkQueue>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("MemoryStore")
            .field("runs", &state.runs.len())
            .field("actions", &state.actions.len())
            .field("cache", &state.cache.len())
            .field("queue", &self.queue.is_some())
            .finish()
    }
}

#[derive(Default)]
struct State {
    next_run: i64,
    runs: BTreeMap<i64, Run>,
    /// Every action record in the order written; its key is its place
    /// ([`OutputAt::batch`]).
    actions: BTreeMap<i64, (RunKey, ActionRecord)>,
    next_action: i64,
    fan_outs: Vec<(RunKey, FanOutRecord)>,
    cache: BTreeMap<[u8; 32], (CacheInfo, Arc<[u8]>)>,
}

struct Run {
    record: RunRecord,
    inputs: Option<Vec<u8>>,
    /// A process holds it (begun or resumed, not yet ended or released).
    live: bool,
    lost: u64,
    lost_error: Option<StoreError>,
    abort_requested: bool,
    logs: Vec<LogLine>,
    progress: Option<(SystemTime, Vec<String>)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The same store handing `queue` to the runs and workers that use it:
    /// a fleet whose store is in memory (for tests of the fleet's queue).
    pub fn with_queue(mut self, queue: Arc<dyn WorkQueue>) -> MemoryStore {
        self.queue = Some(queue);
        self
    }

    fn run_mut(state: &mut State, run: RunKey) -> Option<&mut Run> {
        state.runs.get_mut(&run.0)
    }
}

impl RunStore for MemoryStore {
    fn location(&self) -> String {
        "memory".into()
    }

    crate::every_capability!();

    fn queue(&self) -> Option<Arc<dyn WorkQueue>> {
        self.queue.clone()
    }
}

impl RunLog for MemoryStore {
    fn find_run(&self, run: RunRef<'_>) -> Result<Option<(RunKey, RunRecord)>, StoreError> {
        let state = lock(&self.state);
        let found = state.runs.iter().find(|(_, r)| match run {
            RunRef::Id(id) => r.record.id == id,
            RunRef::Name(name) => r.record.name.as_deref() == Some(name),
        });
        Ok(found.map(|(key, r)| (RunKey(*key), r.record.clone())))
    }

    fn run_inputs(&self, run: RunKey) -> Result<Option<Vec<u8>>, StoreError> {
        let state = lock(&self.state);
        Ok(state.runs.get(&run.0).and_then(|r| r.inputs.clone()))
    }

    fn begin_run(&self, run: &NewRun<'_>) -> Result<RunKey, StoreError> {
        let mut state = lock(&self.state);
        let taken = state.runs.values().any(|r| {
            r.record.id == run.id || (run.name.is_some() && r.record.name.as_deref() == run.name)
        });
        if taken {
            let taken = format!(
                "run id {} or name {:?} is taken in this store: pick another name",
                run.id,
                run.name.unwrap_or("")
            );
            return Err(StoreError::backend("memory", std::io::Error::other(taken)));
        }
        let mut record = RunRecord::new(
            run.id.to_owned(),
            run.root_task.to_owned(),
            run.root_action,
            RunStatus::Running,
            SystemTime::now(),
        );
        record.name = run.name.map(str::to_owned);
        state.next_run += 1;
        let key = state.next_run;
        state.runs.insert(
            key,
            Run {
                record,
                inputs: run.inputs.map(<[u8]>::to_vec),
                live: true,
                lost: 0,
                lost_error: None,
                abort_requested: false,
                logs: Vec::new(),
                progress: None,
            },
        );
        Ok(RunKey(key))
    }

    fn resume_run(&self, run: RunKey, id: &str) -> Result<HashMap<ActionId, OutputAt>, StoreError> {
        let mut state = lock(&self.state);
        let Some(found) = MemoryStore::run_mut(&mut state, run) else {
            let missing = format!("run {id} is not in this store");
            return Err(StoreError::backend(
                "memory",
                std::io::Error::other(missing),
            ));
        };
        if found.live {
            return Err(StoreError::RunBusy { id: id.to_owned() });
        }
        found.live = true;
        found.abort_requested = false;
        found.record.status = RunStatus::Running;
        found.record.ended_at = None;
        found.record.error = None;
        found.record.executions += 1;
        // The latest record of each action is its state.
        let mut replay = HashMap::new();
        for (at, (key, action)) in &state.actions {
            if *key != run {
                continue;
            }
            if action.status == ActionStatus::Succeeded && action.output_bytes.is_some() {
                replay.insert(
                    action.id,
                    OutputAt {
                        batch: *at,
                        index: 0,
                    },
                );
            } else {
                replay.remove(&action.id);
            }
        }
        Ok(replay)
    }

    fn recorded_output(&self, at: OutputAt) -> Result<Option<Vec<u8>>, StoreError> {
        let state = lock(&self.state);
        let action = state.actions.get(&at.batch);
        Ok(action.and_then(|(_, a)| a.output_bytes.clone()))
    }

    fn record_action(&self, run: RunKey, end: &ActionEnd<'_>) {
        let kept = end.to_record().map_err(|e| {
            StoreError::backend("memory", std::io::Error::other(e.message().to_owned()))
        });
        let kept = kept.and_then(|record| match &record.output_bytes {
            Some(bytes) if bytes.len() > MAX_STORED_VALUE => Err(StoreError::too_large(
                end.task,
                bytes.len(),
                self.location(),
            )),
            _ => Ok(record),
        });
        let mut state = lock(&self.state);
        match kept {
            Ok(record) => {
                state.next_action += 1;
                let at = state.next_action;
                state.actions.insert(at, (run, record));
            }
            Err(e) => {
                if let Some(r) = MemoryStore::run_mut(&mut state, run) {
                    r.lost += 1;
                    r.lost_error = Some(e);
                }
            }
        }
    }

    fn record_fan_out(&self, run: RunKey, fan_out: &FanOutRecord) {
        lock(&self.state).fan_outs.push((run, fan_out.clone()));
    }

    fn end_run(&self, run: RunKey, end: RunEnd) -> StoreFuture<'_, RunClosed> {
        let mut state = lock(&self.state);
        let closed = match MemoryStore::run_mut(&mut state, run) {
            Some(r) => {
                r.live = false;
                r.record.status = end.status;
                r.record.error = end.error;
                r.record.ended_at = Some(SystemTime::now());
                r.record.lost_actions += r.lost;
                RunClosed {
                    lost_actions: std::mem::take(&mut r.lost),
                    end_lost: false,
                    error: r.lost_error.take(),
                }
            }
            None => RunClosed {
                lost_actions: 0,
                end_lost: true,
                error: None,
            },
        };
        Box::pin(async move { closed })
    }

    fn release_run(&self, run: RunKey) {
        let mut state = lock(&self.state);
        // Still live: it ended without saying how, which a store shows as a
        // run whose process died. (After `end_run`, nothing to release.)
        if let Some(r) = MemoryStore::run_mut(&mut state, run).filter(|r| r.live) {
            r.live = false;
            r.record.status = RunStatus::Killed;
            r.record.ended_at = Some(SystemTime::now());
        }
    }

    fn flush(&self) -> StoreFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

impl TaskCache for MemoryStore {
    fn get(&self, key: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let state = lock(&self.state);
        Ok(state.cache.get(key).map(|(_, value)| value.to_vec()))
    }

    fn put(&self, entry: CacheEntry) {
        let info = CacheInfo::new(
            entry.key,
            entry.task.to_owned(),
            entry.version.to_owned(),
            entry.output_type.to_owned(),
            entry.value.len() as u64,
            SystemTime::now(),
        );
        lock(&self.state)
            .cache
            .insert(entry.key, (info, entry.value));
    }

    fn entries(&self) -> Result<Vec<CacheInfo>, StoreError> {
        let state = lock(&self.state);
        let mut entries: Vec<CacheInfo> = state.cache.values().map(|(i, _)| i.clone()).collect();
        entries.sort_by_key(|i| i.created_at);
        Ok(entries)
    }

    fn remove(&self, keys: &[[u8; 32]]) -> Result<u64, StoreError> {
        let mut state = lock(&self.state);
        Ok(keys
            .iter()
            .filter(|k| state.cache.remove(*k).is_some())
            .count() as u64)
    }
}

impl RunReader for MemoryStore {
    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let state = lock(&self.state);
        let newest_first = state.runs.values().rev().map(|r| &r.record);
        let passing = newest_first
            .filter(|r| filter.matches(r))
            .skip(filter.offset);
        let limit = filter.limit.unwrap_or(usize::MAX);
        Ok(passing.take(limit).cloned().collect())
    }

    fn actions(
        &self,
        run: RunKey,
        outputs: bool,
        each: &mut dyn FnMut(Vec<ActionRecord>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        // Copied out first: `each` may call back into the store.
        let mut of_run: Vec<ActionRecord> = {
            let state = lock(&self.state);
            let of_run = state.actions.values().filter(|(key, _)| *key == run);
            of_run.map(|(_, a)| a.clone()).collect()
        };
        if !outputs {
            of_run.iter_mut().for_each(|a| a.output_bytes = None);
        }
        for batch in of_run.chunks(BATCH) {
            if each(batch.to_vec()).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn fan_outs(&self, run: RunKey) -> Result<Vec<FanOutRecord>, StoreError> {
        let state = lock(&self.state);
        let of_run = state.fan_outs.iter().filter(|(key, _)| *key == run);
        Ok(of_run.map(|(_, f)| f.clone()).collect())
    }

    fn ended_actions(&self, run: RunKey) -> Result<u64, StoreError> {
        let state = lock(&self.state);
        Ok(state
            .actions
            .values()
            .filter(|(key, _)| *key == run)
            .count() as u64)
    }
}

impl RunOperations for MemoryStore {
    fn request_abort(&self, run: RunKey) -> Result<(), StoreError> {
        if let Some(r) = MemoryStore::run_mut(&mut lock(&self.state), run) {
            r.abort_requested = true;
        }
        Ok(())
    }

    fn abort_requested(&self, run: RunKey) -> Result<bool, StoreError> {
        let state = lock(&self.state);
        Ok(state.runs.get(&run.0).is_some_and(|r| r.abort_requested))
    }

    fn record_log(&self, run: RunKey, line: &LogLine) {
        if let Some(r) = MemoryStore::run_mut(&mut lock(&self.state), run) {
            let mut line = line.clone();
            line.seq = r.logs.len() as u64 + 1;
            r.logs.push(line);
        }
    }

    fn logs(&self, run: RunKey, after: u64, limit: usize) -> Result<Vec<LogLine>, StoreError> {
        let state = lock(&self.state);
        let Some(r) = state.runs.get(&run.0) else {
            return Ok(Vec::new());
        };
        let after = r.logs.iter().filter(|l| l.seq > after);
        Ok(after.take(limit).cloned().collect())
    }

    fn publish_progress(&self, run: RunKey, lines: &[String]) {
        if let Some(r) = MemoryStore::run_mut(&mut lock(&self.state), run) {
            r.progress = Some((SystemTime::now(), lines.to_vec()));
        }
    }

    fn published_progress(
        &self,
        run: RunKey,
    ) -> Result<Option<(SystemTime, Vec<String>)>, StoreError> {
        let state = lock(&self.state);
        Ok(state.runs.get(&run.0).and_then(|r| r.progress.clone()))
    }

    fn delete_runs(&self, runs: &[RunKey]) -> Result<u64, StoreError> {
        let mut state = lock(&self.state);
        let mut deleted = 0;
        for run in runs {
            let ended = state.runs.get(&run.0).is_some_and(|r| !r.live);
            if !ended {
                continue;
            }
            state.runs.remove(&run.0);
            state.actions.retain(|_, (key, _)| key != run);
            state.fan_outs.retain(|(key, _)| key != run);
            deleted += 1;
        }
        Ok(deleted)
    }

    fn compact(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(all(test, feature = "store-contract"))]
mod tests {
    use super::*;

    #[test]
    fn the_memory_store_keeps_the_store_contract() {
        crate::contract::check(&MemoryStore::new(), "memory");
    }
}
