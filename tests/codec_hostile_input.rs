//! Hostile or damaged bytes never take the process down: from a caller of
//! the registry, from the cache, and from a stored run's inputs.

use flyte::prelude::*;
use flyte::store::Store;
use flyte::Runner;
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

#[task]
fn shout(text: String) -> String {
    text.to_uppercase()
}

#[derive(Debug, Serialize, Deserialize)]
enum Tree {
    Leaf(i64),
    Node(Vec<Tree>),
}

#[task]
fn leaves(tree: Tree) -> i64 {
    match tree {
        Tree::Leaf(x) => x,
        Tree::Node(children) => children.len() as i64,
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Tick;

#[task]
fn count_ticks(ticks: Vec<Tick>, units: Vec<()>) -> usize {
    ticks.len() + units.len()
}

#[task(cache = "auto")]
fn cached_text(n: u32) -> String {
    "x".repeat(n as usize)
}

/// A length prefix (of a string, or a sequence) claiming `len` bytes or
/// elements, and no bytes after it.
fn claimed_len(len: u64) -> Vec<u8> {
    let mut bytes = vec![0xFD];
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes
}

/// `Node(vec![Node(vec![... Leaf(7)])])`, `depth` levels, two bytes each.
fn deep_tree(depth: usize) -> Vec<u8> {
    let mut bytes = [1_u8, 1].repeat(depth);
    bytes.extend_from_slice(&[0, 14]);
    bytes
}

/// Regression: 9 bytes asked for a terabyte (an abort), `u64::MAX` for
/// more than exists (a panic).
#[test]
fn a_huge_string_length_from_a_caller_is_an_input_error() {
    for len in [1_u64 << 40, u64::MAX] {
        let err = flyte::registry()
            .call_bytes("default.shout", &claimed_len(len))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Input, "{err}");
        assert!(err.message().contains("text"), "names the parameter: {err}");
    }
}

/// Regression: a 60 KB input nesting 30,000 levels overflowed the stack.
#[test]
fn a_deeply_nested_input_is_an_input_error() {
    let err = flyte::registry()
        .call_bytes("default.leaves", &deep_tree(30_000))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input, "{err}");
    assert!(err.message().contains("deeper than"), "{err}");
    // A shallow tree still decodes and runs.
    let call = flyte::registry()
        .call_bytes("default.leaves", &deep_tree(3))
        .unwrap();
    let out: i64 = flyte::codec::decode(&call.wait().unwrap()).unwrap();
    assert_eq!(out, 1);
}

/// Regression: 9 bytes decoded as 2^64 - 1 elements that take no bytes
/// (`show --io`, `rerun` and `resume` then aborted on a 137 GB allocation
/// or panicked with a capacity overflow); the stored inputs do the same.
#[test]
fn a_sequence_of_empty_elements_longer_than_its_bytes_allow_is_an_input_error() {
    let huge = claimed_len(u64::MAX);
    let mut both = huge.clone();
    both.push(0);
    let mut second = vec![0];
    second.extend_from_slice(&huge);
    for bytes in [&both, &second] {
        let started = std::time::Instant::now();
        let err = flyte::registry()
            .call_bytes("default.count_ticks", bytes)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Input, "{err}");
        assert!(
            err.message().contains("more elements than its bytes"),
            "{err}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
    // As a stored run's inputs: resume fails with the same error.
    let home = TempDir::new().unwrap();
    let runner = Runner::new().home(home.path());
    let first = runner.run(count_ticks(vec![Tick, Tick], vec![(); 3]));
    assert_eq!(*first.output().unwrap(), 5);
    let db = rusqlite::Connection::open(home.path().join("flyte.db")).unwrap();
    db.execute("UPDATE runs SET inputs = ?1", [both.as_slice()])
        .unwrap();
    let err = runner
        .resume::<usize>(first.run_id())
        .into_output()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input, "{err}");
    // Real sequences of them still work.
    let call = flyte::registry()
        .call_json(
            "default.count_ticks",
            serde_json::json!({"ticks": vec![serde_json::Value::Null; 10_000], "units": [null, null]}),
        )
        .unwrap();
    assert_eq!(call.wait().unwrap(), serde_json::json!(10_002));
}

/// Regression: the same bytes stored as a cached value aborted on the hit.
#[test]
fn a_hostile_cached_value_is_a_miss() {
    let home = TempDir::new().unwrap();
    let runner = Runner::new().home(home.path());
    assert_eq!(runner.run(cached_text(3)).into_output().unwrap(), "xxx");
    let db = rusqlite::Connection::open(home.path().join("flyte.db")).unwrap();
    let damaged = db
        .execute(
            "UPDATE cache SET value = ?1",
            [claimed_len(1 << 40).as_slice()],
        )
        .unwrap();
    assert_eq!(damaged, 1);
    let again = runner.run(cached_text(3));
    assert_eq!(again.actions().origin, flyte::Origin::Executed);
    assert_eq!(again.into_output().unwrap(), "xxx");
}

/// Regression: the same bytes stored as a run's inputs aborted `resume`.
#[test]
fn hostile_stored_inputs_fail_resume_with_an_input_error() {
    let home = TempDir::new().unwrap();
    let runner = Runner::new().home(home.path());
    let first = runner.run(shout("hi".into()));
    assert_eq!(first.output().unwrap(), "HI");
    let db = rusqlite::Connection::open(home.path().join("flyte.db")).unwrap();
    db.execute(
        "UPDATE runs SET inputs = ?1",
        [claimed_len(u64::MAX).as_slice()],
    )
    .unwrap();
    let err = runner
        .resume::<String>(first.run_id())
        .into_output()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input, "{err}");
    // The store still opens and lists the run.
    assert_eq!(Store::open(home.path()).unwrap().runs().unwrap().len(), 1);
}
