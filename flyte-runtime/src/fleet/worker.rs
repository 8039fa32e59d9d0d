//! [`Worker`]: a process of the fleet that claims queued actions and runs
//! them.

use super::execute::{execute, Runs};
use crate::durability::record::{open_postgres, POSTGRES_URL_VAR};
use crate::execution::wait;
use crate::registry::registry;
use flyte_core::queue::{LeaseClock, WorkQueue, WorkerInfo, WorkerKey, HEARTBEAT, LEASE};
use flyte_core::store::{RunKey, RunStore, StoreError};
use flyte_core::sync::lock;
use flyte_core::{ActionId, ErrorKind, TaskError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::MissedTickBehavior;

/// At most this many actions are claimed at once.
const CLAIM_BATCH: usize = 256;
/// How often a worker running actions asks whether any was cancelled.
const CANCEL_CHECK: Duration = Duration::from_millis(200);
/// How long an idle worker waits for a wake-up before it looks anyway.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// The first pause after a failed claim; it doubles up to the next.
const CLAIM_RETRY: Duration = Duration::from_millis(100);
const MAX_CLAIM_RETRY: Duration = Duration::from_secs(5);

/// A worker of the fleet: claims the queued actions whose task this binary
/// has (at the same code version), runs them, and completes them, until
/// Ctrl-C or SIGTERM.
///
/// # Examples
///
/// ```no_run
/// use flyte::prelude::*;
///
/// #[task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() -> Result<(), TaskError> {
///     // Every machine runs this; a driver elsewhere runs with
///     // Runner::new().postgres(url).
///     flyte::fleet::Worker::new("postgres://flyte:flyte@db/flyte")
///         .concurrency(16)
///         .run()
/// }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Worker {
    at: WorkerStore,
    concurrency: usize,
}

#[derive(Debug, Clone)]
enum WorkerStore {
    Url(String),
    FromEnv,
    Given(Arc<dyn RunStore>),
}

impl Worker {
    /// A worker of the fleet whose database is at `url`
    /// (`postgres://user:password@host/db`), running 16 actions at once.
    pub fn new(url: impl Into<String>) -> Worker {
        Worker {
            at: WorkerStore::Url(url.into()),
            concurrency: 16,
        }
    }

    /// A worker of the fleet named by `FLYTE_POSTGRES_URL`.
    pub fn from_env() -> Worker {
        Worker {
            at: WorkerStore::FromEnv,
            concurrency: 16,
        }
    }

    /// A worker of the fleet behind `store` (a store with a work queue).
    pub fn store(store: Arc<dyn RunStore>) -> Worker {
        Worker {
            at: WorkerStore::Given(store),
            concurrency: 16,
        }
    }

    /// How many actions it runs at once (default 16; at least 1). Sync
    /// tasks take a blocking thread each, async tasks share the runtime.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Serves until Ctrl-C or SIGTERM, blocking this thread. On the
    /// signal it stops claiming, gives back what it runs (queued again for
    /// other workers) and leaves the fleet.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] when the database cannot be reached or used;
    /// [`ErrorKind::Config`] when the program has no tasks (the crate
    /// that defines them is not linked) or two tasks share a name;
    /// [`ErrorKind::Runtime`] when called inside async code (use
    /// [`Worker::run_until`]).
    pub fn run(self) -> Result<(), TaskError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(wait::would_block_error("Worker::run"));
        }
        wait::global()?.block_on(self.run_until(shutdown_signal()))
    }

    /// Serves until `stop` resolves, then gives back what it runs and
    /// leaves the fleet.
    ///
    /// # Errors
    ///
    /// As [`Worker::run`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the worker without leaving the fleet: its
    /// actions are queued again when its lease runs out (10 s).
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), TaskError> {
        registry().check()?;
        if registry().is_empty() {
            return Err(TaskError::new(
                ErrorKind::Config,
                "this worker has no tasks: link the crate that defines them \
                 (`use my_tasks as _;` in main.rs)",
            ));
        }
        let store = match &self.at {
            WorkerStore::Url(url) => open_postgres(url)?,
            WorkerStore::FromEnv => match std::env::var(POSTGRES_URL_VAR) {
                Ok(url) if !url.is_empty() => open_postgres(&url)?,
                _ => {
                    return Err(TaskError::new(
                        ErrorKind::Config,
                        format!(
                            "{POSTGRES_URL_VAR} is not set: set it to the fleet's database \
                             (postgres://user:password@host/db)"
                        ),
                    ))
                }
            },
            WorkerStore::Given(store) => Arc::clone(store),
        };
        let queue = store.queue().ok_or_else(|| {
            TaskError::from(StoreError::Unsupported {
                operation: "a work queue (fleet workers need the PostgreSQL store)",
                store: store.location(),
            })
        })?;
        Serving::new(store, queue, self.concurrency)
            .serve(stop)
            .await
    }
}

