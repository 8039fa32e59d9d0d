//! Sync tasks that block (files, blocking HTTP clients, database drivers):
//! `concurrency(n)` means `n` running at once, whatever ran before.

mod common;

use common::Gauge;
use flyte::prelude::*;
use std::time::Duration;

static RUNNING: Gauge = Gauge::new();

#[task]
fn quick(x: u64) -> u64 {
    x + 1
}

#[task]
fn blocks(x: u64) -> u64 {
    let _running = RUNNING.enter();
    std::thread::sleep(Duration::from_millis(300));
    x
}

/// Regression: once a map had left idle pool threads behind, one idle
/// thread took every new job, so eight blocking tasks ran one after another.
#[test]
fn blocking_sync_tasks_run_at_once_after_the_pool_has_idle_threads() {
    // Leaves two pool threads idle (spinning, then asleep).
    let warm = flyte::map(quick, 0..1_000).concurrency(2).wait().unwrap();
    assert_eq!(warm.len(), 1_000);
    for pause in [Duration::ZERO, Duration::from_millis(50)] {
        // Right after (threads still spinning), and once they have parked.
        std::thread::sleep(pause);
        let out = flyte::map(blocks, 0..8).concurrency(8).wait().unwrap();
        assert_eq!(out, (0..8).collect::<Vec<_>>());
        assert_eq!(RUNNING.take_peak(), 8, "after a pause of {pause:?}");
    }
}
