//! Resume: a run executed again replays what succeeded and runs the rest.

use flyte::prelude::*;
use flyte::store::{RunStatus, Store};
use flyte::{Origin, Runner};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tempfile::TempDir;

const ITEMS: usize = 1_000;

/// How often each item ran, per test.
struct Runs(Mutex<Vec<u32>>);

impl Runs {
    const fn new() -> Self {
        Runs(Mutex::new(Vec::new()))
    }

    fn count(&self, i: usize) {
        let mut runs = self.0.lock().unwrap();
        if runs.len() < ITEMS {
            runs.resize(ITEMS, 0);
        }
        runs[i] += 1;
    }

    fn take(&self) -> Vec<u32> {
        let mut runs = self.0.lock().unwrap();
        let out = runs.clone();
        runs.iter_mut().for_each(|n| *n = 0);
        out
    }
}

static FAIL_FAST_RUNS: Runs = Runs::new();
static FAIL_FAST_BROKEN: AtomicBool = AtomicBool::new(true);

#[task]
async fn fail_fast_item(i: usize) -> Result<usize, TaskError> {
    FAIL_FAST_RUNS.count(i);
    if i == 700 && FAIL_FAST_BROKEN.load(Ordering::SeqCst) {
        return Err(TaskError::new(ErrorKind::User, "item 700 is broken"));
    }
    tokio::task::yield_now().await;
    Ok(i * 2)
}

#[task]
async fn fail_fast_all(n: usize) -> Result<usize, TaskError> {
    let out = flyte::map(fail_fast_item, 0..n).concurrency(16).await?;
    Ok(out.iter().sum())
}

#[test]
fn resume_reexecutes_only_what_did_not_succeed() {
    let home = TempDir::new().unwrap();
    let runner = Runner::new().home(home.path());
    let first = runner.run(fail_fast_all(ITEMS));
    let run_id = first.run_id().to_owned();
    let err = first.into_output().unwrap_err();
    assert_eq!(err.index(), Some(700));
    let first_runs = FAIL_FAST_RUNS.take();
    let store = Store::open(home.path()).unwrap();
    let record = store.run(&run_id).unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    let succeeded: Vec<bool> = (0..ITEMS)
        .map(|i| {
            record
                .actions
                .iter()
                .any(|a| a.item.map(|(_, idx)| idx) == Some(i as u64) && a.output_bytes.is_some())
        })
        .collect();
    assert!(!succeeded[700]);
    assert!(
        succeeded.iter().filter(|s| **s).count() >= 600,
        "fail-fast stopped early"
    );

    FAIL_FAST_BROKEN.store(false, Ordering::SeqCst);
    let second = runner.resume::<usize>(&run_id);
    assert_eq!(second.run_id(), run_id);
    let map = &second.actions().fan_outs[0];
    assert_eq!(map.succeeded, ITEMS as u64);
    let replayed = succeeded.iter().filter(|s| **s).count() as u64;
    assert_eq!(map.replayed, replayed);
    assert_eq!(
        second.into_output().unwrap(),
        (0..ITEMS).map(|i| i * 2).sum::<usize>()
    );
    let second_runs = FAIL_FAST_RUNS.take();
    for i in 0..ITEMS {
        let expected = u32::from(!succeeded[i]);
        assert_eq!(
            second_runs[i], expected,
            "item {i} (ran {} time(s) the first time)",
            first_runs[i]
        );
    }
    let record = store.run(&run_id).unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Succeeded);
    assert_eq!(record.executions, 2);
}

static SETTLED_RUNS: Runs = Runs::new();
static SETTLED_BROKEN: AtomicBool = AtomicBool::new(true);

#[task]
fn settled_item(i: usize) -> Result<usize, TaskError> {
    SETTLED_RUNS.count(i);
    if i == 700 && SETTLED_BROKEN.load(Ordering::SeqCst) {
        return Err(TaskError::new(ErrorKind::User, "item 700 is broken"));
    }
    Ok(i)
}

#[task]
async fn settled_all(n: usize) -> Result<usize, TaskError> {
    let results = flyte::map(settled_item, 0..n)
        .concurrency(8)
        .collect_errors()
        .await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    if failed > 0 {
        return Err(TaskError::new(
            ErrorKind::User,
            format!("{failed} items failed"),
        ));
    }
    Ok(results.into_iter().map(|r| r.unwrap_or(0)).sum())
}

#[test]
fn running_again_under_the_same_name_reexecutes_only_the_failed_item() {
    let home = TempDir::new().unwrap();
    let runner = Runner::new().home(home.path()).name("settled-nightly");
    let first = runner.run(settled_all(ITEMS));
    assert!(first.output().is_err());
    assert!(SETTLED_RUNS.take().iter().all(|n| *n == 1));

    SETTLED_BROKEN.store(false, Ordering::SeqCst);
    let second = runner.run(settled_all(ITEMS));
    assert_eq!(second.run_id(), first.run_id(), "the name resumes the run");
    assert_eq!(
        second.actions().origin,
        Origin::Executed,
        "the root failed before"
    );
    assert_eq!(second.actions().fan_outs[0].replayed, ITEMS as u64 - 1);
    assert_eq!(second.into_output().unwrap(), (0..ITEMS).sum::<usize>());
    let runs = SETTLED_RUNS.take();
    assert_eq!(runs[700], 1);
    assert_eq!(runs.iter().sum::<u32>(), 1, "only item 700 ran again");

    // A third time: the root succeeded, so it is replayed whole.
    let third = runner.run(settled_all(ITEMS));
    assert_eq!(third.actions().origin, Origin::Replayed);
    assert_eq!(SETTLED_RUNS.take().iter().sum::<u32>(), 0);
}

#[task]
fn plain(i: usize) -> usize {
    i
}

#[test]
fn a_used_name_refuses_another_call() {
    let home = TempDir::new().unwrap();
    let runner = Runner::new().home(home.path()).name("once");
    runner.run(plain(1)).into_output().unwrap();
    let err = runner.run(plain(2)).into_output().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("pick another name"), "{err}");
}

#[test]
fn resuming_an_unknown_run_names_the_store() {
    let home = TempDir::new().unwrap();
    let err = Runner::new()
        .home(home.path())
        .resume::<u64>("r0000")
        .into_output()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.message().contains("r0000"), "{err}");
    assert!(err.message().contains("Store::runs"), "{err}");
}

#[test]
fn resuming_with_the_wrong_output_type_is_an_input_error() {
    let home = TempDir::new().unwrap();
    let runner = Runner::new().home(home.path());
    let first = runner.run(plain(5));
    let err = runner
        .resume::<String>(first.run_id())
        .into_output()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input);
}
