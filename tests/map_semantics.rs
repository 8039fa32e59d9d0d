//! `map` and `map_stream`: order, concurrency, fail-fast, settle, streaming,
//! min_success_ratio, lazy input.

mod common;

use common::Gauge;
use flyte::prelude::*;
use futures_util::StreamExt;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static ENV: TaskEnvironment = TaskEnvironment::new("map_env");

#[derive(Debug, thiserror::Error)]
#[error("item {0} is bad")]
struct Bad(i64);

#[task(env = ENV)]
fn double(x: i64) -> i64 {
    x * 2
}

#[task(env = ENV)]
fn scale(x: i64, factor: i64) -> i64 {
    x * factor
}

#[task(env = ENV)]
async fn fail_on_negative(x: i64) -> Result<i64, Bad> {
    // Later items finish first, so input order != completion order.
    tokio::time::sleep(Duration::from_millis((10 - x.rem_euclid(10)) as u64)).await;
    if x < 0 {
        Err(Bad(x))
    } else {
        Ok(x)
    }
}

#[test]
fn results_come_back_in_input_order() {
    let out = flyte::map(fail_on_negative, 0..30)
        .concurrency(7)
        .wait()
        .unwrap();
    assert_eq!(out, (0..30).collect::<Vec<_>>());
}

#[test]
fn a_closure_binds_extra_arguments() {
    let factor = 3;
    let out = flyte::map(move |x| scale(x, factor), vec![1, 2, 3])
        .wait()
        .unwrap();
    assert_eq!(out, vec![3, 6, 9]);
}

#[test]
fn empty_input_gives_empty_output() {
    let out = flyte::map(double, Vec::<i64>::new()).wait().unwrap();
    assert!(out.is_empty());
}

static IN_FLIGHT: Gauge = Gauge::new();

#[task(env = ENV)]
async fn gauge(x: u64) -> u64 {
    let _running = IN_FLIGHT.enter();
    tokio::time::sleep(Duration::from_millis(20)).await;
    x
}

#[test]
fn concurrency_bounds_items_in_flight_and_zero_is_unbounded() {
    let out = flyte::map(gauge, 0..40).concurrency(4).wait().unwrap();
    assert_eq!(out.len(), 40);
    let max = IN_FLIGHT.take_peak();
    assert!((2..=4).contains(&max), "max in flight {max}");

    let started = Instant::now();
    flyte::map(gauge, 0..40).concurrency(0).wait().unwrap();
    let max = IN_FLIGHT.take_peak();
    assert!(max > 4, "unbounded map ran only {max} at once");
    // 40 sleeps of 20ms, all at once: far under the 800ms they take in series.
    assert!(started.elapsed() < Duration::from_millis(400));
}

static STARTED: AtomicUsize = AtomicUsize::new(0);
static FINISHED: AtomicUsize = AtomicUsize::new(0);

