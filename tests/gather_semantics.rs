//! `gather`: tuples of different tasks, `Vec`s of one, fail-fast and settle.

use flyte::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static ENV: TaskEnvironment = TaskEnvironment::new("gather_env");

#[derive(Debug, thiserror::Error)]
#[error("mail server down")]
struct MailDown;

#[task(env = ENV)]
async fn update_user(id: u64) -> String {
    format!("user-{id}")
}

#[task(env = ENV)]
fn send_email(id: u64) -> Result<bool, MailDown> {
    if id == 0 {
        Err(MailDown)
    } else {
        Ok(true)
    }
}

#[task(env = ENV)]
async fn size(n: u64) -> u64 {
    n * 10
}

#[test]
fn a_tuple_of_different_tasks_comes_back_typed() {
    let (user, sent) = flyte::gather((update_user(7), send_email(7)))
        .wait()
        .unwrap();
    assert_eq!((user.as_str(), sent), ("user-7", true));
}

#[test]
fn the_longest_tuple_works() {
    let out = flyte::gather((
        size(1),
        size(2),
        size(3),
        size(4),
        size(5),
        size(6),
        size(7),
        size(8),
        size(9),
        size(10),
        size(11),
        update_user(12),
    ))
    .wait()
    .unwrap();
    assert_eq!(out.0, 10);
    assert_eq!(out.10, 110);
    assert_eq!(out.11, "user-12");
}

#[test]
fn a_tuple_settles_each_outcome_in_place() {
    let (user, sent) = flyte::gather((update_user(0), send_email(0)))
        .collect_errors()
        .wait();
    assert_eq!(user.unwrap(), "user-0");
    let err = sent.unwrap_err();
    assert_eq!(err.index(), Some(1));
    assert!(err.downcast_ref::<MailDown>().is_some());
}

#[test]
fn a_vec_of_calls_gathers_in_order_with_a_limit() {
    let calls: Vec<_> = (0..50).map(size).collect();
    let out = flyte::gather(calls).concurrency(8).wait().unwrap();
    assert_eq!(out, (0..50).map(|n| n * 10).collect::<Vec<_>>());
}

static SLOW_FINISHED: AtomicBool = AtomicBool::new(false);

#[task(env = ENV)]
async fn slow() -> u8 {
    tokio::time::sleep(Duration::from_secs(10)).await;
    SLOW_FINISHED.store(true, Ordering::SeqCst);
    1
}

#[test]
fn fail_fast_cancels_the_other_calls() {
    let started = Instant::now();
    let err = flyte::gather((slow(), send_email(0))).wait().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(err.index(), Some(1));
    assert!(!SLOW_FINISHED.load(Ordering::SeqCst));
}

#[tokio::test]
async fn gather_is_awaitable_in_async_code() {
    let (a, b) = flyte::gather((size(1), size(2))).await.unwrap();
    assert_eq!(a + b, 30);
}
