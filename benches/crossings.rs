//! One map item's path through the code, for `bench/crossings.sh`: a
//! recorded run (the default) of a `map` of N trivial async items at
//! concurrency 64. The script runs it under callgrind at two widths and
//! counts the calls between files of the workspace that one more item
//! makes; this program only runs the workload (N from its first argument,
//! 1,000 when it has none, as under `cargo bench`).

use flyte::prelude::*;

#[task]
async fn double(x: u64) -> u64 {
    x.wrapping_mul(2)
}

#[task]
async fn double_all(n: u64) -> Result<u64, TaskError> {
    let out = flyte::map(double, 0..n).concurrency(64).await?;
    Ok(out.into_iter().fold(0, u64::wrapping_add))
}

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000);
    match flyte::run(double_all(n)) {
        Ok(sum) => println!("{n} items, sum {sum}"),
        Err(e) => {
            eprintln!("crossings workload failed: {e}");
            std::process::exit(1);
        }
    }
}
