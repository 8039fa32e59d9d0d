//! Runs: `flyte::run`, `Runner`, ephemeral runs, many runs at once, context.

use flyte::prelude::*;
use flyte::{ActionStatus, Runner};

static ENV: TaskEnvironment = TaskEnvironment::new("run_env");

#[task(env = ENV)]
fn double(x: i64) -> i64 {
    x * 2
}

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
struct Seen {
    run_id: String,
    run_name: Option<String>,
    action_id: String,
    task: String,
    attempt: u32,
    group: Option<String>,
}

fn seen() -> Seen {
    let ctx = flyte::current();
    Seen {
        run_id: ctx.run_id().to_owned(),
        run_name: ctx.run_name().map(str::to_owned),
        action_id: ctx.action_id().map(|a| a.to_string()).unwrap_or_default(),
        task: ctx.task_name().to_owned(),
        attempt: ctx.attempt(),
        group: ctx.group().map(str::to_owned),
    }
}

#[task(env = ENV)]
async fn who_am_i() -> Seen {
    seen()
}

#[task(env = ENV)]
fn who_am_i_sync() -> Seen {
    seen()
}

#[task(env = ENV)]
async fn parent() -> (Seen, Seen, Seen) {
    let a = who_am_i().await.unwrap();
    let b = who_am_i_sync().await.unwrap();
    let c = flyte::group("inner", async { seen() }).await;
    (a, b, c)
}

#[test]
fn run_returns_the_output() {
    assert_eq!(flyte::run(double(21)).unwrap(), 42);
}

#[test]
fn the_context_tells_run_action_task_and_attempt() {
    let outcome = Runner::new().name("nightly").persist(false).run(parent());
    let run_id = outcome.run_id().to_owned();
    assert!(run_id.starts_with('r') && run_id.len() == 21, "{run_id}");
    assert_eq!(outcome.name(), Some("nightly"));
    let root_id = outcome.actions().id.to_string();
    let (a, b, c) = outcome.into_output().unwrap();
    for s in [&a, &b] {
        assert_eq!(s.run_id, run_id);
        assert_eq!(s.run_name.as_deref(), Some("nightly"));
        assert_eq!(s.attempt, 1);
        assert_ne!(s.action_id, root_id);
    }
    assert_eq!(a.task, "run_env.who_am_i");
    assert_eq!(b.task, "run_env.who_am_i_sync");
    assert_ne!(a.action_id, b.action_id);
    assert_eq!(c.task, "run_env.parent");
    assert_eq!(c.group.as_deref(), Some("inner"));
    assert!(!flyte::current().in_task());
}

#[test]
fn runs_started_from_many_threads_are_independent() {
    let handles: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let outcome = Runner::new().run(who_am_i());
                (i, outcome.into_output().unwrap())
            })
        })
        .collect();
    let mut ids: Vec<String> = handles
        .into_iter()
        .map(|h| h.join().unwrap().1.run_id)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "every run has its own id");
}

#[tokio::test]
async fn run_async_works_inside_tokio_and_run_is_refused_there() {
    let outcome = Runner::new().run_async(double(2)).await;
    assert_eq!(outcome.actions().status, ActionStatus::Succeeded);
    assert_eq!(outcome.into_output().unwrap(), 4);

    let err = flyte::run(double(2)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Runtime);
    assert!(
        err.message().contains("run_async") || err.message().contains(".await"),
        "{err}"
    );
}

#[tokio::test]
async fn an_ephemeral_run_has_a_context_too() {
    let s = who_am_i().await.unwrap();
    assert!(!s.run_id.is_empty());
    assert_eq!(s.task, "run_env.who_am_i");
}
