//! What the records, the report and the progress show is what ran: an
//! action's time is its execution, from when its first attempt's body
//! began (with every slot it needed) to its end; its wait for a slot, a
//! rate window or a thread is kept apart (`queued_at`), and each attempt's
//! times when it had more than one. Checked on the two maps the issue
//! found wrong: an async map wider than its environment allows, and a sync
//! map in its lane.

mod common;

use common::Gauge;
use flyte::prelude::*;
use flyte::record::ActionRecord;
use flyte::store::{RunLog, RunReader, RunRef, Store};
use flyte::{Progress, Runner};
use std::time::{Duration, SystemTime};
use tempfile::TempDir;

static SIXTEEN: TaskEnvironment = TaskEnvironment::new("timings_sixteen").concurrency(16);
static NAPPING: Gauge = Gauge::new();

/// How long item `i` sleeps: 20 to 50 ms.
fn nap_ms(i: u64) -> u64 {
    20 + (i * 7) % 31
}

#[task(env = SIXTEEN)]
async fn nap(i: u64) -> u64 {
    let _in = NAPPING.enter();
    tokio::time::sleep(Duration::from_millis(nap_ms(i))).await;
    i
}

#[task]
async fn wide_naps(n: u64) -> Result<u64, TaskError> {
    let out = flyte::map(nap, 0..n).concurrency(64).await?;
    Ok(out.iter().sum())
}

/// The same naps, for the progress test (whose run goes on beside the
/// others: it must not move their gauge).
#[task(env = SIXTEEN)]
async fn watched_nap(i: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(nap_ms(i))).await;
    i
}

#[task]
async fn watched_naps(n: u64) -> Result<u64, TaskError> {
    let out = flyte::map(watched_nap, 0..n).concurrency(64).await?;
    Ok(out.iter().sum())
}

#[task]
fn fifty_ms(i: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(50));
    i
}

#[task]
async fn four_at_a_time(n: u64) -> Result<u64, TaskError> {
    let out = flyte::map(fifty_ms, 0..n).concurrency(4).await?;
    Ok(out.iter().sum())
}

/// The run's actions of task `task`, read back from the store at `home`.
fn recorded(home: &TempDir, run_id: &str, task: &str) -> Vec<ActionRecord> {
    let store = Store::open(home.path()).unwrap();
    let (key, _) = store.find_run(RunRef::Id(run_id)).unwrap().unwrap();
    let actions = store.all_actions(key, false).unwrap();
    actions.into_iter().filter(|a| a.task == task).collect()
}

/// The most actions executing at one instant, from their records.
fn peak(actions: &[ActionRecord]) -> usize {
    let mut edges: Vec<(SystemTime, i32)> = actions
        .iter()
        .flat_map(|a| [(a.started_at, 1), (a.ended_at.unwrap(), -1)])
        .collect();
    // An end before a start at the same instant: back to back is not side by side.
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[(values.len() - 1) / 2]
}

/// What the report says of the run's one fan-out: achieved concurrency
/// and the items' median time.
fn report_of(home: &TempDir, run_id: &str) -> (f64, Duration, Duration) {
    let store = Store::open(home.path()).unwrap();
    let (key, run) = store.find_run(RunRef::Id(run_id)).unwrap().unwrap();
    let digest = flyte_report::digest::digest(&store, key, run).unwrap();
    let fan_out = &digest.fan_outs[0];
    let micros = |us: i64| Duration::from_micros(us as u64);
    (
        fan_out
            .achieved_concurrency
            .expect("a fan-out of seconds is timed"),
        micros(fan_out.figures.p50_us),
        micros(fan_out.figures.wait_p50_us),
    )
}

#[test]
fn a_map_wider_than_its_environment_records_execution_apart_from_waiting() {
    let home = TempDir::new().unwrap();
    let n = 600;
    let outcome = Runner::new().home(home.path()).run(wide_naps(n));
    assert_eq!(outcome.output().ok(), Some(&(n * (n - 1) / 2)));
    assert!(NAPPING.take_peak() <= 16, "the environment's limit held");

    let naps = recorded(&home, outcome.run_id(), "timings_sixteen.nap");
    assert_eq!(naps.len(), n as usize);
    // At most 16 executed at once, by their records (64 were in flight).
    let most = peak(&naps);
    assert!(
        (4..=16).contains(&most),
        "records say {most} executed at once"
    );
    // Each item's time is its nap, not its wait for a slot.
    let asked = median((0..n).map(|i| Duration::from_millis(nap_ms(i))).collect());
    let took = median(
        naps.iter()
            .map(|a| a.ended_at.unwrap().duration_since(a.started_at).unwrap())
            .collect(),
    );
    let off = took.as_secs_f64() / asked.as_secs_f64();
    assert!(
        (0.95..1.10).contains(&off),
        "median {took:?} for naps of median {asked:?}"
    );
    // The wait is kept: most items waited for a slot.
    let waited = naps
        .iter()
        .filter(|a| a.waited() > Duration::from_millis(5))
        .count();
    assert!(waited > n as usize / 2, "only {waited} items waited");
    assert!(naps.iter().all(|a| a.queued_at <= a.started_at));

    // The report says the same.
    let (achieved, p50, wait_p50) = report_of(&home, outcome.run_id());
    assert!(achieved <= 16.0 && achieved > 4.0, "achieved {achieved:.1}");
    let off = p50.as_secs_f64() / asked.as_secs_f64();
    assert!(
        (0.95..1.10).contains(&off),
        "report p50 {p50:?} for {asked:?}"
    );
    assert!(
        wait_p50 > Duration::from_millis(20),
        "report wait p50 {wait_p50:?}"
    );
}

