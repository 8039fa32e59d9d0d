//! What every store must do, as one test run against any [`RunStore`]
//! (feature `store-contract`): the in-memory store, SQLite and PostgreSQL
//! each pass it in their own tests. It checks each capability the store
//! says it has, and that the ones it lacks are refused by name.
//!
//! It panics, naming the step and the store, at the first thing that does
//! not hold. It makes runs with ids and names of its own (`contract-...`),
//! so give it a store no other test writes those into.

use crate::backend::RunStore;
use crate::record::{ActionStatus, AttemptTimes, FanOutKind, FanOutRecord, Origin, RunStatus};
use crate::store::{
    ActionEnd, CacheEntry, LogLine, NewRun, OutputRef, RunFilter, RunKey, RunRef, StoreError,
};
use crate::{ActionId, ErrorKind, TaskError};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, SystemTime};

/// Runs every check on `store`; `tag` keeps its runs apart from those of
/// another call on the same store (an id and name are unique in a store).
///
/// # Panics
///
/// At the first step that does not hold, naming it.
pub fn check(store: &dyn RunStore, tag: &str) {
    let place = store.location();
    let run = run_log(store, tag, &place);
    match store.as_cache() {
        Some(_) => cache(store, tag, &place),
        None => refused(store.cache().err(), "a task cache", &place),
    }
    match store.as_reader() {
        Some(_) => reader(store, run, &place),
        None => refused(store.reader().err(), "reading runs", &place),
    }
    match store.as_operations() {
        Some(_) => operations(store, tag, &place),
        None => refused(store.operations().err(), "operating runs", &place),
    }
}

fn refused(error: Option<StoreError>, capability: &str, place: &str) {
    let said = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        said.contains(place) && said.contains(capability),
        "{place}: a missing capability ({capability}) must be refused naming the store, got {said:?}"
    );
}

fn new_run<'a>(id: &'a str, name: Option<&'a str>, inputs: Option<&'a [u8]>) -> NewRun<'a> {
    NewRun {
        id,
        name,
        root_task: "contract.root",
        root_action: ActionId(1),
        inputs,
    }
}

/// A time the contract records: microseconds after a fixed instant, so
/// that a store that keeps less than microseconds fails.
fn at(micros: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_micros(1_780_000_000_000_000 + micros)
}

/// The two attempts of the contract's failed action.
fn two_attempts() -> [AttemptTimes; 2] {
    [
        AttemptTimes {
            started_at: at(3_250),
            ended_at: at(4_001),
        },
        AttemptTimes {
            started_at: at(5_500),
            ended_at: at(7_003),
        },
    ]
}

fn end<'a>(
    id: u128,
    status: ActionStatus,
    output: Option<OutputRef<'a>>,
    error: Option<&'a TaskError>,
    attempt_times: &'a [AttemptTimes],
) -> ActionEnd<'a> {
    ActionEnd {
        id: ActionId(id),
        parent: (id != 1).then_some(ActionId(1)),
        item: (id >= 10).then(|| (ActionId(9), (id - 10) as u64)),
        task: "contract.step",
        group: None,
        status,
        attempts: attempt_times.len().max(1) as u32,
        queued_at: at(1_017),
        started_at: at(3_250),
        ended_at: at(7_125),
        attempt_times,
        error,
        origin: Origin::Executed,
        output,
    }
}

