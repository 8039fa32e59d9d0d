//! The store's capabilities are all a run needs: the store kept in memory
//! (`flyte::store::MemoryStore`) runs a map, serves a cache hit and resumes
//! a failed run, with no SQLite; a store with only the capability every
//! store has (its run log) runs too, and what it lacks is a clear error.

use flyte::prelude::*;
use flyte::record::{FanOutKind, RunStatus};
use flyte::store::{
    MemoryStore, RunFilter, RunKey, RunLog, RunReader, RunRef, RunStore, StoreError, TaskCache,
};
use flyte::Origin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The run key of run `id`.
fn run_key(store: &MemoryStore, id: &str) -> RunKey {
    store.find_run(RunRef::Id(id)).unwrap().unwrap().0
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
    let store = Arc::new(MemoryStore::new());
    let outcome = flyte::Runner::new().store(store.clone()).run(squares(10));
    assert_eq!(
        outcome.output().ok(),
        Some(&(0..10).map(|x| x * x).collect())
    );

    let runs = store.list_runs(&RunFilter::all()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert_eq!(runs[0].id, outcome.run_id());
    let key = run_key(&store, outcome.run_id());
    let actions = store.all_actions(key, false).unwrap();
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
    let store = Arc::new(MemoryStore::new());
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
    assert_eq!(store.entries().unwrap().len(), 1);
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
    let store = Arc::new(MemoryStore::new());
    let runner = flyte::Runner::new().store(store.clone());
    let first = runner.run(all_flaky(6));
    assert!(first.output().is_err());
    assert_eq!(FLAKY_RUNS.load(Ordering::SeqCst), 6);
    let key = run_key(&store, first.run_id());
    let (_, run) = store.find_run(RunRef::Id(first.run_id())).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);

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
    store.resume_run(key, first.run_id()).unwrap();
    let busy = runner.resume::<Vec<u64>>(first.run_id());
    let err = busy.output().unwrap_err();
    assert!(
        err.message().contains("going on in another process"),
        "{err}"
    );
}

/// A store with only the capability every store has: its run log (kept
/// in a `MemoryStore` underneath). No cache, no read API, no operations.
#[derive(Debug, Default)]
struct RunLogOnly(MemoryStore);

impl RunStore for RunLogOnly {
    fn location(&self) -> String {
        "a run log only".into()
    }

    fn run_log(&self) -> &dyn RunLog {
        &self.0
    }
}

static UNCACHED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[task(env = ENV, cache = "auto")]
fn cached_length(key: String) -> usize {
    UNCACHED_RUNS.fetch_add(1, Ordering::SeqCst);
    key.len()
}

#[test]
fn a_store_with_only_a_run_log_records_runs_and_names_what_it_lacks() {
    let only = Arc::new(RunLogOnly::default());
    let runner = flyte::Runner::new().store(only.clone());
    let outcome = runner.run(squares(5));
    assert_eq!(outcome.output().ok(), Some(&vec![0, 1, 4, 9, 16]));
    let (key, run) = only
        .0
        .find_run(RunRef::Id(outcome.run_id()))
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(
        only.0.ended_actions(key).unwrap(),
        6,
        "five items and the root"
    );

    // A cached task runs every time on a store without a cache.
    let first = runner.run(cached_length("abc".into()));
    let second = runner.run(cached_length("abc".into()));
    assert_eq!(
        (first.output().ok(), second.output().ok()),
        (Some(&3), Some(&3))
    );
    assert_eq!(UNCACHED_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(second.actions().origin, Origin::Executed);

    // What it lacks is an error naming the store and the capability.
    let store: Arc<dyn RunStore> = only;
    let lacks = |e: StoreError| e.to_string();
    assert_eq!(
        lacks(store.reader().err().unwrap()),
        "the flyte store at a run log only does not support reading runs"
    );
    assert_eq!(
        lacks(store.cache().err().unwrap()),
        "the flyte store at a run log only does not support a task cache"
    );
    assert!(lacks(store.operations().err().unwrap()).contains("operating runs"));
    assert!(store.queue().is_none());
    // The report reads runs: it says what is missing instead of failing
    // somewhere inside.
    let dir = tempfile::tempdir().unwrap();
    let err = outcome
        .write_report(dir.path().join("report.html"))
        .unwrap_err();
    assert!(
        err.message().contains("does not support reading runs"),
        "{err}"
    );
}