#[task(env = ENV)]
async fn slow_unless_first(x: i64) -> Result<i64, Bad> {
    STARTED.fetch_add(1, Ordering::SeqCst);
    if x == 3 {
        return Err(Bad(x));
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    FINISHED.fetch_add(1, Ordering::SeqCst);
    Ok(x)
}

#[test]
fn fail_fast_returns_the_first_error_cancels_siblings_and_starts_nothing_new() {
    let started_at = Instant::now();
    let err = flyte::map(slow_unless_first, 0..100)
        .concurrency(5)
        .wait()
        .unwrap_err();
    assert!(
        started_at.elapsed() < Duration::from_secs(5),
        "siblings were not cancelled"
    );
    assert_eq!(err.kind(), ErrorKind::User);
    assert_eq!(err.index(), Some(3));
    assert!(err.to_string().contains("(item 3)"), "{err}");
    assert!(
        STARTED.load(Ordering::SeqCst) <= 5,
        "unstarted items were started"
    );
    assert_eq!(FINISHED.load(Ordering::SeqCst), 0);
}

#[test]
fn collect_errors_settles_every_item_in_input_order() {
    let items = vec![1, -2, 3, -4, 5];
    let all = flyte::map(fail_on_negative, items)
        .concurrency(2)
        .collect_errors()
        .wait();
    assert_eq!(all.len(), 5);
    for (i, result) in all.iter().enumerate() {
        match result {
            Ok(v) => assert_eq!(*v, [1, -2, 3, -4, 5][i]),
            Err(e) => {
                assert_eq!(e.index(), Some(i));
                assert!(e.downcast_ref::<Bad>().is_some());
            }
        }
    }
    assert_eq!(all.iter().filter(|r| r.is_err()).count(), 2);
}

#[test]
fn min_success_ratio_fills_failures_with_none_or_fails() {
    let items = vec![1, -2, 3, 4, 5];
    let out = flyte::map(fail_on_negative, items.clone())
        .min_success_ratio(0.8)
        .wait()
        .unwrap();
    assert_eq!(out, vec![Some(1), None, Some(3), Some(4), Some(5)]);

    let err = flyte::map(fail_on_negative, items.clone())
        .min_success_ratio(0.9)
        .wait()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooFewSuccesses);
    assert!(err.message().contains("4 of 5"), "{err}");

    let err = flyte::map(fail_on_negative, items)
        .min_success_ratio(1.5)
        .wait()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_completed_streams_every_result_with_its_index() {
    let mut seen = Vec::new();
    let mut stream = flyte::map(fail_on_negative, vec![0, 1, 2, -3, 4])
        .concurrency(5)
        .as_completed();
    while let Some((index, result)) = stream.next().await {
        match result {
            Ok(v) => assert_eq!(v as usize, index),
            Err(e) => assert_eq!((index, e.index()), (3, Some(3))),
        }
        seen.push(index);
    }
    seen.sort_unstable();
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_input_is_read_lazily() {
    let pulled = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let endless = (0_i64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let concurrency = 8;
    let taken: Vec<_> = flyte::map(double, endless)
        .concurrency(concurrency)
        .as_completed()
        .take(100)
        .collect()
        .await;
    assert_eq!(taken.len(), 100);
    let pulled = pulled.load(Ordering::SeqCst);
    // `double` is sync: `concurrency` items run and four times as many
    // wait, started, in the map's lane for the next free thread.
    assert!(
        pulled <= 100 + 5 * concurrency,
        "read {pulled} inputs for 100 results at concurrency {concurrency}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_stream_takes_an_async_stream() {
    let input = tokio_stream::iter(0..20_i64).then(|x| async move {
        tokio::task::yield_now().await;
        x
    });
    let out = flyte::map_stream(double, input)
        .concurrency(3)
        .await
        .unwrap();
    assert_eq!(out, (0..20).map(|x| x * 2).collect::<Vec<_>>());
}

#[test]
fn sync_tasks_map_in_parallel_on_blocking_threads() {
    #[task(env = ENV)]
    fn block(ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }
    let started = Instant::now();
    let out = flyte::map(block, vec![100; 8])
        .concurrency(8)
        .wait()
        .unwrap();
    assert_eq!(out, vec![100; 8]);
    // 8 x 100ms in series is 800ms; on blocking threads it is ~100ms even
    // with 2 async workers.
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_panicking_item_is_an_error_with_its_index() {
    #[task(env = ENV)]
    fn explode(x: i64) -> i64 {
        assert!(x != 2, "two is not allowed");
        x
    }
    let all = flyte::map(explode, 0..4).collect_errors().wait();
    let err = all[2].as_ref().unwrap_err();
    assert_eq!((err.kind(), err.index()), (ErrorKind::Panic, Some(2)));
    assert!(err.message().contains("two is not allowed"), "{err}");
    assert!(all[3].is_ok());
}

#[test]
fn a_sync_task_maps_with_wait() {
    #[task(env = ENV)]
    fn sum_of_doubles(items: Vec<i64>) -> Result<i64, TaskError> {
        let doubled = flyte::map(double, items).concurrency(5).wait()?;
        Ok(doubled.iter().sum())
    }
    assert_eq!(flyte::run(sum_of_doubles(vec![1, 2, 3])).unwrap(), 12);
}

#[test]
fn a_task_may_return_settled_results() {
    #[task(env = ENV)]
    async fn settle_all(items: Vec<i64>) -> Vec<Result<i64, TaskError>> {
        flyte::map(fail_on_negative, items).collect_errors().await
    }
    // Through the registry the output crosses a serialization boundary.
    let bytes = flyte::codec::encode(&(vec![1_i64, -1],)).unwrap();
    let out = flyte::registry()
        .call_bytes("map_env.settle_all", &bytes)
        .unwrap()
        .wait()
        .unwrap();
    let out: Vec<Result<i64, TaskError>> = flyte::codec::decode(&out).unwrap();
    assert_eq!(out[0].as_ref().ok(), Some(&1));
    let err = out[1].as_ref().unwrap_err();
    assert_eq!((err.kind(), err.index()), (ErrorKind::User, Some(1)));
    assert!(err.to_string().contains("item -1 is bad"), "{err}");
}

/// Slow on its first poll (so it moves to a task of its own), then long.
#[task(env = ENV)]
async fn sleeps_long(x: u64) -> u64 {
    spin(Duration::from_millis(1));
    tokio::time::sleep(Duration::from_secs(30)).await;
    x
}

/// Busy CPU work, without yielding.
fn spin(for_how_long: Duration) {
    let until = Instant::now() + for_how_long;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Runs `collect` on a second runtime while the map's items (on tasks of
/// their own, being slow) run on a first one, shut down under them after
/// 100ms.
fn with_items_runtime_shut_down<R: Send + 'static>(
    collect: impl std::future::Future<Output = R> + Send + 'static,
) -> R {
    let items = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = items.handle().clone();
    let caller = std::thread::spawn(move || {
        let driver = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        driver.block_on(async move {
            let _items_runtime = handle.enter(); // items spawn on `items`
            collect.await
        })
    });
    std::thread::sleep(Duration::from_millis(100));
    items.shutdown_background();
    caller.join().unwrap()
}

#[test]
fn a_runtime_shut_down_mid_map_is_an_error_not_a_short_vec() {
    let result = with_items_runtime_shut_down(flyte::map(sleeps_long, 0..4).into_future());
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");

    let settled =
        with_items_runtime_shut_down(flyte::map(sleeps_long, 0..4).collect_errors().into_future());
    assert_eq!(settled.len(), 4);
    assert!(settled
        .iter()
        .all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Cancelled));
}

static CPU_ITEMS: Gauge = Gauge::new();

#[task(env = ENV)]
async fn cpu_heavy(x: u64) -> u64 {
    let _running = CPU_ITEMS.enter();
    spin(Duration::from_millis(40)); // CPU work with no await in between
    x
}

#[test]
fn cpu_heavy_async_items_still_run_in_parallel() {
    let started = Instant::now();
    let out = flyte::map(cpu_heavy, 0..12).concurrency(4).wait().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(out, (0..12).collect::<Vec<_>>());
    // Polled inline, 12 x 40ms would take 480ms on one thread; once the map
    // sees slow items it spawns them across both workers.
    assert!(CPU_ITEMS.take_peak() >= 2, "items never overlapped");
    assert!(elapsed < Duration::from_millis(420), "{elapsed:?}");
}

// ---- a bounded map of a sync task runs in a lane (see sync_pool.rs) ----

static LANE_ITEMS: Gauge = Gauge::new();
static LANE_RAN: AtomicUsize = AtomicUsize::new(0);

#[task(env = ENV)]
fn lane_item(x: u64) -> Result<u64, TaskError> {
    let _running = LANE_ITEMS.enter();
    LANE_RAN.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(if x == 0 { 60 } else { 20 }));
    if x == 1_000 {
        return Err(TaskError::new(ErrorKind::User, "item 1000 fails"));
    }
    Ok(x)
}

#[test]
fn a_sync_map_runs_at_most_its_concurrency_at_once() {
    let out = flyte::map(lane_item, 1..25).concurrency(3).wait().unwrap();
    assert_eq!(out, (1..25).collect::<Vec<_>>());
    let peak = LANE_ITEMS.take_peak();
    assert!((2..=3).contains(&peak), "{peak} ran at once");
}

#[task(env = ENV, timeout = "250ms")]
fn slow_within_its_limit(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(150));
    x
}

#[test]
fn a_sync_item_waiting_in_the_lane_gets_its_whole_time_limit() {
    // Concurrency 1: item 1 waits ~150 ms behind item 0, and item 2 ~300 ms:
    // counted from when they were started ahead, they would time out.
    let out = flyte::map(slow_within_its_limit, 0..3)
        .concurrency(1)
        .wait()
        .unwrap();
    assert_eq!(out, vec![0, 1, 2]);
}

#[test]
fn items_waiting_in_the_lane_never_run_after_fail_fast() {
    let before = LANE_RAN.load(Ordering::SeqCst);
    // Item 1000 fails first; items started ahead of it behind the running
    // ones are cancelled before they run.
    let err = flyte::Runner::new()
        .persist(false)
        .run(lane_fail_fast())
        .into_output()
        .unwrap_err();
    assert_eq!(err.index(), Some(0));
    std::thread::sleep(Duration::from_millis(200)); // a lane job would have run by now
    let ran = LANE_RAN.load(Ordering::SeqCst) - before;
    assert_eq!(ran, 1, "only the failing item ran");
}

#[task(env = ENV)]
async fn lane_fail_fast() -> Result<Vec<u64>, TaskError> {
    flyte::map(lane_item, [1_000, 1, 2, 3]).concurrency(1).await
}

static FLAKY_ONCE: AtomicUsize = AtomicUsize::new(0);

#[task(env = ENV, retries = 1, backoff = Backoff::none())]
fn flaky_first(x: u64) -> Result<u64, TaskError> {
    if x == 0 && FLAKY_ONCE.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(TaskError::new(ErrorKind::User, "first attempt fails"));
    }
    std::thread::sleep(Duration::from_millis(2));
    Ok(x)
}

#[test]
fn a_retried_item_and_the_items_waiting_behind_it_all_run_in_the_lane() {
    let out = flyte::map(flaky_first, 0..12)
        .concurrency(1)
        .wait()
        .unwrap();
    assert_eq!(out, (0..12).collect::<Vec<_>>());
    assert_eq!(FLAKY_ONCE.load(Ordering::SeqCst), 2, "item 0 ran twice");
}

/// Keys whose first attempt already failed (see `fails_its_first_attempt`).
static FAILED_ONCE: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

#[task(env = ENV, retries = 1, backoff = Backoff::none())]
fn fails_its_first_attempt(key: u64) -> Result<u64, TaskError> {
    let mut failed = FAILED_ONCE.lock().unwrap();
    if !failed.contains(&key) {
        failed.push(key);
        return Err(TaskError::new(ErrorKind::User, "first attempt fails"));
    }
    Ok(key)
}

#[task(env = ENV)]
fn fails_when_odd(x: u64) -> Result<u64, TaskError> {
    if x % 2 == 1 {
        return Err(TaskError::new(ErrorKind::User, "odd"));
    }
    Ok(x)
}

/// Runs `rounds` maps one after another on another thread; fails the test
/// when one of them does not end within 10 s (a lane stalled for good).
fn every_round_ends(rounds: u64, one: fn(u64)) {
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for round in 0..rounds {
            one(round);
            let _ = done.send(round);
        }
    });
    for round in 0..rounds {
        if ended.recv_timeout(Duration::from_secs(10)).is_err() {
            panic!("round {round} of {rounds}: the map did not end within 10 s (its lane stalled)");
        }
    }
}

