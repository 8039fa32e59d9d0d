//! `asyncio.gather(*[fetch(u) for u in urls])` → `flyte::gather(calls)`.
//!
//! Run: `cargo run --example async_gather`

use flyte::prelude::*;
use std::time::{Duration, Instant};

static ENV: TaskEnvironment = TaskEnvironment::new("async_gather");

#[task(env = ENV)]
async fn fetch_size(page: u32) -> u64 {
    // Stands in for an HTTP request.
    tokio::time::sleep(Duration::from_millis(50)).await;
    u64::from(page) * 1_024
}

#[task(env = ENV)]
async fn total_size(pages: Vec<u32>) -> Result<u64, TaskError> {
    let calls: Vec<_> = pages.into_iter().map(fetch_size).collect();
    let sizes = flyte::gather(calls).await?;
    Ok(sizes.iter().sum())
}

fn main() -> Result<(), TaskError> {
    let started = Instant::now();
    let total = flyte::run(total_size((1..=20).collect()))?;
    println!(
        "20 fetches of 50ms gathered in {:?}: {total} bytes",
        started.elapsed()
    );
    assert_eq!(total, (1..=20).sum::<u64>() * 1_024);
    Ok(())
}
