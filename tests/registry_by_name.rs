//! The registry: listing tasks and running them by name from bytes or JSON.

use flyte::prelude::*;
use serde_json::json;

static ENV: TaskEnvironment = TaskEnvironment::new("reg_env");

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Order {
    id: u32,
    qty: u16,
}

#[task(env = ENV)]
fn total(order: Order, price: f64) -> f64 {
    f64::from(order.qty) * price
}

#[task(env = ENV)]
async fn greet(name: String) -> String {
    format!("hello {name}")
}

#[task(env = ENV)]
fn no_params() -> u8 {
    7
}

#[test]
fn names_lists_every_task_sorted() {
    let names: Vec<&str> = flyte::registry().names().collect();
    for expected in ["reg_env.greet", "reg_env.no_params", "reg_env.total"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    let info = flyte::registry().task("reg_env.total").unwrap();
    assert_eq!(info.params(), &["order", "price"]);
    assert!(!info.is_async());
    assert_eq!(info.env().name(), "reg_env");
    assert!(info.location().contains("registry_by_name.rs"));
}

#[test]
fn runs_by_name_from_bytes() {
    let input = flyte::codec::encode(&(Order { id: 1, qty: 3 }, 2.5_f64)).unwrap();
    let call = flyte::registry()
        .call_bytes("reg_env.total", &input)
        .unwrap();
    let out: f64 = flyte::codec::decode(&flyte::run(call).unwrap()).unwrap();
    assert_eq!(out, 7.5);
}

#[test]
fn runs_by_name_from_json() {
    let call = flyte::registry()
        .call_json(
            "reg_env.total",
            json!({"order": {"id": 1, "qty": 4}, "price": 0.5}),
        )
        .unwrap();
    assert_eq!(flyte::run(call).unwrap(), json!(2.0));
    let call = flyte::registry()
        .call_json("reg_env.no_params", json!({}))
        .unwrap();
    assert_eq!(call.wait().unwrap(), json!(7));
}

#[tokio::test]
async fn a_by_name_call_is_awaitable() {
    let out = flyte::registry()
        .call_json("reg_env.greet", json!({"name": "ada"}))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(out, json!("hello ada"));
}

#[test]
fn an_unknown_name_lists_the_known_ones() {
    let err = flyte::registry()
        .call_json("reg_env.nope", json!({}))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownTask);
    assert!(err.message().contains("`reg_env.nope`"), "{err}");
    assert!(err.message().contains("reg_env.greet"), "{err}");
}

#[test]
fn malformed_bytes_name_the_task_and_parameter() {
    let err = flyte::registry()
        .call_bytes("reg_env.total", &[1])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input);
    assert_eq!(err.task(), Some("reg_env.total"));
    assert!(err.message().contains("parameter `order`"), "{err}");

    let mut too_long = flyte::codec::encode(&("x".to_owned(),)).unwrap();
    too_long.push(0);
    let err = flyte::registry()
        .call_bytes("reg_env.greet", &too_long)
        .unwrap_err();
    assert!(err.message().contains("too many values"), "{err}");
}

#[test]
fn json_that_does_not_fit_names_the_parameter() {
    let reg = flyte::registry();
    let err = reg
        .call_json("reg_env.total", json!({"order": {"id": 1, "qty": 1}}))
        .unwrap_err();
    assert!(err.message().contains("missing parameter `price`"), "{err}");

    let err = reg
        .call_json(
            "reg_env.total",
            json!({"order": {"id": 1, "qty": 1}, "price": "cheap"}),
        )
        .unwrap_err();
    assert!(
        err.message().contains("parameter `price` is not a f64"),
        "{err}"
    );

    let err = reg
        .call_json("reg_env.greet", json!({"name": "a", "age": 3}))
        .unwrap_err();
    assert!(err.message().contains("unknown parameter(s) age"), "{err}");
    assert!(err.message().contains("the parameters are: name"), "{err}");

    let err = reg.call_json("reg_env.greet", json!(["a"])).unwrap_err();
    assert!(err.message().contains("must be a JSON object"), "{err}");
    assert_eq!(err.task(), Some("reg_env.greet"));
}

#[task(env = ENV)]
fn versioned_a(x: i64) -> i64 {
    x + 1
}

/// The same code, written differently, with a comment.
#[rustfmt::skip]
#[task(env = ENV)]
fn versioned_b( x : i64 )->i64 {
    // one more
    x+1
}

#[task(env = ENV)]
fn versioned_c(x: i64) -> i64 {
    x + 2
}

#[test]
fn versions_follow_the_code_not_its_formatting() {
    let reg = flyte::registry();
    let version = |name| reg.task(name).unwrap().version();
    let a = version("reg_env.versioned_a");
    assert_eq!(a.len(), 32);
    assert_eq!(a, version("reg_env.versioned_b"));
    assert_ne!(a, version("reg_env.versioned_c"));
}

/// Regression: an ill-typed 100 MB value was quoted whole in the error.
#[test]
fn an_error_about_a_huge_input_is_cut_and_says_how_long_it_was() {
    let huge = "9".repeat(10_000_000);
    let err = flyte::registry()
        .call_json(
            "reg_env.total",
            json!({"order": {"id": huge, "qty": 1}, "price": 1.0}),
        )
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input);
    let message = err.message();
    assert!(message.len() < 2_100, "{} bytes", message.len());
    assert!(message.contains("order"), "names the parameter: {message}");
    assert!(message.contains("bytes in all"), "{message}");
    // A short one is kept whole.
    let err = flyte::registry()
        .call_json(
            "reg_env.total",
            json!({"order": {"id": "x", "qty": 1}, "price": 1.0}),
        )
        .map(|_| ())
        .unwrap_err();
    assert!(!err.message().contains("cut"), "{}", err.message());
}
