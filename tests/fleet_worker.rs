//! A fleet worker against work queues kept in memory. However busy it is
//! claiming, it renews its lease. A worker that claimed again whenever its
//! last claim came back full, before it renewed anything, stopped renewing
//! while actions ended as fast as it claimed them (2 renewals in 4.5 s
//! here, instead of 3): in CI the fleet took such a worker for dead after
//! 10 s and ran what it had finished again elsewhere.

use flyte::fleet::queue::{
    ClaimOf, Claimed, Completion, Settled, Submit, WorkQueue, WorkerInfo, WorkerKey,
};
use flyte::prelude::*;
use flyte::record::ActionStatus;
use flyte::store::{MemoryStore, RunKey, StoreError, StoreFuture};
use flyte::ActionId;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

static ENV: TaskEnvironment = TaskEnvironment::new("lease");

/// Every other one shorter than a claim's round trip below, the others
/// longer: actions end at different times, as they do.
#[task(env = ENV)]
async fn tick() {
    static TICKS: AtomicUsize = AtomicUsize::new(0);
    let ms = if TICKS.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
        1
    } else {
        3
    };
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// More work than any claim asks for; each claim takes 2 ms: by the time
/// a claim answers, more slots than it filled are free again, and it came
/// back full.
#[derive(Debug, Default)]
struct Bottomless {
    claimed: AtomicUsize,
    succeeded: AtomicUsize,
    heartbeats: AtomicU32,
    registered: AtomicU32,
    /// The lease is found lost at this renewal (1: the first).
    lost_at: Option<u32>,
}

