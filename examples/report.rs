//! Writes a run's report: one self-contained HTML file with the run's
//! header, figures per task and fan-out, failures grouped by cause, its
//! tree and a timeline. Open the file it prints in a browser (it works
//! offline); `flyte report RUN` writes the same file from the command line.
//!
//! Run: `cargo run --example report`

use flyte::prelude::*;
use std::time::Duration;

static ENV: TaskEnvironment = TaskEnvironment::new("report_example");

/// Fetches a page (stands in for I/O), failing for every 50th.
#[task(env = ENV, retries = 1)]
async fn fetch(page: u32) -> Result<u32, TaskError> {
    tokio::time::sleep(Duration::from_millis(2 + u64::from(page % 7))).await;
    if page % 50 == 49 {
        return Err(TaskError::new(
            ErrorKind::User,
            format!("page {page}: HTTP 503"),
        ));
    }
    Ok(page * 10)
}

/// Scores a fetched page.
#[task(env = ENV)]
fn score(bytes: u32) -> u32 {
    bytes % 97
}

/// Fetches 400 pages 16 at a time, scores those that came back.
#[task(env = ENV)]
async fn crawl(pages: u32) -> Result<u32, TaskError> {
    let fetched = flyte::map(fetch, 0..pages)
        .concurrency(16)
        .collect_errors()
        .await;
    let ok: Vec<u32> = fetched.into_iter().flatten().collect();
    let scores = flyte::map(score, ok).concurrency(4).await?;
    Ok(scores.iter().sum())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let home = std::env::temp_dir().join("flyte-example-report");
    let report = home.join("report.html");
    let outcome = flyte::Runner::new()
        .home(&home)
        .report(&report)
        .run(crawl(400));
    let total = outcome.output().map_err(Clone::clone)?;
    println!("run {}: total score {total}", outcome.run_id());
    println!("report: {} (open it in a browser)", report.display());
    let page = std::fs::read_to_string(&report)?;
    assert!(page.contains("report_example.crawl"));
    Ok(())
}
