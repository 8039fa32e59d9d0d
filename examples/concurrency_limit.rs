//! The semaphore pattern, without the semaphore.
//!
//! Python:
//! ```python
//! sem = asyncio.Semaphore(10)
//! async def limited(x):
//!     async with sem: return await call_api(x)
//! await asyncio.gather(*[limited(x) for x in xs])
//! ```
//! flyte: `flyte::gather(calls).concurrency(10)` (or `map(..).concurrency(10)`).
//! Run: `cargo run --example concurrency_limit`

use flyte::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static ENV: TaskEnvironment = TaskEnvironment::new("concurrency_limit");
static OPEN_CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[task(env = ENV)]
async fn call_api(x: u32) -> u32 {
    let open = OPEN_CONNECTIONS.fetch_add(1, Ordering::SeqCst) + 1;
    PEAK.fetch_max(open, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(10)).await;
    OPEN_CONNECTIONS.fetch_sub(1, Ordering::SeqCst);
    x + 1
}

#[task(env = ENV)]
async fn main_task(n: u32) -> Result<u32, TaskError> {
    let calls: Vec<_> = (0..n).map(call_api).collect();
    let out = flyte::gather(calls).concurrency(10).await?;
    Ok(out.iter().sum())
}

fn main() -> Result<(), TaskError> {
    let sum = flyte::run(main_task(200))?;
    let peak = PEAK.load(Ordering::SeqCst);
    println!("200 API calls, never more than {peak} open at once; sum = {sum}");
    assert!(peak <= 10);
    Ok(())
}
