//! Execution policies on a flaky simulated service: retries with backoff,
//! a final (non-retryable) error, timeouts for async and sync tasks, and an
//! environment's concurrency and rate limits.
//!
//! Run: `cargo run --example policies`. With `-- --long` it starts a long
//! run and waits: press Ctrl-C to see the run cancelled and recorded (the
//! process then exits non-zero; a second Ctrl-C exits at once).

use flyte::prelude::*;
use flyte::{ActionStatus, Runner};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The service allows 4 calls at once and 50 call starts per second.
static SERVICE: TaskEnvironment = TaskEnvironment::new("flaky_service")
    .retries(3)
    .backoff(Backoff::exponential(Duration::from_millis(20)).cap(Duration::from_millis(200)))
    .timeout(Duration::from_millis(250))
    .concurrency(4)
    .rate_limit(50, Duration::from_secs(1));

#[derive(Debug, thiserror::Error)]
enum ServiceError {
    #[error("503 service unavailable")]
    Unavailable,
    #[error("404 no such record {0}")]
    NotFound(u32),
}

static CALLS: AtomicU32 = AtomicU32::new(0);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Fails the first attempt of every third request, hangs on the first
/// attempt of every seventh, and never finds request 13.
#[task(env = SERVICE)]
async fn call_service(request: u32) -> Result<String, TaskError> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight::enter();
    let attempt = flyte::current().attempt();
    async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if request == 13 {
            return Err(TaskError::non_retryable(ServiceError::NotFound(request)));
        }
        if attempt == 1 && request.is_multiple_of(7) {
            tokio::time::sleep(Duration::from_secs(60)).await; // the timeout ends this
        }
        if attempt == 1 && request.is_multiple_of(3) {
            return Err(TaskError::user(ServiceError::Unavailable));
        }
        Ok(format!("record {request}"))
    }
    .await
}

/// Counts calls in flight; a timed-out attempt is dropped mid-await, so the
/// count is given back on drop.
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Legacy sync code that runs too long; it checks for cancellation.
#[task(env = SERVICE, retries = 0, timeout = "100ms")]
fn legacy_report() -> Result<u32, TaskError> {
    let mut pages = 0;
    while !flyte::current().is_cancelled() {
        std::thread::sleep(Duration::from_millis(5));
        pages += 1;
    }
    println!("  legacy_report noticed the timeout after {pages} pages and stopped");
    Ok(pages)
}

#[task]
async fn sync_all(requests: u32) -> Vec<Result<String, TaskError>> {
    flyte::map(call_service, 0..requests).collect_errors().await
}

#[task]
async fn slow_item(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_secs(1)).await;
    x
}

#[task]
async fn long_job(items: u64) -> Result<u64, TaskError> {
    let done = flyte::map(slow_item, 0..items).concurrency(8).await?;
    Ok(done.iter().sum())
}

fn long_mode() -> Result<(), TaskError> {
    println!("run started: press Ctrl-C to cancel");
    let outcome = Runner::new().run(long_job(10_000));
    let map = outcome.actions().fan_outs.first();
    eprintln!(
        "run {} ended: {:?}; items started {}, cancelled {}",
        outcome.run_id(),
        outcome.actions().status,
        map.map_or(0, |m| m.started),
        map.map_or(0, |m| m.cancelled),
    );
    outcome.into_output().map(|_| ())
}

fn main() -> Result<(), TaskError> {
    if std::env::args().any(|a| a == "--long") {
        return long_mode();
    }
    let started = Instant::now();
    let outcome = Runner::new().run(sync_all(30));
    let results = outcome.output().map_err(Clone::clone)?;
    for (i, result) in results.iter().enumerate() {
        if let Err(e) = result {
            println!("  request {i}: {e}");
        }
    }
    let ok = results.iter().filter(|r| r.is_ok()).count();
    println!(
        "30 requests: {ok} ok, {} failed, {} calls made, at most {} at once, in {:?}",
        results.len() - ok,
        CALLS.load(Ordering::SeqCst),
        PEAK.load(Ordering::SeqCst),
        started.elapsed()
    );
    let map = &outcome.actions().fan_outs[0];
    println!(
        "  run tree: {} succeeded, {} failed",
        map.succeeded, map.failed
    );
    assert_eq!(ok, 29, "only request 13 fails for good");
    assert!(PEAK.load(Ordering::SeqCst) <= 4);

    let err = legacy_report().wait().unwrap_err();
    println!("legacy_report: {err}");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    // Give the sync thread a moment to print that it noticed.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(outcome.actions().status, ActionStatus::Succeeded);
    Ok(())
}
