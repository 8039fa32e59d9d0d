use flyte::prelude::*;

static ENV: TaskEnvironment = TaskEnvironment::new("My Env");

fn main() {
    let _ = &ENV;
}
