//! The action tree: deterministic ids, statuses, groups, fan-out summaries,
//! cancellation of descendants.

use flyte::prelude::*;
use flyte::{ActionNode, ActionStatus, FanOutKind, Runner};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static ENV: TaskEnvironment = TaskEnvironment::new("tree_env");

#[derive(Debug, thiserror::Error)]
#[error("odd {0}")]
struct Odd(u64);

#[task(env = ENV)]
fn even_only(x: u64) -> Result<u64, Odd> {
    if x % 2 == 1 {
        Err(Odd(x))
    } else {
        Ok(x)
    }
}

#[task(env = ENV)]
async fn pipeline(n: u64) -> Result<u64, TaskError> {
    let a = even_only(2).await?;
    let b = even_only(2).await?; // same task and input: a new sequence number
    let settled = flyte::group("evens", flyte::map(even_only, 0..n).collect_errors()).await;
    Ok(a + b + settled.iter().filter(|r| r.is_ok()).count() as u64)
}

fn ids(node: &ActionNode) -> Vec<String> {
    node.iter().map(|n| n.id.to_string()).collect()
}

#[test]
fn the_tree_records_children_and_summarizes_fan_outs() {
    let outcome = Runner::new().run(pipeline(10));
    let root = outcome.actions().clone();
    assert_eq!(outcome.into_output().unwrap(), 9);

    assert_eq!(root.task, "tree_env.pipeline");
    assert_eq!(root.status, ActionStatus::Succeeded);
    assert_eq!(root.attempts, 1);
    assert!(root.ended_at.is_some());
    assert_eq!(root.children.len(), 2);
    assert_ne!(root.children[0].id, root.children[1].id);
    assert!(root
        .children
        .iter()
        .all(|c| c.status == ActionStatus::Succeeded));

    let map = &root.fan_outs[0];
    assert_eq!(map.kind, FanOutKind::Map);
    assert_eq!(map.group.as_deref(), Some("evens"));
    assert_eq!(
        (map.started, map.succeeded, map.failed, map.cancelled),
        (10, 5, 5, 0)
    );
    // Successful items are only counted; failed ones are kept with their error.
    assert_eq!(map.failures.len(), 5);
    for failure in &map.failures {
        assert_eq!(failure.status, ActionStatus::Failed);
        assert_eq!(failure.group.as_deref(), Some("evens"));
        let err = failure.error.as_ref().unwrap();
        assert_eq!(err.index().map(|i| i % 2), Some(1));
    }
}

#[test]
fn action_ids_are_deterministic_across_runs() {
    let first = Runner::new().run(pipeline(6));
    let second = Runner::new().run(pipeline(6));
    assert_ne!(first.run_id(), second.run_id());
    let mut a = ids(first.actions());
    let mut b = ids(second.actions());
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let other_input = Runner::new().run(pipeline(7));
    assert_ne!(first.actions().id, other_input.actions().id);
}

#[test]
fn a_million_item_map_keeps_counts_not_records() {
    #[task(env = ENV)]
    async fn noop(x: u32) -> u32 {
        x
    }
    #[task(env = ENV)]
    async fn big(n: u32) -> Result<usize, TaskError> {
        Ok(flyte::map(noop, 0..n).concurrency(64).await?.len())
    }
    let outcome = Runner::new().run(big(200_000));
    let map = &outcome.actions().fan_outs[0];
    assert_eq!(map.succeeded, 200_000);
    assert!(map.failures.is_empty());
    assert_eq!(outcome.actions().iter().count(), 1);
}

static GRANDCHILD_STARTED: AtomicUsize = AtomicUsize::new(0);
static GRANDCHILD_DONE: AtomicUsize = AtomicUsize::new(0);

#[task(env = ENV)]
async fn grandchild() -> u8 {
    GRANDCHILD_STARTED.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    GRANDCHILD_DONE.fetch_add(1, Ordering::SeqCst);
    0
}

#[task(env = ENV)]
async fn child(x: u64) -> Result<u8, TaskError> {
    if x == 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Err(TaskError::new(ErrorKind::User, "first child fails"));
    }
    grandchild().await
}

#[task(env = ENV)]
async fn fan(n: u64) -> Result<Vec<u8>, TaskError> {
    flyte::map(child, 0..n).await
}

#[test]
fn fail_fast_cancels_grandchildren_and_records_them() {
    let started = Instant::now();
    let outcome = Runner::new().run(fan(4));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(GRANDCHILD_STARTED.load(Ordering::SeqCst), 3);
    assert_eq!(GRANDCHILD_DONE.load(Ordering::SeqCst), 0);
    let root = outcome.actions();
    assert_eq!(root.status, ActionStatus::Failed);
    let map = &root.fan_outs[0];
    assert_eq!((map.failed, map.cancelled), (1, 3));
    let err = outcome.into_output().unwrap_err();
    assert_eq!(err.index(), Some(0));
    assert_eq!(err.message(), "first child fails");
}

