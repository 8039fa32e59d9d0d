use flyte::prelude::*;

#[task(retry = 3)]
fn work() -> u8 {
    1
}

fn main() {}
