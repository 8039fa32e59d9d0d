//! Retries: counts, most-specific-wins, backoff delays, what never retries.

use flyte::prelude::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
#[error("try again")]
struct TryAgain;

static ENV: TaskEnvironment = TaskEnvironment::new("retry_env")
    .retries(2)
    .backoff(Backoff::none());

/// Attempt start times per test, keyed by a label so tests can run in parallel.
static STARTS: Mutex<Vec<(&'static str, Instant)>> = Mutex::new(Vec::new());

fn record(label: &'static str) -> usize {
    let mut starts = STARTS.lock().unwrap();
    starts.push((label, Instant::now()));
    starts.iter().filter(|(l, _)| *l == label).count()
}

fn starts(label: &str) -> Vec<Instant> {
    STARTS
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, _)| *l == label)
        .map(|(_, t)| *t)
        .collect()
}

#[task(env = ENV)]
async fn fails_until(label: String, succeed_on: usize) -> Result<usize, TryAgain> {
    let label: &'static str = Box::leak(label.into_boxed_str());
    let n = record(label);
    assert_eq!(flyte::current().attempt() as usize, n);
    if n < succeed_on {
        Err(TryAgain)
    } else {
        Ok(n)
    }
}

#[test]
fn failing_twice_then_succeeding_with_two_retries() {
    assert_eq!(fails_until("twice".into(), 3).wait().unwrap(), 3);
    assert_eq!(starts("twice").len(), 3);
}

#[test]
fn the_final_error_says_how_many_attempts_ran() {
    let err = fails_until("never".into(), 99).wait().unwrap_err();
    assert_eq!((err.attempts(), err.max_attempts()), (3, 3));
    assert!(err.to_string().contains("(attempt 3/3)"), "{err}");
}

#[test]
fn most_specific_retries_win() {
    #[task(env = ENV, retries = 0)]
    async fn task_says_none(label: String) -> Result<(), TryAgain> {
        record(Box::leak(label.into_boxed_str()));
        Err(TryAgain)
    }
    task_says_none("task-level".into()).wait().unwrap_err();
    assert_eq!(starts("task-level").len(), 1);
    task_says_none("call-level".into())
        .retries(4)
        .wait()
        .unwrap_err();
    assert_eq!(starts("call-level").len(), 5);
    fails_until("call-zero".into(), 2)
        .retries(0)
        .wait()
        .unwrap_err();
    assert_eq!(starts("call-zero").len(), 1);
}

#[test]
fn backoff_delays_grow_within_their_bounds() {
    let base = Duration::from_millis(40);
    let no_jitter = Backoff::exponential(base).factor(2.0).jitter(false);
    fails_until("exp".into(), 4)
        .backoff(no_jitter)
        .retries(3)
        .wait()
        .unwrap();
    let t = starts("exp");
    let gaps: Vec<Duration> = t.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, gap) in gaps.iter().enumerate() {
        let expected = base * 2_u32.pow(i as u32);
        assert!(*gap >= expected, "gap {i} {gap:?} < {expected:?}");
        assert!(
            *gap < expected + Duration::from_millis(150),
            "gap {i} {gap:?}"
        );
    }

    let jittered = Backoff::exponential(Duration::from_millis(80)).jitter(true);
    fails_until("jitter".into(), 3)
        .backoff(jittered)
        .wait()
        .unwrap();
    let t = starts("jitter");
    for (i, w) in t.windows(2).enumerate() {
        let full = Duration::from_millis(80) * 2_u32.pow(i as u32);
        let gap = w[1] - w[0];
        assert!(
            gap >= full / 2,
            "jittered gap {i} {gap:?} under half of {full:?}"
        );
        assert!(
            gap < full + Duration::from_millis(150),
            "jittered gap {i} {gap:?}"
        );
    }
}

#[test]
fn a_non_retryable_error_is_attempted_once() {
    #[task(env = ENV, retries = 5)]
    async fn closed_account(label: String) -> Result<(), TaskError> {
        record(Box::leak(label.into_boxed_str()));
        Err(TaskError::non_retryable(std::io::Error::other(
            "account closed",
        )))
    }
    let err = closed_account("final".into()).wait().unwrap_err();
    assert_eq!(starts("final").len(), 1);
    assert_eq!(err.kind(), ErrorKind::User);
    assert!(!err.is_retryable());
    assert_eq!((err.attempts(), err.max_attempts()), (1, 6));
}

#[test]
fn panics_and_timeouts_retry() {
    #[task(env = ENV)]
    async fn panics_once(label: String) -> u8 {
        let n = record(Box::leak(label.into_boxed_str()));
        assert!(n > 1, "first attempt panics");
        7
    }
    #[task(env = ENV, timeout = "50ms")]
    async fn hangs_once(label: String) -> u8 {
        if record(Box::leak(label.into_boxed_str())) == 1 {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        8
    }
    assert_eq!(panics_once("panic".into()).wait().unwrap(), 7);
    assert_eq!(hangs_once("hang".into()).wait().unwrap(), 8);
    assert_eq!(starts("hang").len(), 2);
}

#[test]
fn cancellation_is_never_retried() {
    #[task(env = ENV, retries = 3)]
    async fn cancelled_inside(label: String) -> Result<(), TaskError> {
        record(Box::leak(label.into_boxed_str()));
        Err(TaskError::cancelled())
    }
    let err = cancelled_inside("cancel".into()).wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert_eq!(starts("cancel").len(), 1);
}