// A failed attempt that is retried is not the map's failure: the lane's
// thread must not stop for the map's decision (none comes), or the retry,
// queued behind the items waiting in the lane, waits for ever. It hung
// about one run in twenty before, with one retried item a map.
#[test]
fn retried_items_in_a_lane_of_one_never_stall_it() {
    every_round_ends(200, |round| {
        let keys: Vec<u64> = (0..8).map(|i| round * 100 + i).collect();
        let out = flyte::map(fails_its_first_attempt, keys.clone())
            .concurrency(1)
            .wait()
            .unwrap();
        assert_eq!(out, keys);
    });
}

// A settled map resumes its lane after each failure; a resume that comes
// before the failed item's thread has left the lane must not be lost.
#[test]
fn failures_in_a_settled_lane_of_one_never_stall_it() {
    every_round_ends(200, |_| {
        let all = flyte::map(fails_when_odd, 0..10)
            .concurrency(1)
            .collect_errors()
            .wait();
        let failed = all.iter().filter(|r| r.is_err()).count();
        assert_eq!(failed, 5);
    });
}

#[task(env = ENV)]
fn odd_fails(x: u64) -> Result<u64, TaskError> {
    std::thread::sleep(Duration::from_millis(1));
    if x % 2 == 1 {
        return Err(TaskError::new(ErrorKind::User, "odd"));
    }
    Ok(x)
}

#[test]
fn a_settled_sync_map_runs_every_item_past_failures() {
    let all = flyte::map(odd_fails, 0..30)
        .concurrency(2)
        .collect_errors()
        .wait();
    assert_eq!(all.len(), 30);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.is_ok(), i % 2 == 0, "item {i}: {r:?}");
    }
}
