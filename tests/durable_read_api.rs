//! The SQLite store through the store interface: fan-outs as rows, runs
//! filtered and paged, actions batch by batch, a store of the previous
//! schema brought up to date, and a store error kept as the source of the
//! task error it becomes.

use flyte::prelude::*;
use flyte::record::{FanOutKind, RunStatus};
use flyte::store::{RunFilter, RunLog, RunReader, RunRef, Store, StoreError};
use flyte::Runner;
use std::ops::ControlFlow;
use std::time::{Duration, SystemTime};
use tempfile::TempDir;

static READ: TaskEnvironment = TaskEnvironment::new("read_api");

#[task(env = READ)]
fn half(x: u32) -> Result<u32, TaskError> {
    if x % 2 == 1 {
        return Err(TaskError::new(ErrorKind::User, "odd"));
    }
    Ok(x / 2)
}

#[task(env = READ)]
fn label(x: u32) -> String {
    format!("#{x}")
}

#[task(env = READ)]
async fn inner(n: u32) -> Result<u32, TaskError> {
    let halves = flyte::map(half, 0..n).collect_errors().await;
    Ok(halves.iter().filter(|r| r.is_ok()).count() as u32)
}

#[task(env = READ)]
async fn outer(n: u32) -> Result<u32, TaskError> {
    let counts = flyte::map(inner, vec![n; 3]).concurrency(2).await?;
    let (a, b) = flyte::group("mixed", async { flyte::gather((half(2), label(3))).await }).await?;
    Ok(counts.iter().sum::<u32>() + a + b.len() as u32)
}

#[test]
fn every_map_and_gather_is_one_row_with_its_counts() {
    let home = TempDir::new().unwrap();
    let before = SystemTime::now();
    let outcome = Runner::new().home(home.path()).run(outer(4));
    assert_eq!(outcome.output().ok(), Some(&(3 * 2 + 1 + 2)));

    let store = Store::open(home.path()).unwrap();
    let (key, run) = store
        .find_run(RunRef::Id(outcome.run_id()))
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    let fan_outs = store.fan_outs(key).unwrap();
    assert_eq!(
        fan_outs.len(),
        5,
        "three inner maps, the outer map, the gather"
    );
    let inner_maps: Vec<_> = fan_outs
        .iter()
        .filter(|f| f.task.as_deref() == Some("read_api.half"))
        .collect();
    assert_eq!(inner_maps.len(), 3);
    for map in &inner_maps {
        assert_eq!(map.kind, FanOutKind::Map);
        assert_eq!(map.concurrency, None, "unbounded");
        assert_eq!((map.started, map.succeeded, map.failed), (4, 2, 2));
        assert!(map.started_at >= before && map.ended_at >= map.started_at);
    }
    let outer_map = fan_outs
        .iter()
        .find(|f| f.task.as_deref() == Some("read_api.inner"))
        .unwrap();
    assert_eq!(outer_map.concurrency, Some(2));
    assert_eq!((outer_map.started, outer_map.succeeded), (3, 3));
    assert_eq!(outer_map.parent, outcome.actions().id);
    // Each inner map hangs under one item of the outer map.
    let actions = store.all_actions(key, false).unwrap();
    for map in &inner_maps {
        let parent = actions.iter().find(|a| a.id == map.parent).unwrap();
        assert_eq!(parent.item.unwrap().0, outer_map.id);
    }
    let gather = fan_outs
        .iter()
        .find(|f| f.kind == FanOutKind::Gather)
        .unwrap();
    assert_eq!(gather.task, None, "a gather of two tasks");
    assert_eq!(gather.group.as_deref(), Some("mixed"));
    assert_eq!((gather.started, gather.succeeded), (2, 2));
}

#[test]
fn actions_come_batch_by_batch_without_outputs_unless_asked() {
    let home = TempDir::new().unwrap();
    let outcome = Runner::new().home(home.path()).run(inner(6));
    let store = Store::open(home.path()).unwrap();
    let (key, _) = store
        .find_run(RunRef::Id(outcome.run_id()))
        .unwrap()
        .unwrap();
    let read = |outputs: bool| {
        let mut actions = Vec::new();
        store
            .actions(key, outputs, &mut |batch| {
                actions.extend(batch);
                ControlFlow::Continue(())
            })
            .unwrap();
        actions
    };
    let bare = read(false);
    let full = read(true);
    assert_eq!(bare.len(), 7);
    assert!(bare.iter().all(|a| a.output_bytes.is_none()));
    assert_eq!(full.iter().filter(|a| a.output_bytes.is_some()).count(), 4);
    // Reading stops when asked to.
    let mut batches = 0;
    store
        .actions(key, false, &mut |_| {
            batches += 1;
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(batches, 1);
}

#[test]
fn runs_are_filtered_and_paged_newest_first() {
    let home = TempDir::new().unwrap();
    let runner = Runner::new().home(home.path());
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(runner.run(half(n)).run_id().to_owned());
    }
    let named = Runner::new()
        .home(home.path())
        .name("the-named-one")
        .run(label(1));
    let store = Store::open(home.path()).unwrap();

    let all = store.list_runs(&RunFilter::all()).unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[0].id, named.run_id(), "newest first");
    let failed = store
        .list_runs(&RunFilter::all().status(RunStatus::Failed))
        .unwrap();
    let failed: Vec<_> = failed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(failed, [ids[3].as_str(), ids[1].as_str()], "the odd ones");
    let halves = store
        .list_runs(&RunFilter::all().task("read_api.half"))
        .unwrap();
    assert_eq!(halves.len(), 5);
    let page = store
        .list_runs(&RunFilter::all().task("read_api.half").page(1, 2))
        .unwrap();
    let page: Vec<_> = page.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(page, [ids[3].as_str(), ids[2].as_str()]);
    let by_name = store
        .list_runs(&RunFilter::all().name("the-named-one"))
        .unwrap();
    assert_eq!(by_name[0].id, named.run_id());
    let future = SystemTime::now() + Duration::from_secs(3600);
    assert!(store
        .list_runs(&RunFilter::all().since(future))
        .unwrap()
        .is_empty());
}