/// The actions running on a worker, with their claim and how to stop them.
type Running = HashMap<(RunKey, ActionId), (u32, AbortHandle)>;

/// What one worker holds while it serves.
struct Serving {
    store: Arc<dyn RunStore>,
    queue: Arc<dyn WorkQueue>,
    concurrency: usize,
    info: WorkerInfo,
    /// Actions running here, with their claim and how to stop them.
    running: Arc<Mutex<Running>>,
    /// Signalled when an action ends here: there is room to claim.
    ended: Arc<Notify>,
    runs: Runs,
    /// Claims that failed in a row: the next waits longer (a database
    /// that is away is not asked several times a second).
    failed_claims: u32,
    /// No claim before this, after a failed one; the lease and
    /// cancellations go on meanwhile.
    claim_paused_until: Option<Instant>,
}

impl Serving {
    fn new(store: Arc<dyn RunStore>, queue: Arc<dyn WorkQueue>, concurrency: usize) -> Serving {
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
            ended: Arc::default(),
            runs: Runs::default(),
            failed_claims: 0,
            claim_paused_until: None,
        }
    }

    async fn serve(mut self, stop: impl Future<Output = ()>) -> Result<(), TaskError> {
        let mut lease = Lease::register(&self.queue, &self.info).await?;
        let mut me = lease.key;
        tracing::info!(
            "flyte worker {} serves {} tasks from {} ({} at once)",
            me.0,
            self.info.tasks.len(),
            self.store.location(),
            self.concurrency
        );
        let mut cancel_check = tokio::time::interval(CANCEL_CHECK);
        tokio::pin!(stop);
        loop {
            // A lease that lapsed (the worker was paused, or cut off from
            // the database, past its length) or was lost: nothing claimed
            // under it may start or stay; give it all back and register
            // again, before anything else.
            if !lease.clock.is_fresh() {
                lease = tokio::select! {
                    biased;
                    () = &mut stop => break,
                    rejoined = self.rejoin(me) => rejoined,
                };
                me = lease.key;
            }
            // One claim per turn, then the lease and cancellations before
            // anything else.
            let more_queued = self.claim(&lease).await;
            let room = self.room();
            let busy = !lock(&self.running).is_empty();
            let ended = Arc::clone(&self.ended);
            let queue = Arc::clone(&self.queue);
            tokio::select! {
                biased;
                () = &mut stop => break,
                _ = &mut lease.lost => {}
                _ = cancel_check.tick(), if busy => self.stop_cancelled(me).await,
                () = std::future::ready(()), if room > 0 && more_queued => {}
                () = queue.work_hint(IDLE_POLL), if room > 0 => {}
                () = ended.notified(), if room == 0 => {}
            }
        }
        drop(lease);
        let given_back = self.abort_all();
        tracing::info!(
            "flyte worker {} leaves the fleet ({given_back} actions given back)",
            me.0
        );
        self.queue.leave(me).await?;
        Ok(())
    }

    /// How many actions to claim now: none until a quarter of the slots
    /// (at least one) are free, or nothing runs, so that a wide worker
    /// claims in batches instead of one slot at a time.
    fn room(&self) -> usize {
        let running = lock(&self.running).len();
        let free = self.concurrency.saturating_sub(running);
        if running == 0 || free >= self.concurrency.div_ceil(4) {
            free
        } else {
            0
        }
    }

    /// Claims what there is room for, and starts it; `true` when it got
    /// all it asked for (more is likely queued).
    async fn claim(&mut self, lease: &Lease) -> bool {
        let room = self.room();
        if room == 0 || self.claim_paused_until.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let wanted = room.min(CLAIM_BATCH);
        let claimed = match self.queue.claim(lease.key, wanted).await {
            Ok(claimed) => {
                self.failed_claims = 0;
                self.claim_paused_until = None;
                claimed
            }
            Err(e) => {
                self.failed_claims += 1;
                let pause = CLAIM_RETRY
                    .saturating_mul(1 << self.failed_claims.min(6))
                    .min(MAX_CLAIM_RETRY);
                tracing::warn!("flyte worker: cannot claim work ({e}); trying again in {pause:?}");
                self.claim_paused_until = Some(Instant::now() + pause);
                return false;
            }
        };
        let full = claimed.len() == wanted;
        for action in claimed {
            self.start(action, &lease.clock);
        }
        full
    }

    fn start(&mut self, claimed: flyte_core::queue::Claimed, lease: &Arc<LeaseClock>) {
        let key = (claimed.run, claimed.id);
        let claim = claimed.claim;
        let run = self.runs.get(&self.store, &claimed, lease);
        let (queue, running, ended) = (
            Arc::clone(&self.queue),
            Arc::clone(&self.running),
            Arc::clone(&self.ended),
        );
        // Held until the task is registered, so that it cannot end and
        // unregister first.
        let mut guard = lock(&self.running);
        let handle = tokio::spawn(async move {
            let done = execute(claimed, run).await;
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

    /// Stops the actions that were cancelled in the fleet.
    async fn stop_cancelled(&self, me: WorkerKey) {
        let cancelled = match self.queue.cancelled(me).await {
            Ok(cancelled) => cancelled,
            Err(e) => {
                tracing::warn!("flyte worker: cannot check for cancellations ({e})");
                return;
            }
        };
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

    /// Stops everything running here; returns how many.
    fn abort_all(&self) -> usize {
        let mut running = lock(&self.running);
        let n = running.len();
        for (_, (_, handle)) in running.drain() {
            handle.abort();
        }
        n
    }
}

/// A worker's lease under one key, renewed every [`HEARTBEAT`] by a task
/// of its own, so that nothing the worker waits for (a slow claim, a busy
/// runtime) can delay it. `clock` says whether it still holds (bodies
/// claimed under it begin only while it does); `lost` resolves when the
/// fleet took the worker for dead. Dropping it stops the renewals.
struct Lease {
    key: WorkerKey,
    clock: Arc<LeaseClock>,
    renewals: JoinHandle<()>,
    lost: oneshot::Receiver<()>,
}

impl Lease {
    /// Enters the worker in the fleet, with a fresh lease that is kept.
    async fn register(queue: &Arc<dyn WorkQueue>, info: &WorkerInfo) -> Result<Lease, StoreError> {
        let sent_at = Instant::now();
        let key = queue.register(info.clone()).await?;
        let clock = Arc::new(LeaseClock::granted(sent_at));
        let (tell, lost) = oneshot::channel();
        let renewals = tokio::spawn(renew(Arc::clone(queue), key, Arc::clone(&clock), tell));
        Ok(Lease {
            key,
            clock,
            renewals,
            lost,
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewals.abort();
    }
}

/// Renews `me`'s lease until it is found lost; warns when renewals fail or
/// come late (an overloaded machine or database is about to lose it).
async fn renew(
    queue: Arc<dyn WorkQueue>,
    me: WorkerKey,
    clock: Arc<LeaseClock>,
    lost: oneshot::Sender<()>,
) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut renewed = Instant::now();
    loop {
        tick.tick().await;
        let since = renewed.elapsed();
        if since > LEASE / 2 {
            tracing::warn!(
                "flyte worker {}: its lease was last renewed {since:.1?} ago and lasts {LEASE:?}: \
                 is the machine or the database overloaded?",
                me.0
            );
        }
        let sent_at = Instant::now();
        match queue.heartbeat(me).await {
            Ok(true) => {
                renewed = sent_at;
                clock.renewed(sent_at);
            }
            Ok(false) => {
                clock.lost();
                let _ = lost.send(());
                return;
            }
            Err(e) => tracing::warn!("flyte worker {}: cannot renew its lease ({e})", me.0),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