/// Begins a run, records what a run records, ends it failed, resumes it and
/// ends it; returns its key (with three actions and a fan-out recorded).
fn run_log(store: &dyn RunStore, tag: &str, place: &str) -> RunKey {
    let log = store.run_log();
    let id = format!("contract-{tag}-run");
    let name = format!("contract-{tag}-name");
    let key = log
        .begin_run(&new_run(&id, Some(&name), Some(b"inputs")))
        .unwrap_or_else(|e| panic!("{place}: begin_run: {e}"));
    let by_id = log.find_run(RunRef::Id(&id)).unwrap().expect("found by id");
    let by_name = log.find_run(RunRef::Name(&name)).unwrap().expect("by name");
    assert_eq!((by_id.0, by_name.0), (key, key), "{place}: the run's key");
    assert_eq!(by_id.1.status, RunStatus::Running, "{place}: a begun run");
    assert_eq!(by_id.1.name.as_deref(), Some(name.as_str()));
    assert_eq!(
        log.run_inputs(key).unwrap().as_deref(),
        Some(&b"inputs"[..])
    );
    assert!(
        log.begin_run(&new_run(&id, None, None)).is_err(),
        "{place}: a second run under a used id must be refused"
    );

    let failure = TaskError::new(ErrorKind::User, "step two failed");
    log.record_action(
        key,
        &end(
            2,
            ActionStatus::Succeeded,
            Some(OutputRef::Bytes(b"out")),
            None,
            &[],
        ),
    );
    let attempts = two_attempts();
    log.record_action(
        key,
        &end(3, ActionStatus::Failed, None, Some(&failure), &attempts),
    );
    log.record_action(
        key,
        &end(
            10,
            ActionStatus::Succeeded,
            Some(OutputRef::Bytes(b"item")),
            None,
            &[],
        ),
    );
    let mut fan_out = FanOutRecord::new(
        ActionId(9),
        ActionId(1),
        FanOutKind::Map,
        SystemTime::now(),
        SystemTime::now(),
    );
    fan_out.task = Some("contract.step".into());
    fan_out.started = 1;
    fan_out.succeeded = 1;
    log.record_fan_out(key, &fan_out);
    let closed = wait(log.end_run(
        key,
        crate::store::RunEnd {
            status: RunStatus::Failed,
            error: Some(failure.clone()),
        },
    ));
    assert_eq!(
        (closed.lost_actions, closed.end_lost),
        (0, false),
        "{place}: nothing lost: {:?}",
        closed.error
    );
    let (_, ended) = log.find_run(RunRef::Id(&id)).unwrap().unwrap();
    assert_eq!(ended.status, RunStatus::Failed, "{place}: the run's end");
    assert!(ended.ended_at.is_some(), "{place}: an ended run's end time");
    let kept = ended.error.map(|e| e.message().to_owned());
    assert_eq!(
        kept.as_deref(),
        Some("step two failed"),
        "{place}: its error"
    );

    // Taken up again: each output the store gives back for replay is a
    // succeeded action's (a store may give none: the fleet's answers a
    // resubmitted call from its row instead).
    let replay = log
        .resume_run(key, &id)
        .unwrap_or_else(|e| panic!("{place}: resume_run: {e}"));
    for (action, at) in &replay {
        let bytes = log.recorded_output(*at).unwrap();
        let expected: &[u8] = match action.0 {
            2 => b"out",
            10 => b"item",
            other => panic!("{place}: action {other} replayed, but it did not succeed"),
        };
        assert_eq!(
            bytes.as_deref(),
            Some(expected),
            "{place}: a replayed output"
        );
    }
    let (_, again) = log.find_run(RunRef::Id(&id)).unwrap().unwrap();
    assert_eq!((again.status, again.executions), (RunStatus::Running, 2));
    assert!(
        matches!(log.resume_run(key, &id), Err(StoreError::RunBusy { .. })),
        "{place}: a run going on cannot be taken up twice"
    );
    let closed = wait(log.end_run(
        key,
        crate::store::RunEnd {
            status: RunStatus::Succeeded,
            error: None,
        },
    ));
    assert_eq!(closed.lost_actions, 0);
    let (_, done) = log.find_run(RunRef::Id(&id)).unwrap().unwrap();
    assert_eq!(
        done.status,
        RunStatus::Succeeded,
        "{place}: resumed and ended"
    );
    key
}

fn cache(store: &dyn RunStore, tag: &str, place: &str) {
    let cache = store.cache().unwrap();
    let mut key = [0u8; 32];
    key[..tag.len().min(32)].copy_from_slice(&tag.as_bytes()[..tag.len().min(32)]);
    key[31] = 0xC0;
    cache.put(CacheEntry {
        key,
        task: "contract.cached",
        version: "v1",
        output_type: "u64",
        value: Arc::from(&b"cached value"[..]),
    });
    // Visible at once to this process, before or after it is written.
    assert_eq!(
        cache.get(&key).unwrap().as_deref(),
        Some(&b"cached value"[..])
    );
    wait(store.run_log().flush()).unwrap();
    let entry = cache.entries().unwrap().into_iter().find(|e| e.key == key);
    let entry = entry.unwrap_or_else(|| panic!("{place}: a cache entry listed"));
    assert_eq!(
        (
            entry.task.as_str(),
            entry.version.as_str(),
            entry.output_type.as_str(),
            entry.size
        ),
        ("contract.cached", "v1", "u64", 12),
        "{place}: a cache entry's description"
    );
    assert_eq!(
        cache.remove(&[key]).unwrap(),
        1,
        "{place}: one entry removed"
    );
    assert_eq!(cache.get(&key).unwrap(), None, "{place}: a removed entry");
    assert_eq!(cache.remove(&[key]).unwrap(), 0);
}

