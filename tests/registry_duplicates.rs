//! Two tasks with one name: a clear error naming both places.

use flyte::prelude::*;

static ENV: TaskEnvironment = TaskEnvironment::new("dup_env");

mod a {
    use super::*;
    #[task(env = ENV)]
    pub fn clash() -> u8 {
        1
    }
}

mod b {
    use super::*;
    #[task(env = ENV, name = "clash")]
    pub fn other() -> u8 {
        2
    }
}

#[test]
fn duplicate_names_are_a_config_error() {
    let err = flyte::registry().check().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.message().contains("2 tasks are named `dup_env.clash`"),
        "{err}"
    );
    assert!(err.message().contains("registry_duplicates.rs"), "{err}");

    let err = flyte::registry()
        .call_json("dup_env.clash", serde_json::json!({}))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);

    // A run refuses to start while names clash.
    let err = flyte::run(a::clash()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let _ = b::other();
}

/// Regression: outside a run, `.wait()` ran both tasks silently.
#[test]
fn a_call_outside_any_run_follows_the_same_rule() {
    let err = a::clash().wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let err = b::other().wait().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let all = flyte::map(|_| a::clash(), 0..3).collect_errors().wait();
    assert!(all
        .iter()
        .all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Config));
}
