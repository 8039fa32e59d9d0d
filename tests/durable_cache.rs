//! The task cache: hits, keys, ignored inputs, override, damaged values.

use flyte::prelude::*;
use flyte::store::Store;
use flyte::{ActionNode, Origin, Runner};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use tempfile::TempDir;

static CACHED: TaskEnvironment = TaskEnvironment::new("cache_env").cache(Cache::Auto);

static SQUARES: AtomicU32 = AtomicU32::new(0);

#[task(env = CACHED)]
fn square(x: u64) -> u64 {
    SQUARES.fetch_add(1, Ordering::SeqCst);
    x * x
}

/// For the tests that do not count executions.
#[task(env = CACHED)]
fn cube(x: u64) -> u64 {
    x * x * x
}

#[task(env = CACHED)]
async fn squares(xs: Vec<u64>) -> Result<Vec<u64>, TaskError> {
    flyte::map(square, xs).concurrency(4).await
}

fn runner(home: &TempDir) -> Runner {
    Runner::new().home(home.path())
}

#[test]
fn a_cached_task_runs_once_per_inputs_across_runs() {
    let home = TempDir::new().unwrap();
    let before = SQUARES.load(Ordering::SeqCst);
    let first = runner(&home).run(squares(vec![11, 12]));
    assert_eq!(first.output().ok(), Some(&vec![121, 144]));
    assert_eq!(SQUARES.load(Ordering::SeqCst) - before, 2);

    // The root's inputs changed, so it runs; two of its items are hits.
    let second = runner(&home).run(squares(vec![11, 12, 13]));
    assert_eq!(second.output().ok(), Some(&vec![121, 144, 169]));
    assert_eq!(SQUARES.load(Ordering::SeqCst) - before, 3);
    let root = second.actions();
    assert_eq!(root.origin, Origin::Executed);
    let map = &root.fan_outs[0];
    assert_eq!((map.succeeded, map.cached), (3, 2));

    // The same root call: the root itself is a hit, nothing below it runs.
    let third = runner(&home).run(squares(vec![11, 12, 13]));
    assert_eq!(third.output().ok(), Some(&vec![121, 144, 169]));
    assert_eq!(third.actions().origin, Origin::Cached);
    assert!(third.actions().fan_outs.is_empty());
    assert_eq!(SQUARES.load(Ordering::SeqCst) - before, 3);

    // The hit is in the run's record too.
    let store = Store::open(home.path()).unwrap();
    let record = store.run(third.run_id()).unwrap().unwrap();
    assert_eq!(record.root().unwrap().origin, Origin::Cached);
    assert_eq!(
        record.root().unwrap().output::<Vec<u64>>().unwrap(),
        Some(vec![121, 144, 169])
    );
}

static GREETINGS: AtomicU32 = AtomicU32::new(0);

#[task(cache = "auto", cache_ignore = [shout])]
fn greet(name: String, shout: bool) -> String {
    GREETINGS.fetch_add(1, Ordering::SeqCst);
    let _ = shout;
    format!("hello {name}")
}

#[test]
fn ignored_inputs_do_not_change_the_key() {
    let home = TempDir::new().unwrap();
    let before = GREETINGS.load(Ordering::SeqCst);
    let a = runner(&home).run(greet("ada".into(), true)).into_output();
    let b = runner(&home).run(greet("ada".into(), false));
    assert_eq!(a.unwrap(), "hello ada");
    assert_eq!(b.actions().origin, Origin::Cached);
    assert_eq!(b.into_output().unwrap(), "hello ada");
    let c = runner(&home).run(greet("bob".into(), false));
    assert_eq!(c.actions().origin, Origin::Executed);
    assert_eq!(GREETINGS.load(Ordering::SeqCst) - before, 2);
}

static TICKS: AtomicU32 = AtomicU32::new(0);

/// Returns a new number each time it runs, to see which run a value is from.
#[task(cache = "auto")]
fn tick(label: String) -> (String, u32) {
    (label, TICKS.fetch_add(1, Ordering::SeqCst))
}

#[test]
fn override_always_runs_and_replaces_the_cached_value() {
    let home = TempDir::new().unwrap();
    let run = |call: TaskCall<(String, u32)>| runner(&home).run(call).into_output().unwrap().1;
    let first = run(tick("t".into()));
    assert_eq!(run(tick("t".into())), first, "auto: a hit");
    let replaced = run(tick("t".into()).cache(Cache::Override));
    assert_ne!(replaced, first, "override: runs");
    assert_eq!(
        run(tick("t".into())),
        replaced,
        "auto after override: the new value"
    );
    let fresh = run(tick("t".into()).cache(Cache::Disable));
    assert_ne!(fresh, replaced, "disable: runs");
    assert_eq!(run(tick("t".into())), replaced, "disable does not write");
}

