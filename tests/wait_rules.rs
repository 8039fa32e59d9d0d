//! `.wait()`: allowed in sync code, refused where it could deadlock.

use flyte::prelude::*;
use std::time::{Duration, Instant};

static ENV: TaskEnvironment = TaskEnvironment::new("wait_env");

#[task(env = ENV)]
fn leaf(x: i64) -> i64 {
    x + 1
}

#[task(env = ENV)]
fn middle(x: i64) -> Result<i64, TaskError> {
    let a = leaf(x).wait()?;
    let (b, c) = flyte::gather((leaf(a), leaf(a))).wait()?;
    Ok(b + c)
}

#[task(env = ENV)]
fn top(x: i64) -> Result<i64, TaskError> {
    middle(x).wait()
}

#[test]
fn sync_tasks_call_sync_tasks_with_wait() {
    assert_eq!(flyte::run(top(1)).unwrap(), 6);
}

#[task(env = ENV)]
async fn waits_in_async_code() -> Result<i64, TaskError> {
    leaf(1).wait()
}

#[test]
fn wait_on_an_async_worker_is_a_clear_error() {
    let err = flyte::run(waits_in_async_code()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Runtime);
    assert!(err.message().contains("use `.await` here"), "{err}");
}

#[tokio::test]
async fn wait_inside_a_tokio_test_is_a_clear_error_for_every_form() {
    let err = leaf(1).wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Runtime);
    let err = flyte::map(leaf, 0..3).wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Runtime);
    let all = flyte::map(leaf, 0..3).collect_errors().wait();
    assert!(matches!(&all[..], [Err(e)] if e.kind() == ErrorKind::Runtime));
    let (a, b) = flyte::gather((leaf(1), leaf(2))).collect_errors().wait();
    assert_eq!(a.unwrap_err().kind(), ErrorKind::Runtime);
    assert_eq!(b.unwrap_err().kind(), ErrorKind::Runtime);
}

#[test]
fn sync_tasks_never_block_the_async_workers() {
    #[task(env = ENV)]
    fn sleepy() -> u8 {
        std::thread::sleep(Duration::from_millis(400));
        1
    }
    /// Ten 10ms ticks, timed from the ticker's own start.
    #[task(env = ENV)]
    async fn ticker() -> Duration {
        let started = Instant::now();
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        started.elapsed()
    }
    #[task(env = ENV)]
    async fn mixed() -> Result<Duration, TaskError> {
        // Four sleepy sync tasks would occupy both async workers for 800ms
        // if they ran there, stalling the ticker until they finished.
        let (_, _, _, _, ticked) =
            flyte::gather((sleepy(), sleepy(), sleepy(), sleepy(), ticker())).await?;
        Ok(ticked)
    }
    let ticked = flyte::run(mixed()).unwrap();
    assert!(
        ticked < Duration::from_millis(350),
        "the ticker was stalled: {ticked:?}"
    );
}