fn reader(store: &dyn RunStore, run: RunKey, place: &str) {
    let reader = store.reader().unwrap();
    let mut actions = reader.all_actions(run, false).unwrap();
    actions.sort_by_key(|a| a.id.0);
    let ids: Vec<u128> = actions.iter().map(|a| a.id.0).collect();
    assert_eq!(ids, [2, 3, 10], "{place}: the run's actions");
    assert!(
        actions.iter().all(|a| a.output_bytes.is_none()),
        "{place}: no outputs unless asked"
    );
    assert_eq!(actions[1].status, ActionStatus::Failed);
    assert_eq!(
        actions[1].error.as_ref().map(TaskError::message),
        Some("step two failed")
    );
    assert_eq!(
        actions[2].item,
        Some((ActionId(9), 0)),
        "{place}: an item's place"
    );
    for action in &actions {
        assert_eq!(
            (action.queued_at, action.started_at, action.ended_at),
            (at(1_017), at(3_250), Some(at(7_125))),
            "{place}: an action's times, to the microsecond"
        );
    }
    assert_eq!(
        actions[1].attempt_times,
        two_attempts(),
        "{place}: each attempt's times, to the microsecond"
    );
    assert!(
        actions[0].attempt_times.is_empty(),
        "{place}: a single attempt's times are the action's"
    );
    let with_outputs = reader.all_actions(run, true).unwrap();
    let output = with_outputs.iter().find(|a| a.id == ActionId(2));
    let output = output.and_then(|a| a.output_bytes.as_deref());
    assert_eq!(output, Some(&b"out"[..]), "{place}: an output when asked");
    assert_eq!(
        reader.ended_actions(run).unwrap(),
        3,
        "{place}: ended actions"
    );

    let fan_outs = reader.fan_outs(run).unwrap();
    assert_eq!(fan_outs.len(), 1, "{place}: the run's fan-outs");
    assert_eq!(
        (
            fan_outs[0].kind,
            fan_outs[0].task.as_deref(),
            fan_outs[0].succeeded
        ),
        (FanOutKind::Map, Some("contract.step"), 1)
    );

    let runs = reader.list_runs(&RunFilter::all()).unwrap();
    assert!(
        runs.iter().any(|r| r.id.starts_with("contract-")),
        "{place}: listed"
    );
    let succeeded = reader
        .list_runs(&RunFilter::all().status(RunStatus::Succeeded))
        .unwrap();
    assert!(succeeded.iter().all(|r| r.status == RunStatus::Succeeded));
    let failed = reader
        .list_runs(
            &RunFilter::all()
                .status(RunStatus::Failed)
                .task("contract.root"),
        )
        .unwrap();
    assert!(failed.iter().all(|r| r.status == RunStatus::Failed));
    let one = reader.list_runs(&RunFilter::all().page(0, 1)).unwrap();
    assert_eq!(one.len(), 1, "{place}: a page of one");
}

fn operations(store: &dyn RunStore, tag: &str, place: &str) {
    let log = store.run_log();
    let ops = store.operations().unwrap();
    let id = format!("contract-{tag}-operated");
    let key = log.begin_run(&new_run(&id, None, None)).unwrap();
    assert!(!ops.abort_requested(key).unwrap(), "{place}: no abort yet");
    ops.request_abort(key).unwrap();
    assert!(ops.abort_requested(key).unwrap(), "{place}: an abort filed");

    for message in ["first line", "second line"] {
        let line = LogLine::new(
            Some(ActionId(1)),
            SystemTime::now(),
            "INFO",
            "contract",
            message,
        );
        ops.record_log(key, &line);
    }
    ops.publish_progress(key, &["half done".to_owned()]);
    wait(log.flush()).unwrap();
    let lines = eventually(place, "the log lines", || {
        let lines = ops.logs(key, 0, 100).unwrap();
        (lines.len() == 2).then_some(lines)
    });
    assert_eq!(
        (lines[0].message.as_str(), lines[1].message.as_str()),
        ("first line", "second line"),
        "{place}: log lines in order"
    );
    assert!(lines[0].seq < lines[1].seq, "{place}: log lines numbered");
    let after = ops.logs(key, lines[0].seq, 100).unwrap();
    assert_eq!(after.len(), 1, "{place}: the lines after the first");
    assert_eq!(ops.logs(key, 0, 1).unwrap().len(), 1, "{place}: a limit");
    let shown = eventually(place, "the published progress", || {
        ops.published_progress(key).unwrap().map(|(_, lines)| lines)
    });
    assert_eq!(shown, ["half done"]);

    assert_eq!(
        ops.delete_runs(&[key]).unwrap(),
        0,
        "{place}: a live run is kept"
    );
    wait(log.end_run(
        key,
        crate::store::RunEnd {
            status: RunStatus::Cancelled,
            error: None,
        },
    ));
    assert_eq!(
        ops.delete_runs(&[key]).unwrap(),
        1,
        "{place}: an ended run goes"
    );
    assert!(
        log.find_run(RunRef::Id(&id)).unwrap().is_none(),
        "{place}: deleted"
    );
    ops.compact().unwrap();
}

/// What `found` gives within a few seconds (a store may take what it
/// queued a moment to show).
fn eventually<T>(place: &str, what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(value) = found() {
            return value;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{place}: {what} never showed");
}

/// Drives a store's future to its end on this thread.
fn wait<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}
