//! What a run records by default, and what it says about it: the cache
//! within one run, `RunOutcome::recorded`, stores that cannot be written,
//! and reading a store without changing it.

use flyte::prelude::*;
use flyte::store::Store;
use flyte::{Origin, Recorded, Runner};
use std::sync::atomic::{AtomicU32, Ordering};
use tempfile::TempDir;

static RUNS_OF_SLOW_SQUARE: AtomicU32 = AtomicU32::new(0);

#[task(cache = "auto")]
fn slow_square(x: u64) -> u64 {
    RUNS_OF_SLOW_SQUARE.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[task]
async fn square_twice(x: u64) -> Result<(u64, u64), TaskError> {
    let a = slow_square(x).await?;
    let b = slow_square(x).await?; // at once: well within the writer's linger
    Ok((a, b))
}

#[task]
async fn squares_of(xs: Vec<u64>) -> Result<Vec<u64>, TaskError> {
    flyte::map(slow_square, xs).concurrency(1).await
}

/// Regression: the second lookup only saw committed rows, so a call less
/// than ~5 ms after the first ran the task again.
#[test]
fn a_cached_task_hits_within_the_same_run() {
    let home = TempDir::new().unwrap();
    let before = RUNS_OF_SLOW_SQUARE.load(Ordering::SeqCst);
    let outcome = Runner::new().home(home.path()).run(square_twice(7));
    assert_eq!(outcome.output().unwrap(), &(49, 49));
    assert_eq!(RUNS_OF_SLOW_SQUARE.load(Ordering::SeqCst) - before, 1);
    let origins: Vec<Origin> = outcome
        .actions()
        .children
        .iter()
        .map(|c| c.origin)
        .collect();
    assert_eq!(origins, [Origin::Executed, Origin::Cached]);

    // One map, one input many times, one at a time: each after the first hits.
    let before = RUNS_OF_SLOW_SQUARE.load(Ordering::SeqCst);
    let outcome = Runner::new()
        .home(home.path())
        .run(squares_of(vec![8, 8, 8, 8]));
    assert_eq!(outcome.output().unwrap(), &[64, 64, 64, 64]);
    assert_eq!(RUNS_OF_SLOW_SQUARE.load(Ordering::SeqCst) - before, 1);
    assert_eq!(outcome.actions().fan_outs[0].cached, 3);
}

static RUNS_OF_SLOW_FETCH: AtomicU32 = AtomicU32::new(0);

#[task(cache = "auto")]
async fn slow_fetch(key: String) -> String {
    RUNS_OF_SLOW_FETCH.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    key.to_uppercase()
}

#[task]
async fn fetch_four_times(key: String) -> Result<Vec<String>, TaskError> {
    let calls = (0..4).map(|_| slow_fetch(key.clone())).collect::<Vec<_>>();
    flyte::gather(calls).await
}

/// Concurrent identical calls in one process: the first computes, the
/// others wait for it and hit the cache (a single flight).
#[test]
fn concurrent_identical_cached_calls_compute_once() {
    let home = TempDir::new().unwrap();
    let before = RUNS_OF_SLOW_FETCH.load(Ordering::SeqCst);
    let outcome = Runner::new()
        .home(home.path())
        .run(fetch_four_times("k".into()));
    assert_eq!(outcome.output().unwrap(), &vec!["K".to_owned(); 4]);
    assert_eq!(RUNS_OF_SLOW_FETCH.load(Ordering::SeqCst) - before, 1);
    let gather = &outcome.actions().fan_outs[0];
    assert_eq!((gather.succeeded, gather.cached), (4, 3));
}

#[task]
fn plain(x: u32) -> u32 {
    x + 1
}

#[test]
fn the_outcome_says_how_much_was_recorded() {
    let home = TempDir::new().unwrap();
    let recorded = Runner::new().home(home.path()).run(plain(1));
    assert_eq!(recorded.recorded(), &Recorded::Complete);
    let off = Runner::new().home(home.path()).persist(false).run(plain(1));
    assert_eq!(off.recorded(), &Recorded::Off { reason: None });
}

#[test]
fn a_store_that_cannot_be_written_is_a_clear_error_for_a_run_that_asked_for_it() {
    let home = TempDir::new().unwrap();
    // A directory where the database should be.
    std::fs::create_dir_all(home.path().join("flyte.db")).unwrap();
    let outcome = Runner::new().home(home.path()).run(plain(1));
    let err = outcome.into_output().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store, "{err}");
    let text = err.to_string();
    assert!(text.contains("flyte.db"), "names the file: {text}");
    assert!(text.contains("FLYTE_HOME"), "says what to do: {text}");
}

#[test]
fn open_read_only_changes_nothing() {
    let home = TempDir::new().unwrap();
    let missing = Store::open_read_only(home.path()).unwrap_err();
    assert!(missing.to_string().contains("no flyte store"), "{missing}");
    assert!(
        !home.path().join("flyte.db").exists(),
        "nothing was created"
    );

    let outcome = Runner::new().home(home.path()).run(plain(41));
    let store = Store::open_read_only(home.path()).unwrap();
    let run = store.run(outcome.run_id()).unwrap().expect("the run");
    assert_eq!(run.actions[0].output::<u32>().unwrap(), Some(42));
    assert_eq!(run.lost_actions, 0);
}
