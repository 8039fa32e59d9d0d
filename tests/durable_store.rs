//! The run store: what a run records, several processes at once, killed runs.

use flyte::prelude::*;
use flyte::store::{RunStatus, Store};
use flyte::{ActionStatus, Origin, Runner};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

#[task]
fn check(i: u32) -> Result<u32, TaskError> {
    if i == 7 {
        return Err(TaskError::new(ErrorKind::User, "seven is not allowed"));
    }
    Ok(i * 10)
}

#[task]
async fn check_all(n: u32) -> Result<u32, TaskError> {
    let results = flyte::group("checks", flyte::map(check, 0..n).collect_errors()).await;
    Ok(results.iter().filter(|r| r.is_ok()).count() as u32)
}

#[test]
fn a_run_records_its_actions_outputs_and_errors() {
    let home = TempDir::new().unwrap();
    let outcome = Runner::new().home(home.path()).run(check_all(20));
    assert_eq!(outcome.output().ok(), Some(&19));
    let store = Store::open(home.path()).unwrap();
    let run = store.run(outcome.run_id()).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.root_task, "default.check_all");
    assert_eq!(run.executions, 1);
    assert!(run.ended_at.is_some());
    assert_eq!(run.actions.len(), 21, "twenty items and the root");
    let root = run.root().unwrap();
    assert_eq!(root.id, outcome.actions().id);
    assert_eq!(root.output::<u32>().unwrap(), Some(19));
    let items: Vec<_> = run.children(root.id).collect();
    assert_eq!(items.len(), 20);
    for item in &items {
        let (_, index) = item.item.expect("items know their index");
        assert_eq!(item.group.as_deref(), Some("checks"));
        assert_eq!(item.origin, Origin::Executed);
        if index == 7 {
            assert_eq!(item.status, ActionStatus::Failed);
            assert!(item.error.as_ref().unwrap().message().contains("seven"));
            assert_eq!(item.output::<u32>().unwrap(), None);
        } else {
            assert_eq!(item.status, ActionStatus::Succeeded);
            assert_eq!(item.output::<u32>().unwrap(), Some(index as u32 * 10));
        }
    }
    assert_eq!(store.runs().unwrap()[0].id, outcome.run_id());
}

#[test]
fn a_failed_run_is_recorded_with_its_error() {
    let home = TempDir::new().unwrap();
    let outcome = Runner::new().home(home.path()).run(check(7));
    let store = Store::open(home.path()).unwrap();
    let run = store.run(outcome.run_id()).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert_eq!(error.kind(), ErrorKind::User);
    assert!(error.message().contains("seven"));
}

#[test]
fn persistence_off_records_nothing() {
    let home = TempDir::new().unwrap();
    let outcome = Runner::new().home(home.path()).persist(false).run(check(1));
    assert_eq!(outcome.into_output().unwrap(), 10);
    let store = Store::open(home.path()).unwrap();
    assert!(store.runs().unwrap().is_empty());
}

// ---- child processes --------------------------------------------------

/// What a child process does, chosen by the parent through this variable.
const ROLE: &str = "FLYTE_STORE_TEST_ROLE";
const WRITER_ITEMS: u32 = 3_000;

#[task]
fn tenfold(i: u32) -> u32 {
    i * 10
}

#[task]
async fn write_many(n: u32) -> Result<u32, TaskError> {
    let out = flyte::map(tenfold, 0..n).concurrency(32).await?;
    Ok(out.len() as u32)
}

#[task]
async fn hang() -> Result<(), TaskError> {
    println!("started {}", flyte::current().run_id());
    tokio::time::sleep(Duration::from_secs(600)).await;
    Ok(())
}

/// The child's side: run by the parent tests below, ignored otherwise.
#[test]
#[ignore = "a child process of the tests below"]
fn child_process() {
    match std::env::var(ROLE).as_deref() {
        Ok("writer") => {
            let out = flyte::run(write_many(WRITER_ITEMS)).unwrap();
            assert_eq!(out, WRITER_ITEMS);
        }
        Ok("hang") => {
            let _ = flyte::run(hang());
        }
        _ => {}
    }
}

fn child(role: &str, home: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "child_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env(ROLE, role)
        .env("FLYTE_HOME", home);
    command
}

#[test]
fn three_processes_write_to_one_store_at_once() {
    let home = TempDir::new().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            child("writer", home.path())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a writer failed");
    }
    let store = Store::open(home.path()).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 3);
    for summary in runs {
        let run = store.run(&summary.id).unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Succeeded);
        assert_eq!(run.actions.len(), WRITER_ITEMS as usize + 1, "nothing lost");
    }
}

#[test]
fn a_killed_run_is_marked_when_the_store_is_next_opened() {
    let home = TempDir::new().unwrap();
    let mut process = child("hang", home.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = process.stdout.take().unwrap();
    let run_id = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("started ").map(str::to_owned))
        .expect("the child started its run");
    // Alive: opening the store leaves it running.
    let store = Store::open(home.path()).unwrap();
    assert_eq!(
        store.run(&run_id).unwrap().unwrap().status,
        RunStatus::Running
    );

    process.kill().unwrap(); // SIGKILL: no chance to record anything
    process.wait().unwrap();
    let store = Store::open(home.path()).unwrap();
    let run = store.run(&run_id).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Killed);
    assert!(run.error.unwrap().message().contains("killed"));
    assert!(run.ended_at.is_some());
}

#[test]
fn a_running_run_is_not_marked_killed() {
    // This process holds the lock of a run that is going on.
    let home = TempDir::new().unwrap();
    let home_path = home.path().to_owned();
    let runner = std::thread::spawn(move || {
        Runner::new()
            .home(&home_path)
            .run(sleepy(1_000))
            .into_output()
    });
    let store = Store::open(home.path()).unwrap();
    let mut runs = store.runs().unwrap();
    for _ in 0..250 {
        if !runs.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20)); // the run is starting
        runs = Store::open(home.path()).unwrap().runs().unwrap();
    }
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].status,
        RunStatus::Running,
        "opened while it runs: not killed"
    );
    assert_eq!(runner.join().unwrap().unwrap(), 1_000);
    assert_eq!(store.runs().unwrap()[0].status, RunStatus::Succeeded);
}

#[task]
async fn sleepy(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}
