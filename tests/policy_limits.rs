//! Environment concurrency and rate limits, and map stagger.

mod common;

use common::Gauge;
use flyte::prelude::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: TaskEnvironment = TaskEnvironment::new("one_at_a_time").concurrency(1);
static LEAVES: Gauge = Gauge::new();

#[task(env = ONE_AT_A_TIME)]
async fn leaf(x: u64) -> u64 {
    let _running = LEAVES.enter();
    tokio::time::sleep(Duration::from_millis(5)).await;
    x
}

#[task(env = ONE_AT_A_TIME)]
fn sync_leaf(x: u64) -> u64 {
    let _running = LEAVES.enter();
    std::thread::sleep(Duration::from_millis(5));
    x
}

#[task(env = ONE_AT_A_TIME)]
async fn middle(x: u64) -> Result<u64, TaskError> {
    let direct = leaf(x).await?;
    let mapped = flyte::map(leaf, 0..4).concurrency(4).await?;
    Ok(direct + mapped.iter().sum::<u64>())
}

#[task(env = ONE_AT_A_TIME)]
fn sync_middle(x: u64) -> Result<u64, TaskError> {
    let a = sync_leaf(x).wait()?;
    let b = flyte::map(sync_leaf, 0..3).wait()?;
    Ok(a + b.iter().sum::<u64>())
}

#[task(env = ONE_AT_A_TIME)]
async fn top() -> Result<Vec<u64>, TaskError> {
    let (a, b) = flyte::gather((middle(1), sync_middle(2))).await?;
    let many = flyte::map(middle, 0..3).concurrency(3).await?;
    Ok([a, b].into_iter().chain(many).collect())
}

#[test]
fn nested_tasks_in_an_environment_of_one_finish_one_at_a_time() {
    let out = flyte::run(top()).unwrap();
    assert_eq!(out, vec![7, 5, 6, 7, 8]);
    assert_eq!(LEAVES.take_peak(), 1, "leaves ran side by side");
}

static TWO: TaskEnvironment = TaskEnvironment::new("two_slots").concurrency(2);
static SLOT_USERS: Gauge = Gauge::new();

#[task(env = TWO)]
async fn slot_user(x: u64) -> u64 {
    let _running = SLOT_USERS.enter();
    tokio::time::sleep(Duration::from_millis(10)).await;
    x
}

#[task]
async fn two_maps() -> Result<usize, TaskError> {
    let (a, b) = flyte::gather((flyte_map_len(), flyte_map_len())).await?;
    Ok(a + b)
}

#[task]
async fn flyte_map_len() -> Result<usize, TaskError> {
    Ok(flyte::map(slot_user, 0..10).concurrency(10).await?.len())
}

#[test]
fn the_limit_holds_across_the_whole_run() {
    assert_eq!(flyte::run(two_maps()).unwrap(), 20);
    let peak = SLOT_USERS.take_peak();
    assert_eq!(
        peak, 2,
        "peak {peak} with a limit of 2 across two maps of 10"
    );
}

static STARTS: Mutex<Vec<(&'static str, Instant)>> = Mutex::new(Vec::new());

fn starts_of(label: &str) -> Vec<Instant> {
    let mut t: Vec<Instant> = STARTS
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, _)| *l == label)
        .map(|(_, t)| *t)
        .collect();
    t.sort();
    t
}

#[task]
async fn stamp(label: String) -> u8 {
    STARTS
        .lock()
        .unwrap()
        .push((Box::leak(label.into_boxed_str()), Instant::now()));
    0
}

#[test]
fn stagger_spaces_starts_apart() {
    let gap = Duration::from_millis(50);
    flyte::map(stamp, vec!["stagger".to_owned(); 5])
        .stagger(gap)
        .wait()
        .unwrap();
    let t = starts_of("stagger");
    assert_eq!(t.len(), 5);
    for w in t.windows(2) {
        // Starts are launched `gap` apart; a small scheduling jitter is allowed.
        assert!(
            w[1] - w[0] >= gap - Duration::from_millis(10),
            "{:?}",
            w[1] - w[0]
        );
    }
    assert!(t[4] - t[0] >= gap * 4 - Duration::from_millis(10));
}

static LIMITED: TaskEnvironment =
    TaskEnvironment::new("rate_limited").rate_limit(3, Duration::from_millis(300));

#[task(env = LIMITED)]
async fn limited_stamp(label: String) -> u8 {
    STARTS
        .lock()
        .unwrap()
        .push((Box::leak(label.into_boxed_str()), Instant::now()));
    0
}

#[test]
fn a_rate_limit_is_a_sliding_window_of_starts() {
    let started = Instant::now();
    flyte::run(rate_limited_map()).unwrap();
    let t = starts_of("rate");
    assert_eq!(t.len(), 9);
    // In any 300ms window at most 3 starts (a little slack for timer jitter).
    for (i, first) in t.iter().enumerate() {
        let in_window = t[i..]
            .iter()
            .filter(|s| **s - *first < Duration::from_millis(290))
            .count();
        assert!(
            in_window <= 3,
            "{in_window} starts within 300ms of start {i}"
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[task]
async fn rate_limited_map() -> Result<usize, TaskError> {
    Ok(flyte::map(limited_stamp, vec!["rate".to_owned(); 9])
        .await?
        .len())
}
