//! Hand-written tokio baselines shared by the benchmarks, so that every
//! report compares against the same code.

#![allow(dead_code)] // each benchmark uses a part

use futures_util::StreamExt;
use std::hint::black_box;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// What a careful user writes by hand: bounded spawning, results in order.
pub(crate) async fn joinset_semaphore(n: u64, concurrency: usize) -> Vec<u64> {
    let semaphore = Arc::new(Semaphore::new(concurrency));
    let mut set = JoinSet::new();
    let mut out = vec![0; n as usize];
    for i in 0..n {
        let permit = Arc::clone(&semaphore).acquire_owned().await.unwrap();
        set.spawn(async move {
            let _permit = permit;
            (i, black_box(i).wrapping_mul(2))
        });
        while let Some(done) = set.try_join_next() {
            let (i, v) = done.unwrap();
            out[i as usize] = v;
        }
    }
    while let Some(done) = set.join_next().await {
        let (i, v) = done.unwrap();
        out[i as usize] = v;
    }
    out
}

/// Spawned futures through `buffer_unordered`, results in order.
pub(crate) async fn buffer_unordered_spawned(n: u64, concurrency: usize) -> Vec<u64> {
    let mut out = vec![0; n as usize];
    let mut results = futures_util::stream::iter(0..n)
        .map(|i| tokio::spawn(async move { (i, black_box(i).wrapping_mul(2)) }))
        .buffer_unordered(concurrency);
    while let Some(done) = results.next().await {
        let (i, v) = done.unwrap();
        out[i as usize] = v;
    }
    out
}
