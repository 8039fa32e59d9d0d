//! `flyte::map` of a trivial task against a hand-written tokio `JoinSet` +
//! `Semaphore` loop over the same items, in the same process and runtime;
//! then a 10,000,000-item lazy map's peak memory and the bytes each
//! recorded action takes on disk.
//!
//! flyte runs as a user gets it: `Runner::new()`, recording on (the store
//! in a temporary `FLYTE_HOME`); the same map with `persist(false)` is
//! printed beside it.
//!
//! Run: `cargo bench --bench map_vs_joinset` (add `-- --quick` to skip the
//! memory runs, `-- --flyte-only` to run only flyte's recorded map, for a
//! profiler, with `--persist-off` unrecorded, with `--progress` showing
//! progress lines on stderr; `FLYTE_BENCH_ROUNDS` rounds,
//! default 20). Prints medians of alternating rounds and their ratios.
//! `-- --tracing-info` installs a `tracing` subscriber at INFO (writing
//! nowhere) first: flyte's run and fan-out spans are then made, its action
//! and attempt spans are not; compare with a run without it.

mod baseline;
mod common;

use baseline::joinset_semaphore;
use common::{median, trivial, CONCURRENCY};
use flyte::prelude::*;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

const ITEMS: u64 = 200_000;
const ROUNDS: usize = 11;

#[task]
async fn flyte_map(n: u64) -> Result<Vec<u64>, TaskError> {
    flyte::map(trivial, 0..n).concurrency(CONCURRENCY).await
}

fn rss_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The lazy map of the memory run, inside a run as users write it.
#[task]
async fn lazy_map(n: u64) -> Result<u64, TaskError> {
    let done = flyte::map(trivial, 0..n)
        .concurrency(CONCURRENCY)
        .as_completed()
        .fold(0_u64, |n, (_, r)| async move { n + u64::from(r.is_ok()) })
        .await;
    Ok(done)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    if std::env::args().any(|a| a == "--tracing-info") {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::sink)
            .init();
        println!("with a tracing subscriber at INFO");
    }
    // The default store, in a directory of its own.
    let home = std::env::temp_dir().join(format!("flyte-bench-map-{}", std::process::id()));
    std::env::set_var(flyte::store::FLYTE_HOME, &home);
    run_bench(quick, &home);
    std::fs::remove_dir_all(&home).ok();
}

fn run_bench(quick: bool, home: &std::path::Path) {
    if std::env::args().any(|a| a == "--peers") {
        peers_workload();
        return;
    }
    if std::env::args().any(|a| a == "--flyte-only") {
        // For profilers: flyte's map alone, many times.
        // `--persist-off` too: the same map unrecorded.
        let persist = !std::env::args().any(|a| a == "--persist-off");
        let mut runner = flyte::Runner::new().persist(persist);
        // `--progress` too: with the progress display on (lines on stderr).
        if std::env::args().any(|a| a == "--progress") {
            runner = runner.progress(flyte::Progress::Lines);
        }
        let rounds: usize = std::env::var("FLYTE_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(20);
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        for round in 0..rounds {
            let t = Instant::now();
            let outcome = runtime.block_on(runner.run_async(flyte_map(ITEMS)));
            assert_eq!(outcome.into_output().expect("map")[7], 14);
            println!("round {round}: {:.2?}", t.elapsed());
        }
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let recorded = flyte::Runner::new();
    let unrecorded = flyte::Runner::new().persist(false);

    if !quick {
        lazy_map_memory(&runtime, &recorded, "recorded (the default)", home);
        lazy_map_memory(&runtime, &unrecorded, "persist(false)", home);
    }
    // Warm up every path once.
    runtime.block_on(joinset_semaphore(ITEMS, CONCURRENCY));
    for runner in [&recorded, &unrecorded] {
        runtime
            .block_on(runner.run_async(flyte_map(ITEMS)))
            .into_output()
            .expect("map");
    }

    let (mut hand_times, mut worker_times) = (Vec::new(), Vec::new());
    let (mut recorded_times, mut unrecorded_times) = (Vec::new(), Vec::new());
    let flyte_round = |runner: &flyte::Runner, times: &mut Vec<Duration>| {
        let t = Instant::now();
        let out = runtime
            .block_on(runner.run_async(flyte_map(ITEMS)))
            .into_output()
            .expect("map");
        times.push(t.elapsed());
        assert_eq!(out[7], 14);
    };
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let out = runtime.block_on(joinset_semaphore(ITEMS, CONCURRENCY));
        hand_times.push(t.elapsed());
        assert_eq!(out[7], 14);

        // The same loop, spawned so that it runs on a worker thread as
        // flyte's root action does.
        let t = Instant::now();
        let out = runtime
            .block_on(runtime.spawn(joinset_semaphore(ITEMS, CONCURRENCY)))
            .expect("no panics");
        worker_times.push(t.elapsed());
        assert_eq!(out[7], 14);

        flyte_round(&recorded, &mut recorded_times);
        flyte_round(&unrecorded, &mut unrecorded_times);
    }
    let (f, u, h, w) = (
        median(recorded_times),
        median(unrecorded_times),
        median(hand_times),
        median(worker_times),
    );
    let per_item = |d: Duration| d.as_nanos() as f64 / ITEMS as f64;
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "map of a trivial task, {ITEMS} items, concurrency {CONCURRENCY}, median of {ROUNDS}:"
    );
    for (label, d) in [
        ("hand-written JoinSet + Semaphore, in block_on", h),
        ("hand-written, spawned onto a worker", w),
        ("flyte::map, recorded (the default)", f),
        ("flyte::map, persist(false)", u),
    ] {
        println!("  {label:<46} {d:>10.2?}  ({:.0} ns/item)", per_item(d));
    }
    println!(
        "  ratio recorded / hand-written: {:.2}x (in block_on), {:.2}x (on a worker)",
        ratio(f, h),
        ratio(f, w)
    );
    println!(
        "  ratio persist(false) / hand-written: {:.2}x (in block_on), {:.2}x (on a worker)",
        ratio(u, h),
        ratio(u, w)
    );
    println!("  ratio recorded / persist(false): {:.2}x", ratio(f, u));
}

