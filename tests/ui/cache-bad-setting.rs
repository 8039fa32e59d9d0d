use flyte::prelude::*;

#[task(cache = "always")]
fn f(x: i64) -> i64 {
    x
}

fn main() {}
