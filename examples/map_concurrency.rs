//! Flyte 2 `flyte.map(process_item, items, concurrency=5)`.
//!
//! At most five items run at once; results keep the input order.
//! Run: `cargo run --example map_concurrency`

use flyte::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static ENV: TaskEnvironment = TaskEnvironment::new("map_concurrency");
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[task(env = ENV)]
async fn process_item(x: u64) -> u64 {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    PEAK.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    x * x
}

#[task(env = ENV)]
async fn main_task(n: u64) -> Result<Vec<u64>, TaskError> {
    flyte::map(process_item, 0..n).concurrency(5).await
}

fn main() -> Result<(), TaskError> {
    let started = Instant::now();
    let out = flyte::run(main_task(50))?;
    println!(
        "50 items of 20ms at concurrency 5 took {:?} (serial: 1s); peak in flight: {}",
        started.elapsed(),
        PEAK.load(Ordering::SeqCst)
    );
    println!("first squares: {:?}", &out[..8]);
    assert!(PEAK.load(Ordering::SeqCst) <= 5);
    Ok(())
}