#[test]
fn dropping_a_call_cancels_it_and_its_children() {
    #[task(env = ENV)]
    async fn long_child() -> u8 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        0
    }
    #[task(env = ENV)]
    async fn abandon() -> Result<bool, TaskError> {
        let call = long_child().into_future();
        // Give up on the child after 50ms: the select drops its future.
        tokio::select! {
            _ = call => Ok(false),
            _ = tokio::time::sleep(Duration::from_millis(50)) => Ok(true),
        }
    }
    use std::future::IntoFuture;
    let outcome = Runner::new().run(abandon());
    let root = outcome.actions().clone();
    assert!(outcome.into_output().unwrap());
    assert_eq!(root.children.len(), 1);
    let child = &root.children[0];
    assert_eq!(child.status, ActionStatus::Cancelled);
    assert_eq!(
        child.error.as_ref().map(|e| e.kind()),
        Some(ErrorKind::Cancelled)
    );
}

static SYNC_GRANDCHILD_DONE: AtomicUsize = AtomicUsize::new(0);

#[task(env = ENV)]
async fn long_async_grandchild() -> u8 {
    tokio::time::sleep(Duration::from_secs(10)).await;
    SYNC_GRANDCHILD_DONE.fetch_add(1, Ordering::SeqCst);
    0
}

#[task(env = ENV)]
fn sync_child(x: u64) -> Result<u8, TaskError> {
    if x == 0 {
        std::thread::sleep(Duration::from_millis(100));
        return Err(TaskError::new(ErrorKind::User, "first sync child fails"));
    }
    let out = long_async_grandchild().wait();
    assert!(flyte::current().is_cancelled());
    out
}

#[task(env = ENV)]
async fn sync_fan(n: u64) -> Result<Vec<u8>, TaskError> {
    flyte::map(sync_child, 0..n).await
}

#[test]
fn fail_fast_reaches_through_sync_tasks_blocked_in_wait() {
    let started = Instant::now();
    let outcome = Runner::new().run(sync_fan(3));
    // The run ends when the grandchildren are cancelled, not after their 10s.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(SYNC_GRANDCHILD_DONE.load(Ordering::SeqCst), 0);
    let map = &outcome.actions().fan_outs[0];
    assert_eq!((map.failed, map.cancelled), (1, 2));
    assert_eq!(
        outcome.into_output().unwrap_err().message(),
        "first sync child fails"
    );
}

#[test]
fn a_long_loop_of_direct_calls_keeps_a_bounded_number_of_records() {
    #[task(env = ENV)]
    async fn many_calls(n: u64) -> u64 {
        let mut ok = 0;
        for x in 0..n {
            if even_only(x).await.is_ok() {
                ok += 1;
            }
        }
        ok
    }
    let outcome = Runner::new().run(many_calls(2_500));
    let root = outcome.actions().clone();
    assert_eq!(outcome.into_output().unwrap(), 1_250);
    // The first 1,000 children are kept; after them only failures are
    // (750 of the last 1,500 calls fail), and the rest are counted.
    assert_eq!(flyte::MAX_KEPT_CHILDREN, 1_000);
    assert_eq!(root.children.len(), 1_750);
    assert!(root.children[1_000..]
        .iter()
        .all(|c| c.status == ActionStatus::Failed));
    let more = root.more_children;
    assert_eq!((more.succeeded, more.failed, more.cancelled), (750, 750, 0));
}

#[test]
fn a_long_loop_of_gathers_keeps_a_bounded_number_of_summaries() {
    #[task(env = ENV)]
    async fn many_gathers(n: u64) -> Result<u64, TaskError> {
        let mut total = 0;
        for x in 0..n {
            let (a, b) = flyte::gather((even_only(2 * x), even_only(2 * x + 2))).await?;
            total += a + b;
        }
        Ok(total)
    }
    let outcome = Runner::new().run(many_gathers(1_500));
    let root = outcome.actions().clone();
    outcome.into_output().unwrap();
    assert_eq!(root.fan_outs.len(), flyte::MAX_KEPT_FAN_OUTS);
    let more = root.more_fan_outs;
    assert_eq!(
        (more.fan_outs, more.started, more.succeeded),
        (500, 1_000, 1_000)
    );
    assert_eq!((more.failed, more.cancelled), (0, 0));
    // Ids stay distinct past the cap.
    let last = &root.fan_outs[999];
    assert_ne!(last.id, root.fan_outs[998].id);
}