/// The workload of `bench/peers/peers.py`: 10,000 items of `x * 2` at
/// concurrency 64, median of 5, per item.
fn peers_workload() {
    const PEER_ITEMS: u64 = 10_000;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let out = flyte::Runner::new()
            .persist(false)
            .run(flyte_map(PEER_ITEMS))
            .into_output()
            .expect("map");
        times.push(t.elapsed());
        assert_eq!(out[7], 14);
    }
    let per_item = median(times).as_secs_f64() / PEER_ITEMS as f64 * 1e6;
    println!(
        "  {:<36} {per_item:10.2} us/item",
        "flyte-rs flyte::map (flyte::run)"
    );
}

/// 10M items through a lazy map inside a run, measured before the timed
/// rounds so that nothing else has grown the heap: memory should stay in
/// proportion to the items in flight, recorded or not.
fn lazy_map_memory(
    runtime: &tokio::runtime::Runtime,
    runner: &flyte::Runner,
    label: &str,
    home: &std::path::Path,
) {
    let items: u64 = 10_000_000;
    let disk_before = store_bytes(home);
    // Reset the peak-RSS mark so it measures this run alone (Linux >= 4.0).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = rss_kib("VmRSS:").unwrap_or(0);
    let t = Instant::now();
    let done = runtime
        .block_on(runner.run_async(lazy_map(items)))
        .into_output()
        .expect("the lazy map");
    let elapsed = t.elapsed();
    let peak = rss_kib("VmHWM:").unwrap_or(0);
    assert_eq!(done, items);
    let growth = peak.saturating_sub(before);
    if !reset {
        println!("  (could not reset the peak-RSS mark: the figure below includes earlier rounds)");
    }
    println!("lazy map of {items} items at concurrency {CONCURRENCY}, {label}: {elapsed:.2?}");
    println!(
        "  peak RSS growth {:.1} MiB ({} bytes per in-flight task)",
        growth as f64 / 1024.0,
        growth * 1024 / CONCURRENCY as u64
    );
    let disk = store_bytes(home).saturating_sub(disk_before);
    if disk > 0 {
        // The items and the run's root: every one is an action on disk.
        println!(
            "  store grew {:.1} MB: {:.1} bytes per recorded action",
            disk as f64 / 1e6,
            disk as f64 / (items + 1) as f64
        );
    }
}

/// The size of the store's database once its write-ahead log is folded in.
fn store_bytes(home: &std::path::Path) -> u64 {
    let db = home.join("flyte.db");
    if let Ok(conn) = rusqlite::Connection::open(&db) {
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
    std::fs::metadata(db).map_or(0, |m| m.len())
}
