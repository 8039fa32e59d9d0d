use flyte::prelude::*;

#[task(retries = 1, retries = 2)]
fn work() -> u8 {
    1
}

fn main() {}