impl WorkQueue for Bottomless {
    fn submit(&self, _: Submit) -> StoreFuture<'static, Result<Settled, StoreError>> {
        Box::pin(async { Err(StoreError::WriterStopped) })
    }

    fn register(&self, _: WorkerInfo) -> StoreFuture<'_, Result<WorkerKey, StoreError>> {
        let n = self.registered.fetch_add(1, Ordering::Relaxed) + 1;
        Box::pin(async move { Ok(WorkerKey(i64::from(n))) })
    }

    fn claim(&self, _: WorkerKey, max: usize) -> StoreFuture<'_, Result<Vec<Claimed>, StoreError>> {
        let first = self.claimed.fetch_add(max, Ordering::Relaxed);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok((first..first + max)
                .map(|i| claimed(i as u128 + 1, "lease.tick"))
                .collect())
        })
    }

    fn work_hint(&self, timeout: Duration) -> StoreFuture<'_, ()> {
        Box::pin(tokio::time::sleep(timeout))
    }

    fn complete(&self, done: Completion) {
        if done.status == ActionStatus::Succeeded {
            self.succeeded.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn heartbeat(&self, _: WorkerKey) -> StoreFuture<'_, Result<bool, StoreError>> {
        let n = self.heartbeats.fetch_add(1, Ordering::Relaxed) + 1;
        let kept = self.lost_at != Some(n);
        Box::pin(async move { Ok(kept) })
    }

    fn cancelled(&self, _: WorkerKey) -> StoreFuture<'_, Result<Vec<ClaimOf>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn release(&self, _: WorkerKey, _: Vec<ClaimOf>) -> StoreFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    fn leave(&self, _: WorkerKey) -> StoreFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Action `id` of task `task` in run 1, claimed once.
fn claimed(id: u128, task: &str) -> Claimed {
    Claimed {
        run: RunKey(1),
        run_id: "r1".into(),
        run_name: None,
        execution: 1,
        id: ActionId(id),
        parent: None,
        index: None,
        task: task.into(),
        group: None,
        input: Vec::new(),
        retries: None,
        timeout: None,
        no_worker_after: Duration::from_secs(60),
        claim: 1,
    }
}

/// Serves `queue` with 8 slots for `millis` ms.
async fn serve_for(queue: Arc<dyn WorkQueue>, millis: u64) {
    let store = MemoryStore::new().with_queue(queue);
    let worker = flyte::fleet::Worker::store(Arc::new(store)).concurrency(8);
    let served = tokio::time::timeout(
        Duration::from_secs(20),
        worker.run_until(tokio::time::sleep(Duration::from_millis(millis))),
    )
    .await;
    assert!(served.is_ok(), "the worker did not stop when told to");
    served.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_claims_all_come_back_full_still_renews_its_lease() {
    let queue = Arc::new(Bottomless::default());
    serve_for(queue.clone(), 4500).await;
    let succeeded = queue.succeeded.load(Ordering::Relaxed);
    assert!(succeeded > 100, "only {succeeded} actions ran");
    // Renewals at 0, 2 and 4 s.
    let heartbeats = queue.heartbeats.load(Ordering::Relaxed);
    assert!(heartbeats >= 3, "{heartbeats} lease renewals in 4.5 s");
    assert_eq!(queue.registered.load(Ordering::Relaxed), 1);
}

/// A worker whose lease was lost (the fleet took it for dead) gives up what
/// it runs, registers again and renews the new lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_taken_for_dead_registers_again() {
    let queue = Arc::new(Bottomless {
        lost_at: Some(1),
        ..Bottomless::default()
    });
    serve_for(queue.clone(), 2500).await;
    assert_eq!(queue.registered.load(Ordering::Relaxed), 2);
    // The lost lease's renewal, then the new one's at 0 and 2 s.
    let heartbeats = queue.heartbeats.load(Ordering::Relaxed);
    assert!(heartbeats >= 3, "{heartbeats} lease renewals");
}

/// Runs of `noted`, the task the paused worker claimed.
static NOTED: AtomicUsize = AtomicUsize::new(0);

#[task(env = ENV)]
async fn noted() {
    NOTED.fetch_add(1, Ordering::Relaxed);
}

/// A worker paused past its lease, as the database sees it: its first
/// claim is answered only after the lease has run out (the claim was sent
/// just before a SIGSTOP and read after the SIGCONT), and no renewal gets
/// through meanwhile. By then the fleet has given those actions to other
/// workers.
#[derive(Debug, Default)]
struct PausedPastItsLease {
    registered: AtomicU32,
    claims: AtomicU32,
    heartbeats: AtomicU32,
    completed: AtomicUsize,
    left: std::sync::Mutex<Vec<i64>>,
}

impl WorkQueue for PausedPastItsLease {
    fn submit(&self, _: Submit) -> StoreFuture<'static, Result<Settled, StoreError>> {
        Box::pin(async { Err(StoreError::WriterStopped) })
    }

    fn register(&self, _: WorkerInfo) -> StoreFuture<'_, Result<WorkerKey, StoreError>> {
        let n = self.registered.fetch_add(1, Ordering::Relaxed) + 1;
        Box::pin(async move { Ok(WorkerKey(i64::from(n))) })
    }

    fn claim(
        &self,
        worker: WorkerKey,
        _: usize,
    ) -> StoreFuture<'_, Result<Vec<Claimed>, StoreError>> {
        let first = self.claims.fetch_add(1, Ordering::Relaxed) == 0;
        Box::pin(async move {
            if !first || worker.0 != 1 {
                return Ok(Vec::new());
            }
            // Answered past the lease (10 s, less its 1 s margin).
            tokio::time::sleep(Duration::from_millis(9500)).await;
            Ok((1..=4).map(|i| claimed(i, "lease.noted")).collect())
        })
    }

    fn work_hint(&self, timeout: Duration) -> StoreFuture<'_, ()> {
        Box::pin(tokio::time::sleep(timeout))
    }

    fn complete(&self, _: Completion) {
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    fn heartbeat(&self, _: WorkerKey) -> StoreFuture<'_, Result<bool, StoreError>> {
        // The first renewal (at once) gets through; the others never answer.
        let first = self.heartbeats.fetch_add(1, Ordering::Relaxed) == 0;
        Box::pin(async move {
            if !first {
                std::future::pending::<()>().await;
            }
            Ok(true)
        })
    }

    fn cancelled(&self, _: WorkerKey) -> StoreFuture<'_, Result<Vec<ClaimOf>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn release(&self, _: WorkerKey, _: Vec<ClaimOf>) -> StoreFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    fn leave(&self, worker: WorkerKey) -> StoreFuture<'_, Result<(), StoreError>> {
        self.left.lock().unwrap().push(worker.0);
        Box::pin(async { Ok(()) })
    }
}

/// What it claimed before the lease ran out, the worker does not start
/// (another worker may have run it already), does not complete, and gives
/// back under its old key before it registers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_starts_nothing_it_claimed_once_its_lease_has_lapsed() {
    let queue = Arc::new(PausedPastItsLease::default());
    serve_for(queue.clone(), 11_000).await;
    assert_eq!(
        NOTED.load(Ordering::Relaxed),
        0,
        "a body began after the lease lapsed"
    );
    assert_eq!(
        queue.completed.load(Ordering::Relaxed),
        0,
        "a void claim was completed"
    );
    assert_eq!(
        queue.registered.load(Ordering::Relaxed),
        2,
        "registered again"
    );
    let left = queue.left.lock().unwrap().clone();
    assert_eq!(
        left.first(),
        Some(&1),
        "gave back what the old key held: {left:?}"
    );
}
