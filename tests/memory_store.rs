//! The store interface is all a run needs: a store kept in memory runs a
//! map, serves a cache hit and resumes a failed run, with no SQLite.

use flyte::prelude::*;
use flyte::record::{ActionRecord, ActionStatus, FanOutKind, FanOutRecord, RunRecord, RunStatus};
use flyte::store::{
    ActionEnd, CacheEntry, NewRun, OutputAt, RunClosed, RunEnd, RunFilter, RunKey, RunRef,
    RunStore, StoreError, StoreFuture,
};
use flyte::{ActionId, Origin};
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// Everything in one mutex: a test store, not a fast one.
#[derive(Debug, Default)]
struct MemoryStore(Mutex<Memory>);

#[derive(Debug, Default)]
struct Memory {
    /// By key (the index).
    runs: Vec<(RunRecord, Option<Vec<u8>>)>,
    /// Every record appended, with its run: a record's place is its `OutputAt`.
    actions: Vec<(RunKey, ActionRecord)>,
    fan_outs: Vec<(RunKey, FanOutRecord)>,
    cache: HashMap<[u8; 32], Vec<u8>>,
    live: HashSet<RunKey>,
}

impl MemoryStore {
    fn memory(&self) -> MutexGuard<'_, Memory> {
        self.0.lock().unwrap()
    }

    fn run_key(&self, id: &str) -> RunKey {
        self.find_run(RunRef::Id(id)).unwrap().unwrap().0
    }
}

impl RunStore for MemoryStore {
    fn location(&self) -> String {
        "memory".into()
    }

    fn find_run(&self, run: RunRef<'_>) -> Result<Option<(RunKey, RunRecord)>, StoreError> {
        let memory = self.memory();
        let found = memory
            .runs
            .iter()
            .enumerate()
            .find(|(_, (r, _))| match run {
                RunRef::Id(id) => r.id == id,
                RunRef::Name(name) => r.name.as_deref() == Some(name),
            });
        Ok(found.map(|(i, (r, _))| (RunKey(i as i64), r.clone())))
    }

