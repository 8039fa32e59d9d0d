use flyte::prelude::*;

#[task(cache = "auto", cache_ignore = "quiet", cache_version = "")]
fn f(x: i64, quiet: bool) -> i64 {
    let _ = quiet;
    x
}

fn main() {}
