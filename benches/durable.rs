//! What durability costs, side by side in one process:
//!
//! 1. a 100,000-item `map` of a trivial task recorded in the store
//!    (every action and output written) against the same run with
//!    `persist(false)`;
//! 2. a cache hit: a loop of awaited calls of a cached task whose outputs
//!    are all in the cache, against the same loop uncached.
//!
//! Run: `cargo bench --bench durable` (add `-- --quick` for fewer rounds).
//! Prints medians of alternating rounds and their ratio. The store lives in
//! a temporary directory.

mod common;

use common::{map_trivial, median, CONCURRENCY};
use flyte::prelude::*;
use flyte::Runner;
use std::time::{Duration, Instant};

const ITEMS: u64 = 100_000;
const CALLS: u64 = 20_000;

/// Stands in for a call to a service: 1 ms of waiting.
#[task]
async fn io_bound(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    x
}

#[task]
async fn map_io(n: u64) -> Result<u64, TaskError> {
    let out = flyte::map(io_bound, 0..n).concurrency(CONCURRENCY).await?;
    Ok(out.len() as u64)
}

#[task(cache = "auto")]
async fn cached_double(x: u64) -> u64 {
    x.wrapping_mul(2)
}

#[task]
async fn call_loop(n: u64, cache: bool) -> Result<u64, TaskError> {
    let mut sum = 0_u64;
    for i in 0..n {
        let call = cached_double(i);
        let call = if cache {
            call
        } else {
            call.cache(Cache::Disable)
        };
        sum = sum.wrapping_add(call.await?);
    }
    Ok(sum)
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = Instant::now();
    let out = f();
    (t.elapsed(), out)
}

/// Medians of `rounds` alternating runs of `call()`, recorded and not.
fn on_and_off(
    rounds: usize,
    recorded: &Runner,
    unrecorded: &Runner,
    call: impl Fn() -> TaskCall<u64>,
    items: u64,
) -> (Duration, Duration) {
    let run = |runner: &Runner| {
        let (t, out) = time(|| runner.run(call()).into_output());
        assert_eq!(out.expect("the map succeeds"), items);
        t
    };
    run(recorded); // warm up: the store exists, its pages are in memory
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        off.push(run(unrecorded));
        on.push(run(recorded));
    }
    (median(on), median(off))
}

fn print_on_off(on: Duration, off: Duration, items: u64) {
    println!("  persistence off   {off:>10.2?}");
    println!("  persistence on    {on:>10.2?}  (every action and output recorded)");
    println!(
        "  ratio on / off: {:.2}x; {:.2} us more per recorded action",
        on.as_secs_f64() / off.as_secs_f64(),
        (on.as_secs_f64() - off.as_secs_f64()) / items as f64 * 1e6
    );
}

fn main() {
    let rounds = if std::env::args().any(|a| a == "--quick") {
        5
    } else {
        11
    };
    let home = std::env::temp_dir().join(format!("flyte-bench-durable-{}", std::process::id()));
    let recorded = Runner::new().home(&home);
    let unrecorded = Runner::new().home(&home).persist(false);

    // 1. Persistence on and off, with a trivial task (the worst case) and
    //    with a task that waits 1 ms, as a service call does.
    let (on, off) = on_and_off(rounds, &recorded, &unrecorded, || map_trivial(ITEMS), ITEMS);
    println!("map of {ITEMS} trivial items at concurrency {CONCURRENCY}, median of {rounds}:");
    print_on_off(on, off, ITEMS);
    const IO_ITEMS: u64 = 20_000;
    let (on, off) = on_and_off(
        rounds.min(5),
        &recorded,
        &unrecorded,
        || map_io(IO_ITEMS),
        IO_ITEMS,
    );
    println!("map of {IO_ITEMS} items that each wait 1 ms, at concurrency {CONCURRENCY}:");
    print_on_off(on, off, IO_ITEMS);

    // 2. Cache hits, with the run itself unrecorded so only the cache counts.
    let calls = |cache: bool| {
        let (t, out) = time(|| unrecorded.run(call_loop(CALLS, cache)).into_output());
        out.expect("the loop succeeds");
        t
    };
    calls(true); // fills the cache
    let (mut hits, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        plain.push(calls(false));
        hits.push(calls(true));
    }
    let (hits, plain) = (median(hits), median(plain));
    let per_call = |d: Duration| d.as_secs_f64() / CALLS as f64 * 1e6;
    println!("{CALLS} awaited calls of a small task, median of {rounds}:");
    println!("  executed          {:>8.2} us/call", per_call(plain));
    println!("  cache hits        {:>8.2} us/call", per_call(hits));
    println!(
        "  a hit costs {:.2} us more than running the task (key, lookup, decode)",
        per_call(hits) - per_call(plain)
    );
    std::fs::remove_dir_all(&home).ok();
}