#[test]
fn a_sync_map_in_its_lane_records_when_each_item_ran() {
    let home = TempDir::new().unwrap();
    let n = 30;
    let outcome = Runner::new().home(home.path()).run(four_at_a_time(n));
    assert!(outcome.output().is_ok());

    let items = recorded(&home, outcome.run_id(), "default.fifty_ms");
    assert_eq!(items.len(), n as usize);
    // Items started ahead wait in the lane: they are not recorded as running.
    assert_eq!(peak(&items), 4, "by their records");
    let took = median(
        items
            .iter()
            .map(|a| a.ended_at.unwrap().duration_since(a.started_at).unwrap())
            .collect(),
    );
    let off = took.as_secs_f64() / 0.050;
    assert!(
        (0.95..1.10).contains(&off),
        "median {took:?} for 50 ms items"
    );

    let (achieved, p50, _) = report_of(&home, outcome.run_id());
    assert!(achieved <= 4.0 && achieved > 3.0, "achieved {achieved:.2}");
    assert!(
        (0.95..1.10).contains(&(p50.as_secs_f64() / 0.050)),
        "report p50 {p50:?}"
    );
}

static FLAKY_CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[task(retries = 2, backoff = Backoff::fixed(Duration::from_millis(40)))]
async fn flaky() -> Result<u32, TaskError> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    match FLAKY_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
        0 | 1 => Err(TaskError::new(ErrorKind::User, "not yet")),
        n => Ok(n),
    }
}

#[test]
fn each_attempt_is_timed_and_the_backoff_shows_between_them() {
    let home = TempDir::new().unwrap();
    let outcome = Runner::new().home(home.path()).run(flaky());
    assert_eq!(outcome.output().ok(), Some(&2));
    let action = &recorded(&home, outcome.run_id(), "default.flaky")[0];
    assert_eq!(action.attempts, 3);
    let times = &action.attempt_times;
    assert_eq!(times.len(), 3, "{times:?}");
    assert_eq!(times[0].started_at, action.started_at);
    for attempt in times {
        let ran = attempt.ended_at.duration_since(attempt.started_at).unwrap();
        assert!(ran >= Duration::from_millis(9), "an attempt ran {ran:?}");
    }
    for pair in times.windows(2) {
        let gap = pair[1].started_at.duration_since(pair[0].ended_at).unwrap();
        assert!(gap >= Duration::from_millis(35), "a backoff of {gap:?}");
    }
    // The live tree says the same as the store.
    assert_eq!(outcome.actions().attempt_times.len(), 3);
}

#[test]
fn the_progress_counts_running_apart_from_waiting() {
    let home = TempDir::new().unwrap();
    let path = home.path().to_owned();
    let run = std::thread::spawn(move || {
        Runner::new()
            .home(&path)
            .name("timings-progress")
            .progress(Progress::Lines)
            .run(watched_naps(900))
    });
    let store = Store::open(home.path()).unwrap();
    let (mut seen, mut most_running) = (0, 0);
    while !run.is_finished() {
        std::thread::sleep(Duration::from_millis(150));
        let Ok(Some((key, _))) = store.find_run(RunRef::Name("timings-progress")) else {
            continue;
        };
        let Ok(Some((_, lines))) = flyte::store::RunOperations::published_progress(&store, key)
        else {
            continue;
        };
        let line = lines
            .iter()
            .find(|l| l.contains("timings_sixteen.watched_nap"))
            .cloned()
            .unwrap_or_default();
        let count = |word: &str| {
            let at = line.find(word)? + word.len();
            line[at..]
                .split_whitespace()
                .next()?
                .replace(',', "")
                .parse::<u64>()
                .ok()
        };
        if let (Some(running), Some(waiting)) = (count("running "), count("waiting ")) {
            assert!(running <= 16, "progress shows {running} running: {line}");
            assert!(running + waiting <= 64, "{line}");
            most_running = most_running.max(running);
            seen += 1;
        }
    }
    assert!(run.join().unwrap().output().is_ok());
    assert!(
        seen > 0,
        "the published progress never showed running and waiting"
    );
    assert!(most_running >= 8, "at most {most_running} running shown");
}
