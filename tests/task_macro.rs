//! `#[task]`: sync and async functions, names, outputs and error conversion.

use flyte::prelude::*;
use std::time::Duration;

static ENV: TaskEnvironment = TaskEnvironment::new("macro_env")
    .retries(0)
    .timeout(Duration::from_secs(30));

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("bad input {0}")]
struct BadInput(i64);

/// Doc comments stay on the task.
#[task(env = ENV)]
fn sync_double(x: i64) -> i64 {
    x * 2
}

#[task(env = ENV)]
async fn async_add(a: i64, b: i64) -> i64 {
    tokio::task::yield_now().await;
    a + b
}

#[task]
fn in_default_env(mut s: String) -> String {
    s.push('!');
    s
}

#[task(env = ENV, name = "renamed")]
fn original_name() {}

#[task(env = ENV)]
fn fallible(x: i64) -> Result<i64, BadInput> {
    if x < 0 {
        Err(BadInput(x))
    } else {
        Ok(x)
    }
}

#[task(env = ENV)]
async fn with_anyhow(x: i64) -> anyhow::Result<i64> {
    anyhow::ensure!(x != 0, BadInput(x));
    Ok(x)
}

#[task(env = ENV)]
async fn passes_child_error(x: i64) -> Result<i64, TaskError> {
    fallible(x).await
}

#[task(env = ENV)]
async fn passes_child_error_through_anyhow(x: i64) -> anyhow::Result<i64> {
    Ok(fallible(x).await?)
}

#[task(env = ENV)]
fn io_result(path: String) -> std::io::Result<u64> {
    Err(std::io::Error::new(std::io::ErrorKind::NotFound, path))
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Point {
    x: i32,
    y: i32,
}

#[task(env = ENV)]
async fn swap(p: Point, label: Option<String>) -> (Point, Option<String>) {
    (Point { x: p.y, y: p.x }, label)
}

#[test]
fn sync_and_async_tasks_run() {
    assert_eq!(sync_double(21).wait().unwrap(), 42);
    assert_eq!(async_add(2, 3).wait().unwrap(), 5);
    assert_eq!(in_default_env("hi".into()).wait().unwrap(), "hi!");
    original_name().wait().unwrap();
    let (p, label) = swap(Point { x: 1, y: 2 }, Some("l".into())).wait().unwrap();
    assert_eq!((p, label.as_deref()), (Point { x: 2, y: 1 }, Some("l")));
}

#[test]
fn names_are_env_dot_fn_with_override() {
    assert_eq!(sync_double(1).task_name(), "macro_env.sync_double");
    assert_eq!(
        in_default_env(String::new()).task_name(),
        "default.in_default_env"
    );
    assert_eq!(original_name().task_name(), "macro_env.renamed");
    let names: Vec<&str> = flyte::registry().names().collect();
    assert!(names.contains(&"macro_env.renamed"), "{names:?}");
    assert!(!names.contains(&"macro_env.original_name"), "{names:?}");
}

#[test]
fn user_errors_keep_the_original() {
    let err = fallible(-1).wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::User);
    assert_eq!(err.task(), Some("macro_env.fallible"));
    assert_eq!(err.downcast_ref::<BadInput>(), Some(&BadInput(-1)));
    assert_eq!(
        err.to_string(),
        "task macro_env.fallible failed: bad input -1"
    );

    let err = with_anyhow(0).wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::User);
    assert_eq!(err.downcast_ref::<BadInput>(), Some(&BadInput(0)));

    let err = io_result("missing.txt".into()).wait().unwrap_err();
    assert_eq!(
        err.downcast_ref::<std::io::Error>().map(|e| e.kind()),
        Some(std::io::ErrorKind::NotFound)
    );
}

#[test]
fn a_child_error_passes_through_with_its_kind_and_task() {
    let err = passes_child_error(-5).wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::User);
    assert_eq!(err.task(), Some("macro_env.fallible"));
    assert!(err.downcast_ref::<BadInput>().is_some());

    let err = passes_child_error_through_anyhow(-5).wait().unwrap_err();
    assert_eq!(err.task(), Some("macro_env.fallible"));
}

#[test]
fn panics_become_errors_of_kind_panic() {
    #[task(env = ENV)]
    fn sync_panics(x: i64) -> i64 {
        if x > 0 {
            panic!("sync boom {x}");
        }
        x
    }
    #[task(env = ENV)]
    async fn async_panics(x: i64) -> i64 {
        if x > 0 {
            panic!("async boom {x}");
        }
        x
    }
    let err = sync_panics(1).wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panic);
    assert!(err.message().contains("sync boom 1"), "{err}");
    let err = async_panics(2).wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panic);
    assert!(err.message().contains("async boom 2"), "{err}");
}

#[tokio::test]
async fn tasks_can_be_awaited_in_a_plain_tokio_test() {
    assert_eq!(async_add(1, 1).await.unwrap(), 2);
    assert_eq!(sync_double(5).await.unwrap(), 10);
}

#[test]
fn per_call_overrides_apply() {
    #[task(env = ENV)]
    async fn slow() -> u8 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        1
    }
    let err = slow()
        .timeout(Duration::from_millis(20))
        .wait()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.message().contains("timed out after 20ms"), "{err}");
}

#[test]
fn retries_rerun_failed_attempts_and_report_them() {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);

    #[task(env = ENV, retries = 2)]
    async fn flaky(threshold: u32) -> Result<u32, BadInput> {
        let n = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        assert_eq!(flyte::current().attempt(), n);
        if n < threshold {
            Err(BadInput(n.into()))
        } else {
            Ok(n)
        }
    }
    assert_eq!(flaky(3).wait().unwrap(), 3);
    CALLS.store(0, Ordering::SeqCst);
    let err = flaky(10).wait().unwrap_err();
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.max_attempts(), 3);
    assert!(err.to_string().contains("(attempt 3/3)"), "{err}");
}
