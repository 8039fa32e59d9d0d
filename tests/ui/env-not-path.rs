use flyte::prelude::*;

#[task(env = TaskEnvironment::new("inline"))]
fn work() -> u8 {
    1
}

fn main() {}
