use flyte::prelude::*;
use std::time::Duration;

static ENV: TaskEnvironment = TaskEnvironment::new("shrinking")
    .backoff(Backoff::exponential(Duration::from_millis(10)).factor(0.5));

fn main() {
    let _ = &ENV;
}
