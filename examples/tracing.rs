//! flyte's tracing spans, printed by `tracing_subscriber::fmt`: a run, its
//! root action and attempt, a map and its items, a retry and a cache hit.
//!
//! Run: `cargo run --example tracing` (DEBUG: runs, fan-outs, actions,
//! retries, cache hits); add `-- --trace` to see each attempt too.

use flyte::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Level;
use tracing_subscriber::fmt::format::FmtSpan;

static ENV: TaskEnvironment = TaskEnvironment::new("tracing_example");
static FAILED_ONCE: AtomicBool = AtomicBool::new(false);

#[task(env = ENV, retries = 1, backoff = Backoff::fixed(std::time::Duration::from_millis(10)))]
fn fetch(page: u32) -> Result<u32, TaskError> {
    if page == 2 && !FAILED_ONCE.swap(true, Ordering::SeqCst) {
        return Err(TaskError::new(ErrorKind::User, "connection reset"));
    }
    Ok(page * 100)
}

#[task(env = ENV, cache = "auto")]
fn total(sizes: Vec<u32>) -> u32 {
    sizes.iter().sum()
}

#[task(env = ENV)]
async fn crawl(pages: u32) -> Result<u32, TaskError> {
    let sizes = flyte::map(fetch, 0..pages).concurrency(2).await?;
    let first = total(sizes.clone()).await?;
    let again = total(sizes).await?; // the same call: a cache hit
    Ok(first + again)
}

fn main() -> Result<(), TaskError> {
    let level = match std::env::args().any(|a| a == "--trace") {
        true => Level::TRACE,
        false => Level::DEBUG,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_span_events(FmtSpan::CLOSE)
        .with_target(true)
        .with_writer(std::io::stderr)
        .init();
    let home = std::env::temp_dir().join(format!("flyte-example-tracing-{}", std::process::id()));
    let outcome = flyte::Runner::new().home(&home).run(crawl(4));
    std::fs::remove_dir_all(&home).ok();
    println!("crawled: {}", outcome.into_output()?);
    Ok(())
}