#[test]
fn a_cached_value_that_no_longer_decodes_is_a_miss() {
    let home = TempDir::new().unwrap();
    let first = runner(&home)
        .run(tick("damaged".into()))
        .into_output()
        .unwrap();
    // Damage every cached value in place (as a changed type or a bad disk would).
    let db = rusqlite::Connection::open(home.path().join("flyte.db")).unwrap();
    let damaged = db.execute("UPDATE cache SET value = x'ff'", []).unwrap();
    assert!(damaged >= 1);
    let again = runner(&home).run(tick("damaged".into()));
    assert_eq!(again.actions().origin, Origin::Executed);
    let second = again.into_output().unwrap();
    assert_eq!(second.0, "damaged");
    assert_ne!(
        second.1, first.1,
        "ran again rather than returning a wrong value"
    );
    // ...and the good value replaced the damaged one.
    let third = runner(&home).run(tick("damaged".into()));
    assert_eq!(third.actions().origin, Origin::Cached);
    assert_eq!(third.into_output().unwrap(), second);
}

static SUMS: AtomicU32 = AtomicU32::new(0);

#[task(cache = "auto")]
fn total(counts: HashMap<String, u64>) -> u64 {
    SUMS.fetch_add(1, Ordering::SeqCst);
    counts.values().sum()
}

#[test]
fn map_inputs_give_one_key_whatever_their_order() {
    let home = TempDir::new().unwrap();
    let before = SUMS.load(Ordering::SeqCst);
    // Many entries: two HashMaps built in different orders iterate differently.
    let forward: HashMap<String, u64> = (0..200).map(|i| (format!("k{i}"), i)).collect();
    let backward: HashMap<String, u64> = (0..200).rev().map(|i| (format!("k{i}"), i)).collect();
    let a = runner(&home).run(total(forward)).into_output().unwrap();
    let b = runner(&home).run(total(backward));
    assert_eq!(b.actions().origin, Origin::Cached);
    assert_eq!(b.into_output().unwrap(), a);
    assert_eq!(SUMS.load(Ordering::SeqCst) - before, 1);
}

#[task(cache = "auto")]
fn tags(tags: HashSet<String>) -> usize {
    tags.len()
}

#[task(cache = "auto")]
fn sorted_tags(tags: BTreeSet<String>) -> usize {
    tags.len()
}

#[test]
fn hashset_inputs_are_refused_when_caching_is_on() {
    let home = TempDir::new().unwrap();
    let set: HashSet<String> = ["a".to_owned(), "b".to_owned()].into();
    let err = runner(&home)
        .run(tags(set.clone()))
        .into_output()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input);
    assert!(err.message().contains("BTreeSet"), "{err}");
    assert!(err.message().contains("cache_ignore = [tags]"), "{err}");
    // Without the cache the same call runs.
    let n = runner(&home).run(tags(set.clone()).cache(Cache::Disable));
    assert_eq!(n.into_output().unwrap(), 2);
    let sorted = runner(&home).run(sorted_tags(set.into_iter().collect()));
    assert_eq!(sorted.into_output().unwrap(), 2);
}

#[test]
fn a_damaged_database_is_a_clear_error_for_recorded_runs_and_a_miss_for_the_cache() {
    let home = TempDir::new().unwrap();
    std::fs::write(home.path().join("flyte.db"), vec![0x5a; 8192]).unwrap();
    let err = runner(&home).run(cube(4)).into_output().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.message().contains("damaged"), "{err}");
    assert!(err.message().contains("move it away"), "{err}");
    // Unrecorded, the cached task just runs.
    let out = runner(&home).persist(false).run(cube(4)).into_output();
    assert_eq!(out.unwrap(), 64);
}

static EPHEMERAL: AtomicU32 = AtomicU32::new(0);

#[task(cache = "auto")]
fn ephemeral_square(x: u64) -> u64 {
    EPHEMERAL.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[tokio::test]
async fn tasks_awaited_outside_a_run_use_the_cache_too() {
    // An ephemeral run uses the default store (FLYTE_HOME or ./.flyte),
    // which may already hold the value from an earlier test run.
    assert_eq!(ephemeral_square(9).await.unwrap(), 81);
    assert_eq!(ephemeral_square(9).await.unwrap(), 81);
    assert!(
        EPHEMERAL.load(Ordering::SeqCst) <= 1,
        "the second await was a hit"
    );
}

fn count_origins(node: &ActionNode, origin: Origin) -> usize {
    node.iter().filter(|n| n.origin == origin).count()
}

#[test]
fn hits_are_visible_in_the_tree_of_direct_children() {
    #[task(env = CACHED)]
    async fn twice(x: u64) -> Result<u64, TaskError> {
        let a = cube(x).await?;
        let b = cube(x + 1).await?;
        Ok(a + b)
    }
    let home = TempDir::new().unwrap();
    runner(&home).run(cube(30)).into_output().unwrap();
    let outcome = runner(&home).run(twice(30));
    assert_eq!(outcome.actions().children.len(), 2);
    assert_eq!(count_origins(outcome.actions(), Origin::Cached), 1);
    assert_eq!(outcome.into_output().unwrap(), 27_000 + 29_791);
}
