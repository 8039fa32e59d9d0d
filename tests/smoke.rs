//! Smoke test: a map inside a run, and a sync wait.
use flyte::prelude::*;

static ENV: TaskEnvironment = TaskEnvironment::new("smoke");

#[task(env = ENV)]
fn double(x: i64) -> i64 {
    x * 2
}

#[task(env = ENV)]
async fn double_all(items: Vec<i64>) -> Result<Vec<i64>, TaskError> {
    flyte::map(double, items).concurrency(5).await
}

#[test]
fn runs() {
    assert_eq!(flyte::run(double_all(vec![1, 2, 3])).unwrap(), vec![2, 4, 6]);
    assert_eq!(double(4).wait().unwrap(), 8);
}
