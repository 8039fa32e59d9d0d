//! What a worker does while it serves: claims (ahead of its free slots,
//! one claim under way at a time, beside everything else), starts what it
//! claimed as slots free up, keeps its lease, stops what was cancelled,
//! and gives back what it holds when it rejoins or leaves.

use super::ahead::{Ahead, Pace};
use super::execute::{execute, Runs};
use super::lease::Lease;
use crate::registry::registry;
use flyte_core::backend::RunStore;
use flyte_core::queue::{Claimed, LeaseClock, WorkQueue, WorkerInfo, WorkerKey, LEASE};
use flyte_core::store::{RunKey, StoreError};
use flyte_core::sync::lock;
use flyte_core::{ActionId, TaskError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};

/// At most this many actions are claimed at once.
const CLAIM_BATCH: usize = 256;
/// How often a worker holding actions asks whether any was cancelled.
const CANCEL_CHECK: Duration = Duration::from_millis(200);
/// How long an idle worker waits for a wake-up before it looks anyway.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// The first pause after a failed claim; it doubles up to the next.
const CLAIM_RETRY: Duration = Duration::from_millis(100);
const MAX_CLAIM_RETRY: Duration = Duration::from_secs(5);

/// The actions running on a worker, with their claim and how to stop them.
type Running = HashMap<(RunKey, ActionId), (u32, AbortHandle)>;

/// A claim under way: how many it asked for, and what it took.
type Claiming = JoinHandle<(usize, Result<Vec<Claimed>, StoreError>)>;

/// What woke the serving loop.
enum Turn {
    Stop,
    Claimed(Result<(usize, Result<Vec<Claimed>, StoreError>), tokio::task::JoinError>),
    CheckCancels,
    Other,
}

/// What one worker holds while it serves.
pub(super) struct Serving {
    store: Arc<dyn RunStore>,
    queue: Arc<dyn WorkQueue>,
    concurrency: usize,
    info: WorkerInfo,
    /// Actions running here, with their claim and how to stop them.
    running: Arc<Mutex<Running>>,
    /// Claimed here, not started yet.
    ahead: Ahead,
    /// How long actions take here: how many to claim ahead.
    pace: Arc<Pace>,
    /// Signalled when an action ends here: a slot is free.
    ended: Arc<Notify>,
    runs: Runs,
    /// The last claim got less than it asked for: the queue is dry until
    /// a wake-up says otherwise (or [`IDLE_POLL`] passes).
    dry: bool,
    /// Claims that failed in a row: the next waits longer (a database
    /// that is away is not asked several times a second).
    failed_claims: u32,
    /// No claim before this, after a failed one; the lease and
    /// cancellations go on meanwhile.
    claim_paused_until: Option<Instant>,
}

impl Serving {
    pub(super) fn new(
        store: Arc<dyn RunStore>,
        queue: Arc<dyn WorkQueue>,
        concurrency: usize,
    ) -> Serving {
        let tasks = registry()
            .names()
            .filter_map(|name| registry().task(name).ok())
            .map(|task| (task.name().to_owned(), task.version().to_owned()))
            .collect();
        let info = WorkerInfo {
            concurrency: concurrency as u32,
            tasks,
        };
        Serving {
            store,
            queue,
            concurrency,
            info,
            running: Arc::default(),
            ahead: Ahead::default(),
            pace: Arc::default(),
            ended: Arc::default(),
            runs: Runs::default(),
            dry: false,
            failed_claims: 0,
            claim_paused_until: None,
        }
    }