    fn run_inputs(&self, run: RunKey) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.memory().runs[run.0 as usize].1.clone())
    }

    fn begin_run(&self, run: &NewRun<'_>) -> Result<RunKey, StoreError> {
        let mut memory = self.memory();
        let mut record = RunRecord::new(
            run.id.to_owned(),
            run.root_task.to_owned(),
            run.root_action,
            RunStatus::Running,
            SystemTime::now(),
        );
        record.name = run.name.map(str::to_owned);
        memory.runs.push((record, run.inputs.map(<[u8]>::to_vec)));
        let key = RunKey(memory.runs.len() as i64 - 1);
        memory.live.insert(key);
        Ok(key)
    }

    fn resume_run(&self, run: RunKey, id: &str) -> Result<HashMap<ActionId, OutputAt>, StoreError> {
        let mut memory = self.memory();
        if !memory.live.insert(run) {
            return Err(StoreError::RunBusy { id: id.to_owned() });
        }
        let record = &mut memory.runs[run.0 as usize].0;
        record.status = RunStatus::Running;
        record.executions += 1;
        let mut replay = HashMap::new();
        for (at, (key, action)) in memory.actions.iter().enumerate() {
            if *key == run && action.status == ActionStatus::Succeeded {
                let at = OutputAt {
                    batch: at as i64,
                    index: 0,
                };
                replay.insert(action.id, at);
            }
        }
        Ok(replay)
    }

    fn recorded_output(&self, at: OutputAt) -> Result<Option<Vec<u8>>, StoreError> {
        let memory = self.memory();
        Ok(memory.actions[at.batch as usize].1.output_bytes.clone())
    }

    fn record_action(&self, run: RunKey, end: &ActionEnd<'_>) {
        let record = end.to_record().expect("outputs encode");
        self.memory().actions.push((run, record));
    }

    fn record_fan_out(&self, run: RunKey, fan_out: &FanOutRecord) {
        self.memory().fan_outs.push((run, fan_out.clone()));
    }

    fn end_run(&self, run: RunKey, end: RunEnd) -> StoreFuture<'_, RunClosed> {
        let mut memory = self.memory();
        memory.live.remove(&run);
        let record = &mut memory.runs[run.0 as usize].0;
        record.status = end.status;
        record.error = end.error;
        record.ended_at = Some(SystemTime::now());
        Box::pin(async { RunClosed::default() })
    }

    fn release_run(&self, run: RunKey) {
        self.memory().live.remove(&run);
    }

    fn cache_get(&self, key: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.memory().cache.get(key).cloned())
    }

    fn cache_put(&self, entry: CacheEntry) {
        self.memory().cache.insert(entry.key, entry.value.to_vec());
    }

    fn flush(&self) -> StoreFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let memory = self.memory();
        let runs = memory.runs.iter().rev().map(|(r, _)| r);
        let runs = runs.filter(|r| filter.matches(r)).skip(filter.offset);
        Ok(runs
            .take(filter.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    fn actions(
        &self,
        run: RunKey,
        outputs: bool,
        each: &mut dyn FnMut(Vec<ActionRecord>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let mut actions: Vec<ActionRecord> = self
            .memory()
            .actions
            .iter()
            .filter(|(key, _)| *key == run)
            .map(|(_, a)| a.clone())
            .collect();
        if !outputs {
            actions.iter_mut().for_each(|a| a.output_bytes = None);
        }
        for batch in actions.chunks(4) {
            if each(batch.to_vec()).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn fan_outs(&self, run: RunKey) -> Result<Vec<FanOutRecord>, StoreError> {
        let memory = self.memory();
        let of_run = memory.fan_outs.iter().filter(|(key, _)| *key == run);
        Ok(of_run.map(|(_, f)| f.clone()).collect())
    }
}

static ENV: TaskEnvironment = TaskEnvironment::new("memory_store");

#[task(env = ENV)]
fn square(x: u64) -> u64 {
    x * x
}

#[task(env = ENV)]
async fn squares(n: u64) -> Result<Vec<u64>, TaskError> {
    flyte::map(square, 0..n).concurrency(3).await
}

#[test]
fn a_map_is_recorded_in_a_store_kept_in_memory() {
    let store = Arc::new(MemoryStore::default());
    let outcome = flyte::Runner::new().store(store.clone()).run(squares(10));
    assert_eq!(
        outcome.output().ok(),
        Some(&(0..10).map(|x| x * x).collect())
    );

    let runs = store.list_runs(&RunFilter::all()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert_eq!(runs[0].id, outcome.run_id());
    let key = store.run_key(outcome.run_id());
    let mut actions = Vec::new();
    store
        .actions(key, false, &mut |batch| {
            actions.extend(batch);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(actions.len(), 11, "ten items and the root");
    assert!(
        actions.iter().all(|a| a.output_bytes.is_none()),
        "no outputs unless asked"
    );
    let items: Vec<_> = actions.iter().filter(|a| a.item.is_some()).collect();
    assert_eq!(items.len(), 10);
    assert!(items.iter().all(|a| a.task == "memory_store.square"));

    let fan_outs = store.fan_outs(key).unwrap();
    assert_eq!(fan_outs.len(), 1);
    let map = &fan_outs[0];
    assert_eq!(map.kind, FanOutKind::Map);
    assert_eq!(map.task.as_deref(), Some("memory_store.square"));
    assert_eq!(map.concurrency, Some(3));
    assert_eq!((map.started, map.succeeded, map.failed), (10, 10, 0));
    assert_eq!(items[0].item.unwrap().0, map.id, "items name their fan-out");
    assert!(map.ended_at >= map.started_at);
    // The run's own tree holds the same shapes: its map's summary is the
    // stored record, its root the stored action (less the output).
    let summary = &outcome.actions().fan_outs[0];
    assert_eq!(summary.fan_out.id, map.id);
    assert_eq!(summary.task.as_deref(), Some("memory_store.square"));
    assert_eq!((summary.concurrency, summary.succeeded), (Some(3), 10));
    let root = actions.iter().find(|a| a.parent.is_none()).unwrap();
    assert_eq!(outcome.actions().action.id, root.id);
    assert_eq!(outcome.actions().status, root.status);
}

static CACHED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[task(env = ENV, cache = "auto")]
fn slow_lookup(key: String) -> usize {
    CACHED_RUNS.fetch_add(1, Ordering::SeqCst);
    key.len()
}

#[test]
fn a_cached_output_is_served_from_a_store_kept_in_memory() {
    let store = Arc::new(MemoryStore::default());
    let runner = flyte::Runner::new().store(store.clone());
    let first = runner.run(slow_lookup("abcd".into()));
    let second = runner.run(slow_lookup("abcd".into()));
    assert_eq!(first.output().ok(), Some(&4));
    assert_eq!(second.output().ok(), Some(&4));
    assert_eq!(
        CACHED_RUNS.load(Ordering::SeqCst),
        1,
        "the second run hit the cache"
    );
    assert_eq!(second.actions().origin, Origin::Cached);
    assert_eq!(store.memory().cache.len(), 1);
}

static BROKEN: AtomicBool = AtomicBool::new(true);
static FLAKY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[task(env = ENV, retries = 0)]
fn flaky(x: u64) -> Result<u64, TaskError> {
    FLAKY_RUNS.fetch_add(1, Ordering::SeqCst);
    if x == 3 && BROKEN.load(Ordering::SeqCst) {
        return Err(TaskError::new(flyte::ErrorKind::User, "item 3 is broken"));
    }
    Ok(x + 100)
}

#[task(env = ENV)]
async fn all_flaky(n: u64) -> Result<Vec<u64>, TaskError> {
    let settled = flyte::map(flaky, 0..n).collect_errors().await;
    settled.into_iter().collect()
}

#[test]
fn a_failed_run_resumes_from_a_store_kept_in_memory() {
    let store = Arc::new(MemoryStore::default());
    let runner = flyte::Runner::new().store(store.clone());
    let first = runner.run(all_flaky(6));
    assert!(first.output().is_err());
    assert_eq!(FLAKY_RUNS.load(Ordering::SeqCst), 6);
    let key = store.run_key(first.run_id());
    assert_eq!(store.memory().runs[0].0.status, RunStatus::Failed);

    BROKEN.store(false, Ordering::SeqCst);
    let again = runner.resume::<Vec<u64>>(first.run_id());
    assert_eq!(again.run_id(), first.run_id());
    assert_eq!(again.output().ok(), Some(&(100..106).collect()));
    assert_eq!(
        FLAKY_RUNS.load(Ordering::SeqCst),
        7,
        "only the failed item ran again"
    );

    let (_, run) = store.find_run(RunRef::Id(first.run_id())).unwrap().unwrap();
    assert_eq!((run.status, run.executions), (RunStatus::Succeeded, 2));
    let fan_outs = store.fan_outs(key).unwrap();
    assert_eq!(fan_outs.len(), 2, "one map per execution");
    assert_eq!((fan_outs[0].succeeded, fan_outs[0].failed), (5, 1));
    assert_eq!((fan_outs[1].replayed, fan_outs[1].succeeded), (5, 6));
    // A run going on cannot be resumed twice at once.
    store.memory().live.insert(key);
    let busy = runner.resume::<Vec<u64>>(first.run_id());
    let err = busy.output().unwrap_err();
    assert!(
        err.message().contains("going on in another process"),
        "{err}"
    );
}
