//! Timeouts: per attempt, for async and sync tasks, from env, task and call.

use flyte::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

static ENV: TaskEnvironment =
    TaskEnvironment::new("timeout_env").timeout(Duration::from_millis(80));

#[task(env = ENV)]
async fn sleeps(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

#[test]
fn an_async_task_is_stopped_at_the_environment_deadline() {
    let started = Instant::now();
    let err = sleeps(10_000).wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.message().contains("timed out after 80ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(sleeps(5).wait().unwrap(), 5);
}

#[test]
fn the_task_attribute_and_the_call_override_the_environment() {
    #[task(env = ENV, timeout = "1s")]
    async fn patient(ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
    assert_eq!(patient(200).wait().unwrap(), 200);
    let err = patient(200)
        .timeout(Duration::from_millis(20))
        .wait()
        .unwrap_err();
    assert!(err.message().contains("20ms"), "{err}");
}

#[test]
fn each_attempt_has_the_limit() {
    static ATTEMPTS: AtomicU32 = AtomicU32::new(0);
    #[task(env = ENV, retries = 1, timeout = "60ms", backoff = Backoff::none())]
    async fn always_slow() -> u8 {
        ATTEMPTS.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(10)).await;
        0
    }
    let started = Instant::now();
    let err = always_slow().wait().unwrap_err();
    assert_eq!(ATTEMPTS.load(Ordering::SeqCst), 2);
    assert_eq!((err.kind(), err.attempts()), (ErrorKind::Timeout, 2));
    assert!(started.elapsed() >= Duration::from_millis(120));
    assert!(started.elapsed() < Duration::from_secs(3));
}

static NOTICED: AtomicBool = AtomicBool::new(false);

#[task(env = ENV, timeout = "100ms")]
fn busy_sync() -> u32 {
    let mut spins = 0;
    while !flyte::current().is_cancelled() {
        std::thread::sleep(Duration::from_millis(2));
        spins += 1;
    }
    NOTICED.store(true, Ordering::SeqCst);
    spins
}

#[test]
fn a_sync_task_times_out_at_the_deadline_and_can_notice() {
    let started = Instant::now();
    let err = busy_sync().wait().unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(
        elapsed >= Duration::from_millis(100) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    // The thread is told; it stops on its next check.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !NOTICED.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(NOTICED.load(Ordering::SeqCst));
}

#[test]
fn a_timed_out_sync_task_cannot_start_new_children() {
    static CHILD_RAN: AtomicBool = AtomicBool::new(false);
    #[task]
    async fn child() -> u8 {
        CHILD_RAN.store(true, Ordering::SeqCst);
        1
    }
    #[task(env = ENV, timeout = "50ms")]
    fn stubborn() -> Result<u8, TaskError> {
        std::thread::sleep(Duration::from_millis(200)); // ignores the deadline
        child().wait()
    }
    let err = stubborn().wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        !CHILD_RAN.load(Ordering::SeqCst),
        "a child started after the deadline"
    );
}