#[test]
fn a_store_of_the_previous_schema_opens_and_gains_fan_outs() {
    let made = TempDir::new().unwrap();
    let first = Runner::new().home(made.path()).run(inner(2));
    // A copy (this process keeps the first store open) made into a store
    // as the previous flyte left it: schema 2, no fan-out table.
    let home = TempDir::new().unwrap();
    for file in ["flyte.db", "flyte.db-wal", "flyte.db-shm"] {
        let from = made.path().join(file);
        if from.exists() {
            std::fs::copy(&from, home.path().join(file)).unwrap();
        }
    }
    {
        let conn = rusqlite::Connection::open(home.path().join("flyte.db")).unwrap();
        // Back to schema 2: without what migrations 3 and later add.
        conn.execute_batch(
            "DROP TABLE fan_outs; ALTER TABLE runs DROP COLUMN abort_requested_at;
             DROP TABLE logs; DROP TABLE live_progress; PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let old = Store::open_read_only(home.path()).unwrap();
    let (key, _) = old.find_run(RunRef::Id(first.run_id())).unwrap().unwrap();
    assert!(old.fan_outs(key).unwrap().is_empty(), "read as it is");
    assert_eq!(old.run(first.run_id()).unwrap().unwrap().actions.len(), 3);
    drop(old);

    let second = Runner::new().home(home.path()).run(inner(2));
    assert_eq!(second.recorded(), &flyte::Recorded::Complete);
    let store = Store::open(home.path()).unwrap();
    assert_eq!(store.runs().unwrap().len(), 2, "the old run is kept");
    let (key, _) = store
        .find_run(RunRef::Id(second.run_id()))
        .unwrap()
        .unwrap();
    assert_eq!(store.fan_outs(key).unwrap().len(), 1);
}

#[test]
fn a_store_error_stays_the_source_of_the_task_error() {
    let dir = TempDir::new().unwrap();
    // A file where the store's directory should be.
    let blocked = dir.path().join("not-a-dir");
    std::fs::write(&blocked, b"x").unwrap();
    let outcome = Runner::new().home(&blocked).run(label(1));
    let err = outcome.output().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(
        matches!(
            err.downcast_ref::<StoreError>(),
            Some(StoreError::Io { .. })
        ),
        "{err:?}"
    );
    assert!(err.message().contains("not-a-dir"), "{err}");
}

/// Regression: one damaged row of `runs` made every list of runs fail
/// (`flyte runs`, `flyte gc`): it is left out, with a warning naming it.
#[test]
fn a_damaged_run_row_is_left_out_of_lists_and_the_others_are_listed() {
    let home = TempDir::new().unwrap();
    let runner = Runner::new().home(home.path());
    let ids: Vec<String> = (0..3)
        .map(|x| runner.run(label(x)).run_id().to_owned())
        .collect();
    {
        let conn = rusqlite::Connection::open(home.path().join("flyte.db")).unwrap();
        // An id that is not text: the row cannot be read as a run.
        let damaged = conn
            .execute(
                "UPDATE runs SET id = x'00ff' WHERE id = ?1",
                [ids[1].as_str()],
            )
            .unwrap();
        assert_eq!(damaged, 1);
    }
    let store = Store::open(home.path()).unwrap();
    let listed: Vec<String> = store
        .list_runs(&RunFilter::all())
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, vec![ids[2].clone(), ids[0].clone()]);
    // The others stay readable one by one too.
    assert!(store.run(&ids[0]).unwrap().is_some());
}

/// Regression: one damaged batch of action records made `show`, the
/// report and a resume fail for the whole run: it is left out, with a
/// warning naming the row, the file and the fix, and the others are read.
#[test]
fn a_damaged_action_batch_is_left_out_and_the_others_are_read() {
    let home = TempDir::new().unwrap();
    let outcome = Runner::new().home(home.path()).run(outer(4));
    assert!(outcome.output().is_ok());
    let store = Store::open(home.path()).unwrap();
    let (key, _) = store
        .find_run(RunRef::Id(outcome.run_id()))
        .unwrap()
        .unwrap();
    let count = |store: &Store| {
        let mut n = 0;
        store
            .actions(key, true, &mut |batch| {
                n += batch.len();
                ControlFlow::Continue(())
            })
            .map(|()| n)
    };
    let before = count(&store).unwrap();
    {
        let conn = rusqlite::Connection::open(home.path().join("flyte.db")).unwrap();
        // A batch whose bytes do not decode, and one that is not a blob.
        for damaged in ["x'ff00ff'", "'text'"] {
            conn.execute(
                &format!("INSERT INTO actions (run, count, records) VALUES (?1, 3, {damaged})"),
                [key.0],
            )
            .unwrap();
        }
    }
    assert_eq!(
        count(&store).unwrap(),
        before,
        "the readable batches are read"
    );
}
