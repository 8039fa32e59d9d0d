use flyte::prelude::*;

#[task(retries = 2, backoff = "200ms")]
fn work() -> u8 {
    1
}

fn main() {}