    pub(super) async fn serve(mut self, stop: impl Future<Output = ()>) -> Result<(), TaskError> {
        let mut lease = Lease::register(&self.queue, &self.info).await?;
        tracing::info!(
            "flyte worker {} serves {} tasks from {} ({} at once)",
            lease.key.0,
            self.info.tasks.len(),
            self.store.location(),
            self.concurrency
        );
        let mut claiming: Option<Claiming> = None;
        let mut cancel_check = tokio::time::interval(CANCEL_CHECK);
        tokio::pin!(stop);
        loop {
            // A lease that lapsed (the worker was paused, or cut off from
            // the database, past its length) or was lost: nothing claimed
            // under it may start or stay; give it all back and register
            // again, before anything else.
            if !lease.clock.is_fresh() {
                finish_claim(&mut claiming).await;
                let old = lease.key;
                lease = tokio::select! {
                    biased;
                    () = &mut stop => break,
                    rejoined = self.rejoin(old) => rejoined,
                };
            }
            self.give_back_overdue(lease.key).await;
            self.start_ahead(&lease.clock);
            if claiming.is_none() {
                claiming = self.claim(lease.key);
            }
            let holding = !lock(&self.running).is_empty() || !self.ahead.is_empty();
            let idle = claiming.is_none() && self.dry;
            let paused_until = self.claim_paused_until;
            let (ended, queue) = (Arc::clone(&self.ended), Arc::clone(&self.queue));
            let turn = tokio::select! {
                biased;
                () = &mut stop => Turn::Stop,
                _ = &mut lease.lost => Turn::Other,
                done = async { claiming.as_mut().expect("checked by the branch's condition").await },
                    if claiming.is_some() => Turn::Claimed(done),
                _ = cancel_check.tick(), if holding => Turn::CheckCancels,
                () = ended.notified() => Turn::Other,
                () = queue.work_hint(IDLE_POLL), if idle => {
                    self.dry = false;
                    Turn::Other
                }
                () = sleep_until(paused_until), if paused_until.is_some() => Turn::Other,
            };
            match turn {
                Turn::Stop => break,
                Turn::Claimed(done) => {
                    claiming = None;
                    self.claimed(done);
                }
                Turn::CheckCancels => self.stop_cancelled(lease.key).await,
                Turn::Other => {}
            }
        }
        finish_claim(&mut claiming).await;
        let me = lease.key;
        drop(lease);
        let given_back = self.abort_all();
        tracing::info!(
            "flyte worker {} leaves the fleet ({given_back} actions given back)",
            me.0
        );
        self.queue.leave(me).await?;
        Ok(())
    }

    /// Starts a claim of what there is room for, unless the queue is dry
    /// or claims are paused after a failure. Room: the free slots and as
    /// many more as the worker gets through in a short while
    /// ([`Pace::ahead`]), less what it holds already; asked only once a
    /// quarter of that is wanted, or nothing is held, so that a wide
    /// worker claims in batches instead of one slot at a time. Never while
    /// every slot is taken: the slots may be held by parents waiting on
    /// children that a claim would hold here, out of other workers' reach.
    fn claim(&mut self, me: WorkerKey) -> Option<Claiming> {
        if self.dry || self.claim_paused_until.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        self.claim_paused_until = None;
        let running = lock(&self.running).len();
        if running >= self.concurrency {
            return None;
        }
        let capacity = self.concurrency + self.pace.ahead(self.concurrency, CLAIM_BATCH);
        let held = running + self.ahead.len();
        let wanted = capacity.saturating_sub(held).min(CLAIM_BATCH);
        if wanted == 0 || (held > 0 && wanted < capacity.div_ceil(4)) {
            return None;
        }
        let queue = Arc::clone(&self.queue);
        Some(tokio::spawn(async move {
            (wanted, queue.claim(me, wanted).await)
        }))
    }

    /// Takes in what a claim returned.
    fn claimed(
        &mut self,
        done: Result<(usize, Result<Vec<Claimed>, StoreError>), tokio::task::JoinError>,
    ) {
        match done {
            Ok((wanted, Ok(claimed))) => {
                self.failed_claims = 0;
                // Less than asked: the queue is empty for this worker
                // until a wake-up.
                self.dry = claimed.len() < wanted;
                self.ahead.extend(claimed);
            }
            Ok((_, Err(e))) => self.claim_failed(&e.to_string()),
            Err(e) => self.claim_failed(&e.to_string()),
        }
    }

    fn claim_failed(&mut self, why: &str) {
        self.failed_claims += 1;
        let pause = CLAIM_RETRY
            .saturating_mul(1 << self.failed_claims.min(6))
            .min(MAX_CLAIM_RETRY);
        tracing::warn!("flyte worker: cannot claim work ({why}); trying again in {pause:?}");
        self.claim_paused_until = Some(Instant::now() + pause);
    }

    /// Starts what was claimed ahead, oldest first, while slots are free.
    fn start_ahead(&mut self, lease: &Arc<LeaseClock>) {
        while lock(&self.running).len() < self.concurrency {
            let Some(claimed) = self.ahead.next() else {
                return;
            };
            self.start(claimed, lease);
        }
    }

