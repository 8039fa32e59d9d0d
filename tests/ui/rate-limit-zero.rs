use flyte::prelude::*;
use std::time::Duration;

static ENV: TaskEnvironment = TaskEnvironment::new("closed").rate_limit(0, Duration::from_secs(1));

fn main() {
    let _ = &ENV;
}
