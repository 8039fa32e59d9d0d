use flyte::prelude::*;

#[task(timeout = "10 seconds")]
fn work() -> u8 {
    1
}

fn main() {}