    fn start(&mut self, claimed: Claimed, lease: &Arc<LeaseClock>) {
        let key = (claimed.run, claimed.id);
        let claim = claimed.claim;
        let run = self.runs.get(&self.store, &claimed, lease);
        let (queue, running, ended, pace) = (
            Arc::clone(&self.queue),
            Arc::clone(&self.running),
            Arc::clone(&self.ended),
            Arc::clone(&self.pace),
        );
        // Held until the task is registered, so that it cannot end and
        // unregister first.
        let mut guard = lock(&self.running);
        let handle = tokio::spawn(async move {
            let started = Instant::now();
            let done = execute(claimed, run).await;
            pace.ended(started.elapsed());
            // Removed first: a cancel arriving now finds nothing to abort.
            let was_running = {
                let mut running = lock(&running);
                matches!(running.get(&key), Some((c, _)) if *c == claim)
                    && running.remove(&key).is_some()
            };
            // Not begun for a lapsed lease: given back by the rejoin.
            if let (true, Some(done)) = (was_running, done) {
                queue.complete(done);
            }
            ended.notify_one();
        });
        guard.insert(key, (claim, handle.abort_handle()));
    }

    /// Gives back what waited claimed ahead for too long (see
    /// [`super::ahead::HOLD`]).
    async fn give_back_overdue(&mut self, me: WorkerKey) {
        let overdue = self.ahead.overdue();
        if overdue.is_empty() {
            return;
        }
        let n = overdue.len();
        if let Err(e) = self.queue.release(me, overdue).await {
            // Still held under this key: they run again once it leaves or
            // its lease ends.
            tracing::warn!("flyte worker {}: cannot give back {n} actions ({e})", me.0);
        }
    }

    /// After its lease lapsed or was lost (the fleet took it for dead and
    /// runs its actions elsewhere): stops what it runs, gives back what its
    /// old key still holds, and registers again, trying until the database
    /// answers. The old lease is no longer renewed, so even a give-back
    /// that never reaches the database leaves nothing stranded: the old
    /// key's lease runs out and the reaper queues its rows again.
    async fn rejoin(&mut self, old: WorkerKey) -> Lease {
        let stopped = self.abort_all();
        // The views of runs hold the old lease's clock.
        self.runs = Runs::default();
        self.dry = false;
        tracing::warn!(
            "flyte worker {}: its lease lapsed (was it paused, or cut off from the database?); \
             {stopped} actions stopped and given back, registering again",
            old.0
        );
        if let Err(e) = self.queue.leave(old).await {
            tracing::warn!(
                "flyte worker {}: cannot give back what it held yet ({e}); \
                 the fleet queues it again once the old lease ends",
                old.0
            );
        }
        let mut pause = CLAIM_RETRY;
        loop {
            match Lease::register(&self.queue, &self.info).await {
                Ok(lease) => return lease,
                Err(e) => {
                    tracing::warn!(
                        "flyte worker: cannot register again ({e}); trying again in {pause:?}"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_CLAIM_RETRY);
                }
            }
        }
    }

    /// Stops the actions that were cancelled in the fleet, and drops those
    /// claimed ahead.
    async fn stop_cancelled(&mut self, me: WorkerKey) {
        let cancelled = match self.queue.cancelled(me).await {
            Ok(cancelled) => cancelled,
            Err(e) => {
                tracing::warn!("flyte worker: cannot check for cancellations ({e})");
                return;
            }
        };
        if cancelled.is_empty() {
            return;
        }
        self.ahead.drop_cancelled(&cancelled);
        let mut running = lock(&self.running);
        for (run, id, claim) in cancelled {
            if matches!(running.get(&(run, id)), Some((c, _)) if *c == claim) {
                if let Some((_, handle)) = running.remove(&(run, id)) {
                    handle.abort();
                }
            }
        }
        drop(running);
        self.ended.notify_one();
    }

    /// Stops everything running here and forgets what was claimed ahead
    /// (the caller gives back what the key holds); returns how many.
    fn abort_all(&mut self) -> usize {
        let mut running = lock(&self.running);
        let n = running.len();
        for (_, (_, handle)) in running.drain() {
            handle.abort();
        }
        drop(running);
        n + self.ahead.clear()
    }
}

/// Waits for the claim under way, if any, and drops what it took: the
/// caller is about to give back everything its key holds, and a claim
/// that answered after that would leave its rows under a key nobody
/// serves (until the reaper finds them).
async fn finish_claim(claiming: &mut Option<Claiming>) {
    if let Some(claim) = claiming.take() {
        let abort = claim.abort_handle();
        if tokio::time::timeout(LEASE, claim).await.is_err() {
            abort.abort();
        }
    }
}

/// Resolves at `t` (never for `None`).
async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
