//! The threads sync tasks run on.
//!
//! Like tokio's blocking pool, it grows on demand (up to 512 threads, so
//! sync tasks that block on I/O never starve each other) and lets idle
//! threads go after 10 s. Unlike it, a thread that finishes a job first
//! waits up to 100 µs for the next one, yielding its core meanwhile, before
//! it sleeps, so that a new job finds a thread that is already awake
//! (measured on 2 cores before lanes: CPU-bound map items 1.41× faster than
//! sequential at concurrency 2, against 1.06× with `spawn_blocking`; see
//! BENCHMARKS.md). rayon's pool spins similarly but has one thread per
//! core, which blocking sync tasks would starve.
//!
//! A map of sync tasks runs its items in a lane (`lane.rs`) on these threads.
//!
//! No job is lost: a job is queued under the lock; a sleeping thread
//! registers as sleeping under the same lock, and `submit` wakes one if any
//! sleeps; a waiting thread re-checks the queue before it sleeps.
//!
//! No job waits behind another: `submit` starts a thread whenever the jobs
//! queued outnumber the idle threads (waiting or asleep), so `n` jobs that
//! each block run at once, whatever ran before them.

use flyte_core::sync::{lock, wait_timeout};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub(crate) type Job = Box<dyn FnOnce() + Send>;

const SPIN: Duration = Duration::from_micros(100);
const KEEP_ALIVE: Duration = Duration::from_secs(10);
const MAX_THREADS: usize = 512;

struct Pool {
    queue: Mutex<VecDeque<Job>>,
    available: Condvar,
    queued: AtomicUsize,
    spinning: AtomicUsize,
    parked: AtomicUsize,
    threads: AtomicUsize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        queue: Mutex::new(VecDeque::new()),
        available: Condvar::new(),
        queued: AtomicUsize::new(0),
        spinning: AtomicUsize::new(0),
        parked: AtomicUsize::new(0),
        threads: AtomicUsize::new(0),
    })
}

/// Runs `job` on a pool thread.
///
/// # Errors
///
/// When no thread exists and none can be started (the OS refused).
pub(crate) fn submit(job: Job) -> std::io::Result<()> {
    let pool = pool();
    {
        let mut queue = lock(&pool.queue);
        queue.push_back(job);
        let waiting = pool.queued.fetch_add(1, Ordering::SeqCst) + 1;
        let parked = pool.parked.load(Ordering::SeqCst);
        if parked > 0 {
            pool.available.notify_one();
        }
        // Each idle thread (waiting for a job, or asleep) takes one job; a
        // job beyond them needs a thread of its own. One idle thread must
        // not absorb many jobs: a job may block for as long as it likes, so
        // the jobs behind it would wait for it.
        if waiting <= parked + pool.spinning.load(Ordering::SeqCst) {
            return Ok(());
        }
    }
    // Past the cap, the job waits for a thread to finish.
    if pool.threads.fetch_add(1, Ordering::SeqCst) >= MAX_THREADS {
        pool.threads.fetch_sub(1, Ordering::SeqCst);
        return Ok(());
    }
    match std::thread::Builder::new()
        .name("flyte-sync".into())
        .spawn(work)
    {
        Ok(_) => Ok(()),
        Err(e) => {
            pool.threads.fetch_sub(1, Ordering::SeqCst);
            if pool.threads.load(Ordering::SeqCst) > 0 {
                Ok(()) // another thread will take the job
            } else {
                let mut queue = lock(&pool.queue);
                queue.clear();
                pool.queued.store(0, Ordering::SeqCst);
                Err(e)
            }
        }
    }
}

fn try_pop(pool: &Pool) -> Option<Job> {
    if pool.queued.load(Ordering::SeqCst) == 0 {
        return None;
    }
    let mut queue = lock(&pool.queue);
    let job = queue.pop_front();
    if job.is_some() {
        pool.queued.fetch_sub(1, Ordering::SeqCst);
    }
    job
}

fn work() {
    let pool = pool();
    loop {
        if let Some(job) = try_pop(pool) {
            job();
            continue;
        }
        pool.spinning.fetch_add(1, Ordering::SeqCst);
        // Wait a moment for the next job, yielding the core meanwhile: on a
        // small machine a busy spin would slow the very threads it waits on.
        let until = Instant::now() + SPIN;
        let mut found = None;
        while Instant::now() < until {
            if let Some(job) = try_pop(pool) {
                found = Some(job);
                break;
            }
            std::thread::yield_now();
        }
        pool.spinning.fetch_sub(1, Ordering::SeqCst);
        if let Some(job) = found {
            job();
            continue;
        }
        let mut queue = lock(&pool.queue);
        loop {
            if let Some(job) = queue.pop_front() {
                pool.queued.fetch_sub(1, Ordering::SeqCst);
                drop(queue);
                job();
                break;
            }
            pool.parked.fetch_add(1, Ordering::SeqCst);
            let (q, timeout) = wait_timeout(&pool.available, queue, KEEP_ALIVE);
            pool.parked.fetch_sub(1, Ordering::SeqCst);
            queue = q;
            if timeout.timed_out() && queue.is_empty() {
                pool.threads.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::submit;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn every_job_runs_when_many_threads_submit_at_once() {
        let done = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let submitters: Vec<_> = (0..4)
            .map(|_| {
                let (done, tx) = (Arc::clone(&done), tx.clone());
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        let (done, tx) = (Arc::clone(&done), tx.clone());
                        submit(Box::new(move || {
                            done.fetch_add(1, Ordering::SeqCst);
                            let _ = tx.send(());
                        }))
                        .unwrap();
                    }
                })
            })
            .collect();
        for s in submitters {
            s.join().unwrap();
        }
        for _ in 0..2_000 {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("a job was lost");
        }
        assert_eq!(done.load(Ordering::SeqCst), 2_000);
    }

    #[test]
    fn a_job_may_block_on_a_job_it_submits() {
        let (tx, rx) = mpsc::channel();
        submit(Box::new(move || {
            let (inner_tx, inner_rx) = mpsc::channel();
            submit(Box::new(move || inner_tx.send(7).unwrap())).unwrap();
            let got = inner_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            tx.send(got).unwrap();
        }))
        .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 7);
    }
}
