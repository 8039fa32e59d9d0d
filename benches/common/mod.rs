//! The workload and statistics the benchmark binaries share, so that every
//! report measures the same task the same way.

#![allow(dead_code)] // each benchmark uses a part

use flyte::prelude::*;
use std::time::Duration;

/// The concurrency of every map benchmark, as in the goals.
pub(crate) const CONCURRENCY: usize = 64;

/// The trivial async task every map benchmark runs.
#[task]
pub(crate) async fn trivial(x: u64) -> u64 {
    x.wrapping_mul(2)
}

/// A map of `n` [`trivial`] items at [`CONCURRENCY`]: the run every
/// benchmark of a big recorded run records.
#[task]
pub(crate) async fn map_trivial(n: u64) -> Result<u64, TaskError> {
    let out = flyte::map(trivial, 0..n).concurrency(CONCURRENCY).await?;
    Ok(out.len() as u64)
}

/// How many items a benchmark runs: the number in `var`, else `default`.
pub(crate) fn items_from_env(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of `xs` (the machine is noisy: medians, not means).
pub(crate) fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Chromium's path, when it is on `PATH`.
pub(crate) fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(|name| {
            let out = std::process::Command::new("which")
                .arg(name)
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
}
