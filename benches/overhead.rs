//! Criterion benchmarks of flyte's overhead against hand-written tokio (and
//! rayon), side by side in one group per workload.
//!
//! flyte runs as users get it, recorded in a store (`recorded`, in a
//! temporary directory), and with `Runner::persist(false)` beside it
//! (`persist_off`), for the engine alone.
//!
//! Run all: `cargo bench --bench overhead`; one group:
//! `cargo bench --bench overhead -- map_trivial_async`. Figures and the
//! machine they came from are in BENCHMARKS.md.

mod baseline;
mod common;

use baseline::{buffer_unordered_spawned, joinset_semaphore};
use common::{trivial, CONCURRENCY};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use flyte::prelude::*;
use futures_util::StreamExt;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const MAP_ITEMS: u64 = 100_000;

#[task]
fn trivial_sync(x: u64) -> u64 {
    x.wrapping_mul(2)
}

/// About 50 µs of arithmetic.
fn burn(x: u64) -> u64 {
    let mut acc = x;
    for i in 0..60_000_u64 {
        acc = acc
            .wrapping_mul(6364136223846793005)
            .wrapping_add(i ^ (acc >> 29));
    }
    acc
}

#[task]
fn cpu_bound(x: u64) -> u64 {
    burn(x)
}

#[task]
async fn map_async(n: u64) -> Result<usize, TaskError> {
    Ok(flyte::map(trivial, 0..n)
        .concurrency(CONCURRENCY)
        .await?
        .len())
}

#[task]
async fn map_sync(n: u64, concurrency: usize, cpu: bool) -> Result<usize, TaskError> {
    let out = if cpu {
        flyte::map(cpu_bound, 0..n).concurrency(concurrency).await?
    } else {
        flyte::map(trivial_sync, 0..n)
            .concurrency(concurrency)
            .await?
    };
    Ok(out.len())
}

/// `iters` awaited task calls in one run, for the per-call cost.
#[task]
async fn call_loop(iters: u64) -> Result<u64, TaskError> {
    let mut acc = 0;
    for i in 0..iters {
        acc += trivial(i).await?;
    }
    Ok(acc)
}

#[task]
async fn gather_loop(iters: u64) -> Result<u64, TaskError> {
    let mut acc = 0;
    for i in 0..iters {
        let (a, b) = flyte::gather((trivial(i), trivial(i + 1))).await?;
        acc += a + b;
    }
    Ok(acc)
}

#[task]
async fn as_completed_count(n: u64) -> usize {
    flyte::map(trivial, 0..n)
        .concurrency(CONCURRENCY)
        .as_completed()
        .count()
        .await
}

