//! The threads sync tasks run on.
//!
//! Like tokio's blocking pool, it grows on demand (up to 512 threads, so
//! sync tasks that block on I/O never starve each other) and lets idle
//! threads go after 10 s. Unlike it, a thread that finishes a job first
//! waits up to 100 µs for the next one, yielding its core meanwhile, before
//! it sleeps: a map of sync tasks hands each new item to a thread that is
//! already awake instead of waking one (measured on 2 cores: CPU-bound
//! items 1.41× faster than sequential at concurrency 2, against 1.06× with
//! `spawn_blocking`; see BENCHMARKS.md). rayon's pool spins similarly but
//! has one thread per core, which blocking sync tasks would starve.
//!
//! A map of sync tasks runs its items in a [`Lane`]: at most its
//! concurrency of them run at once, the rest wait in the lane, and a thread
//! that finishes one of its items takes the next itself, as rayon's threads
//! do, without a round trip through the map's task on a tokio worker. A
//! thread whose item failed does not: the map decides first (a fail-fast
//! map cancels what waits), then [`Lane::resume`]s the lane.
//!
//! No job is lost: a job is queued under the lock; a sleeping thread
//! registers as sleeping under the same lock, and `submit` wakes one if any
//! sleeps; a waiting thread re-checks the queue before it sleeps.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

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
        let mut queue = pool.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.push_back(job);
        pool.queued.fetch_add(1, Ordering::SeqCst);
        if pool.parked.load(Ordering::SeqCst) > 0 {
            pool.available.notify_one();
            return Ok(());
        }
    }
    // A waiting thread takes the job; otherwise start one (past the cap,
    // the job waits for a thread to finish).
    if pool.spinning.load(Ordering::SeqCst) > 0 {
        return Ok(());
    }
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
                let mut queue = pool.queue.lock().unwrap_or_else(|p| p.into_inner());
                queue.clear();
                pool.queued.store(0, Ordering::SeqCst);
                Err(e)
            }
        }
    }
}

/// The jobs of one map: at most `limit` run at once; the others wait here,
/// and a thread that finishes one of them runs the next waiting one itself.
#[derive(Debug)]
pub(crate) struct Lane {
    limit: usize,
    state: Mutex<LaneState>,
}

/// A lane's job: returns whether the lane may go on to its next job on
/// this thread (false when the item failed).
pub(crate) type LaneJob = Box<dyn FnOnce() -> bool + Send>;

#[derive(Default)]
struct LaneState {
    running: usize,
    waiting: VecDeque<LaneJob>,
}

impl std::fmt::Debug for LaneState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneState")
            .field("running", &self.running)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl Lane {
    pub(crate) fn new(limit: usize) -> Arc<Lane> {
        Arc::new(Lane {
            limit: limit.max(1),
            state: Mutex::new(LaneState::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts waiting jobs on pool threads, up to the limit: after a failed
    /// job left its thread without taking the next one.
    pub(crate) fn resume(self: &Arc<Self>) {
        loop {
            let mut state = self.state();
            if state.running >= self.limit {
                return;
            }
            let Some(job) = state.waiting.pop_front() else {
                return;
            };
            state.running += 1;
            drop(state);
            if start_lane(self, job).is_err() {
                // No thread to be had: the job's caller sees it dropped.
                return;
            }
        }
    }
}

/// Runs `job` in `lane`: on a pool thread now if fewer than its limit run,
/// else after one of them, on the thread that ran it.
///
/// # Errors
///
/// As [`submit`].
pub(crate) fn submit_in(lane: &Arc<Lane>, job: LaneJob) -> std::io::Result<()> {
    let mut state = lane.state();
    if state.running >= lane.limit {
        state.waiting.push_back(job);
        return Ok(());
    }
    state.running += 1;
    drop(state);
    start_lane(lane, job)
}

/// Runs `job` and then the lane's waiting jobs on one pool thread.
fn start_lane(lane: &Arc<Lane>, job: LaneJob) -> std::io::Result<()> {
    let runner = Arc::clone(lane);
    submit(Box::new(move || run_lane(&runner, job))).inspect_err(|_| lane.state().running -= 1)
}

/// Runs `job`, then, while jobs succeed, the lane's waiting jobs one after
/// another, on this thread.
fn run_lane(lane: &Lane, mut job: LaneJob) {
    loop {
        let go_on = job();
        let mut state = lane.state();
        match state.waiting.pop_front() {
            Some(next) if go_on => job = next,
            other => {
                if let Some(next) = other {
                    state.waiting.push_front(next);
                }
                state.running -= 1;
                return;
            }
        }
    }
}

fn try_pop(pool: &Pool) -> Option<Job> {
    if pool.queued.load(Ordering::SeqCst) == 0 {
        return None;
    }
    let mut queue = pool.queue.lock().unwrap_or_else(|p| p.into_inner());
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
        let mut queue = pool.queue.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(job) = queue.pop_front() {
                pool.queued.fetch_sub(1, Ordering::SeqCst);
                drop(queue);
                job();
                break;
            }
            pool.parked.fetch_add(1, Ordering::SeqCst);
            let (q, timeout) = pool
                .available
                .wait_timeout(queue, KEEP_ALIVE)
                .unwrap_or_else(|p| p.into_inner());
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
    use super::{submit, submit_in, Lane};
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
    fn a_lane_runs_at_most_its_limit_at_once_and_every_job() {
        let lane = Lane::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        for _ in 0..50 {
            let (running, peak, tx) = (Arc::clone(&running), Arc::clone(&peak), tx.clone());
            submit_in(
                &lane,
                Box::new(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(1));
                    running.fetch_sub(1, Ordering::SeqCst);
                    tx.send(()).unwrap();
                    true
                }),
            )
            .unwrap();
        }
        for _ in 0..50 {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("a lane job was lost");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        // The last job's thread leaves the lane just after it reports.
        for _ in 0..1_000 {
            if lane.state().running == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(lane.state().running, 0);
    }

    #[test]
    fn a_failed_job_leaves_the_next_one_waiting_until_resume() {
        let lane = Lane::new(1);
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        submit_in(
            &lane,
            Box::new(move || {
                std::thread::sleep(Duration::from_millis(20)); // the next one queues
                tx.send("failed").unwrap();
                false
            }),
        )
        .unwrap();
        submit_in(
            &lane,
            Box::new(move || {
                tx2.send("next").unwrap();
                true
            }),
        )
        .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "failed");
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "ran without resume"
        );
        lane.resume();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "next");
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