async fn spawn_blocking_by_hand(n: u64, concurrency: usize, f: fn(u64) -> u64) -> usize {
    let semaphore = Arc::new(Semaphore::new(concurrency));
    let mut set = JoinSet::new();
    for i in 0..n {
        let permit = Arc::clone(&semaphore).acquire_owned().await.unwrap();
        set.spawn_blocking(move || {
            let _permit = permit;
            f(i)
        });
    }
    let mut done = 0;
    while set.join_next().await.is_some() {
        done += 1;
    }
    done
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The two ways flyte runs here: recorded (the default) and not.
fn runners() -> [(&'static str, flyte::Runner); 2] {
    static HOME: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let home = HOME.get_or_init(|| {
        // One directory for every run of this bench: the store of the
        // previous run (hundreds of MB) is removed, not left behind.
        let home = std::env::temp_dir().join("flyte-bench-overhead");
        let _ = std::fs::remove_dir_all(&home);
        home
    });
    [
        ("recorded", flyte::Runner::new().home(home)),
        ("persist_off", flyte::Runner::new().persist(false)),
    ]
}

fn map_trivial_async(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("map_trivial_async_100k_c64");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (mode, runner) in runners() {
        group.bench_function(BenchmarkId::new("flyte_map", mode), |b| {
            b.iter(|| {
                rt.block_on(runner.run_async(map_async(MAP_ITEMS)))
                    .into_output()
                    .unwrap()
            })
        });
    }
    group.bench_function("joinset_semaphore_in_block_on", |b| {
        b.iter(|| rt.block_on(joinset_semaphore(MAP_ITEMS, CONCURRENCY)))
    });
    group.bench_function("joinset_semaphore_on_worker", |b| {
        b.iter(|| {
            rt.block_on(rt.spawn(joinset_semaphore(MAP_ITEMS, CONCURRENCY)))
                .unwrap()
        })
    });
    group.bench_function("buffer_unordered_spawned_on_worker", |b| {
        b.iter(|| {
            rt.block_on(rt.spawn(buffer_unordered_spawned(MAP_ITEMS, CONCURRENCY)))
                .unwrap()
        })
    });
    group.finish();
}

fn map_sync_tasks(c: &mut Criterion) {
    let rt = runtime();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut group = c.benchmark_group("map_trivial_sync_10k");
    group.sample_size(10);
    for (mode, runner) in runners() {
        let id = format!("{mode}/{cores}");
        group.bench_function(BenchmarkId::new("flyte_map", id), |b| {
            b.iter(|| {
                rt.block_on(runner.run_async(map_sync(10_000, cores, false)))
                    .into_output()
                    .unwrap()
            })
        });
    }
    group.bench_function(BenchmarkId::new("spawn_blocking_by_hand", cores), |b| {
        b.iter(|| {
            rt.block_on(rt.spawn(spawn_blocking_by_hand(10_000, cores, |x| x * 2)))
                .unwrap()
        })
    });
    group.finish();

    let items = 400;
    let mut group = c.benchmark_group("map_cpu_bound_sync_400x50us");
    group.sample_size(10);
    group.bench_function("sequential", |b| {
        b.iter(|| (0..items).map(burn).collect::<Vec<_>>())
    });
    for concurrency in [1, cores] {
        for (mode, runner) in runners() {
            let id = format!("{mode}/{concurrency}");
            group.bench_function(BenchmarkId::new("flyte_map", id), |b| {
                b.iter(|| {
                    rt.block_on(runner.run_async(map_sync(items, concurrency, true)))
                        .into_output()
                        .unwrap()
                })
            });
        }
        group.bench_function(
            BenchmarkId::new("spawn_blocking_by_hand", concurrency),
            |b| {
                b.iter(|| {
                    rt.block_on(rt.spawn(spawn_blocking_by_hand(items, concurrency, burn)))
                        .unwrap()
                })
            },
        );
    }
    group.bench_function(BenchmarkId::new("rayon_par_iter", cores), |b| {
        use rayon::prelude::*;
        b.iter(|| (0..items).into_par_iter().map(burn).collect::<Vec<_>>())
    });
    group.finish();
}

/// Per-call costs, measured over `iters` calls inside one run.
fn per_call(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("one_call");
    for (mode, runner) in runners() {
        group.bench_function(BenchmarkId::new("flyte_task_call_awaited", mode), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                rt.block_on(runner.run_async(call_loop(iters)))
                    .into_output()
                    .unwrap();
                start.elapsed()
            })
        });
    }
    group.bench_function("plain_async_fn", |b| {
        async fn plain(x: u64) -> u64 {
            black_box(x).wrapping_mul(2)
        }
        b.iter_custom(|iters| {
            let start = Instant::now();
            rt.block_on(async {
                let mut acc = 0;
                for i in 0..iters {
                    acc += plain(i).await;
                }
                black_box(acc)
            });
            start.elapsed()
        })
    });
    group.bench_function("flyte_gather_2_tuple", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            rt.block_on(
                flyte::Runner::new()
                    .persist(false)
                    .run_async(gather_loop(iters)),
            )
            .into_output()
            .unwrap();
            start.elapsed()
        })
    });
    group.finish();
}

fn as_completed(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("as_completed_1m_c64");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("flyte_map_as_completed", |b| {
        b.iter(|| {
            rt.block_on(
                flyte::Runner::new()
                    .persist(false)
                    .run_async(as_completed_count(1_000_000)),
            )
            .into_output()
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    map_trivial_async,
    map_sync_tasks,
    per_call,
    as_completed
);
criterion_main!(benches);
