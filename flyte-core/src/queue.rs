//! The work queue of a fleet: how actions are handed to worker processes
//! and their outcomes handed back.
//!
//! A store that can spread a run over many processes (`flyte-postgres`)
//! gives a [`WorkQueue`] from [`RunStore::queue`](crate::backend::RunStore::queue).
//! The runtime then **submits** every call a task makes instead of running
//! it in-process; a worker **claims** what it can run (by task name and code
//! version), runs it through the registry, and **completes** it. The action
//! rows are the queue: a completed action is its own record.
//!
//! # Guarantees a queue keeps
//!
//! - Submitting an action id twice is one action: the second submitter
//!   waits for the same outcome (a parent run again after its worker died
//!   finds the children that already ended).
//! - Every change of a claimed action is guarded by its claim number, so a
//!   worker that lost its lease changes nothing when it completes late.
//! - A worker holds a lease it renews ([`WorkQueue::heartbeat`]); the
//!   actions of a worker whose lease ran out are queued again, and an action
//!   that outlived [`MAX_DEATHS`] workers fails for good.

use crate::record::{ActionStatus, AttemptTimes, Origin};
use crate::store::{RunKey, StoreError, StoreFuture};
use crate::sync::lock;
use crate::{ActionId, TaskError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How many workers may die running one action before it fails for good
/// (a poison task: it kills whoever runs it).
pub const MAX_DEATHS: u32 = 3;

/// How often a worker renews its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// How long a lease lasts without renewal: a worker silent this long is
/// dead, and its actions are queued again.
pub const LEASE: Duration = Duration::from_secs(10);

/// How much of a lease a worker does not count on: its clock and the
/// database's may disagree by a little, and a body must not begin in the
/// last moment of a lease that is about to be taken away.
pub const LEASE_MARGIN: Duration = Duration::from_secs(1);

/// A worker's own view of one lease: until when it can count on holding
/// what it claimed. Renewals move it forward from the moment they were
/// *sent* (the database's lease starts no earlier), so the view never
/// runs past the database's.
///
/// A lapsed lease stays lapsed, even if a late renewal gets through: the
/// worker may already have refused to start bodies under it, so it gives
/// back everything it claimed and registers again, with a new clock.
///
/// A worker starts no body once its lease has lapsed: one paused past its
/// lease (SIGSTOP, a frozen VM, a long GC) has had its claims given to
/// other workers, and on waking it must not run them a second time.
#[derive(Debug)]
pub struct LeaseClock {
    /// Until when the lease holds; `None`: lapsed or lost, for good.
    fresh_until: Mutex<Option<Until>>,
}

/// A moment on two clocks: the monotonic one, and the wall clock, which
/// (unlike the monotonic clock on Linux) goes on while the machine is
/// suspended. The lease is over when either says so: a worker woken from
/// a suspended VM must not take its lease for fresh.
#[derive(Debug, Clone, Copy)]
struct Until {
    monotonic: Instant,
    wall: SystemTime,
}

impl Until {
    /// The end of a lease granted or renewed by a request sent at `sent_at`.
    fn lease_from(sent_at: Instant) -> Until {
        let length = LEASE - LEASE_MARGIN;
        let now = SystemTime::now();
        let sent_wall = now.checked_sub(sent_at.elapsed()).unwrap_or(now);
        Until {
            monotonic: sent_at + length,
            wall: sent_wall + length,
        }
    }

    fn has_passed(&self) -> bool {
        Instant::now() >= self.monotonic || SystemTime::now() >= self.wall
    }
}

impl LeaseClock {
    /// The clock of a lease granted by a request sent at `sent_at`.
    pub fn granted(sent_at: Instant) -> LeaseClock {
        LeaseClock {
            fresh_until: Mutex::new(Some(Until::lease_from(sent_at))),
        }
    }

    /// The lease was renewed by a request sent at `sent_at`: it holds until
    /// [`LEASE`] after that, less [`LEASE_MARGIN`]. A late answer to an
    /// older renewal does not shorten it, and a lapsed lease stays lapsed.
    pub fn renewed(&self, sent_at: Instant) {
        let until = Until::lease_from(sent_at);
        let mut fresh_until = lock(&self.fresh_until);
        match *fresh_until {
            Some(t) if t.has_passed() => *fresh_until = None,
            Some(t) if t.monotonic < until.monotonic => *fresh_until = Some(until),
            _ => {}
        }
    }

    /// The lease is gone (the fleet took the worker for dead).
    pub fn lost(&self) {
        *lock(&self.fresh_until) = None;
    }

    /// Whether the lease still holds now; once it does not, never again.
    pub fn is_fresh(&self) -> bool {
        let mut fresh_until = lock(&self.fresh_until);
        match *fresh_until {
            Some(t) if !t.has_passed() => true,
            Some(_) => {
                *fresh_until = None;
                false
            }
            None => false,
        }
    }
}

/// One action to run somewhere in the fleet.
#[derive(Debug, Clone)]
pub struct Submit {
    /// The run.
    pub run: RunKey,
    /// The execution of the run submitting it (a resumed run has more than
    /// one): an action that failed in an earlier execution runs again.
    pub execution: u32,
    /// Its deterministic id.
    pub id: ActionId,
    /// The action that calls it.
    pub parent: Option<ActionId>,
    /// The fan-out and index, for a `map`/`gather` item.
    pub item: Option<(ActionId, u64)>,
    /// The task's name.
    pub task: &'static str,
    /// The task's code version: only a worker built from the same code runs it.
    pub version: &'static str,
    /// The group label.
    pub group: Option<Arc<str>>,
    /// The inputs, encoded as the registry reads them.
    pub input: Vec<u8>,
    /// The call's own retries and time limit (`.retries(n)`, `.timeout(d)`),
    /// when it overrides the task's.
    pub retries: Option<u32>,
    /// See `retries`.
    pub timeout: Option<Duration>,
    /// Its environment, and the environment's concurrency (0: unbounded),
    /// which holds across the fleet.
    pub env: &'static str,
    /// See `env`.
    pub env_concurrency: u32,
    /// The environment's rate limit, which holds across the fleet (counted
    /// by the actions claimed in the last window).
    pub env_rate: Option<crate::RateLimit>,
    /// How long it may wait queued while no live worker can run it, before
    /// it fails with [`ErrorKind::NoWorker`](crate::ErrorKind::NoWorker).
    pub no_worker_after: Duration,
}

/// How a submitted action ended.
#[derive(Debug, Clone)]
pub struct Settled {
    /// Succeeded, failed or cancelled.
    pub status: ActionStatus,
    /// The encoded output, when it succeeded.
    pub output: Option<Vec<u8>>,
    /// The error, when it did not.
    pub error: Option<TaskError>,
    /// Attempts made.
    pub attempts: u32,
    /// Executed, cached, or replayed (it ended in an earlier execution).
    pub origin: Origin,
}

/// An action a worker claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The run.
    pub run: RunKey,
    /// The run's id and name (for `flyte::current()`).
    pub run_id: String,
    /// See `run_id`.
    pub run_name: Option<String>,
    /// The execution that submitted it.
    pub execution: u32,
    /// Its id.
    pub id: ActionId,
    /// The action that calls it.
    pub parent: Option<ActionId>,
    /// Its index, when it is a fan-out item.
    pub index: Option<u64>,
    /// The task's name.
    pub task: String,
    /// The group label.
    pub group: Option<String>,
    /// The inputs.
    pub input: Vec<u8>,
    /// The call's own retries, when it overrides the task's.
    pub retries: Option<u32>,
    /// The call's own time limit, when it overrides the task's.
    pub timeout: Option<Duration>,
    /// How long the calls it makes may wait for a worker (the driver's
    /// setting, passed down).
    pub no_worker_after: Duration,
    /// The claim's number: the guard of [`WorkQueue::complete`].
    pub claim: u32,
}

/// How a claimed action ended, for [`WorkQueue::complete`].
#[derive(Debug, Clone)]
pub struct Completion {
    /// The run.
    pub run: RunKey,
    /// The action.
    pub id: ActionId,
    /// The claim it ends (a later claim makes this one a no-op).
    pub claim: u32,
    /// Succeeded, failed or cancelled.
    pub status: ActionStatus,
    /// The encoded output.
    pub output: Option<Vec<u8>>,
    /// The error.
    pub error: Option<TaskError>,
    /// Attempts made.
    pub attempts: u32,
    /// Executed or cached.
    pub origin: Origin,
    /// When its first attempt's body began (its end, when it never began).
    pub started_at: SystemTime,
    /// When it ended.
    pub ended_at: SystemTime,
    /// Each attempt's times, when it had more than one.
    pub attempt_times: Vec<AttemptTimes>,
}

/// A worker as the fleet knows it (the queue adds its machine and process).
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// How many actions it runs at once.
    pub concurrency: u32,
    /// The tasks it can run: `(name, code version)`.
    pub tasks: Vec<(String, String)>,
}

/// One claim of one action: its run, its id and the claim's number.
pub type ClaimOf = (RunKey, ActionId, u32);

/// A registered worker's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkerKey(pub i64);

/// A fleet's queue. See the [module docs](self).
pub trait WorkQueue: std::fmt::Debug + Send + Sync + 'static {
    /// Queues `action` (or joins it, when it is queued already) and resolves
    /// when it has ended, however long that takes.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it resolves cancels the action wherever
    /// it runs.
    fn submit(&self, action: Submit) -> StoreFuture<'static, Result<Settled, StoreError>>;

    /// Enters a worker in the fleet, with a fresh lease.
    fn register(&self, worker: WorkerInfo) -> StoreFuture<'_, Result<WorkerKey, StoreError>>;

    /// Claims at most `max` queued actions that `worker` can run, at once
    /// (empty when there are none).
    fn claim(
        &self,
        worker: WorkerKey,
        max: usize,
    ) -> StoreFuture<'_, Result<Vec<Claimed>, StoreError>>;

    /// Resolves when new work may be queued, or after `timeout`: a hint,
    /// not a promise.
    fn work_hint(&self, timeout: Duration) -> StoreFuture<'_, ()>;

    /// Completes a claimed action. Queues and returns; completions are
    /// written in batches. A completion whose claim is no longer current
    /// changes nothing.
    fn complete(&self, done: Completion);

    /// Renews `worker`'s lease and queues again the actions of workers whose
    /// lease ran out. `Ok(false)`: the lease was lost (the worker was taken
    /// for dead): its claims are void, and it must register again.
    fn heartbeat(&self, worker: WorkerKey) -> StoreFuture<'_, Result<bool, StoreError>>;

    /// Claims of `worker` that were cancelled (cheaper than a heartbeat:
    /// asked several times a second while it runs actions).
    fn cancelled(&self, worker: WorkerKey) -> StoreFuture<'_, Result<Vec<ClaimOf>, StoreError>>;

    /// Queues again actions `worker` claimed and did not start (it claims
    /// ahead of its free slots, and gives back what waited too long). A
    /// claim that is no longer current (the action ended, or was taken
    /// from the worker) is left as it is.
    fn release(
        &self,
        worker: WorkerKey,
        claims: Vec<ClaimOf>,
    ) -> StoreFuture<'_, Result<(), StoreError>>;

    /// Takes `worker` out of the fleet after its completions are written;
    /// what it still held is queued again.
    fn leave(&self, worker: WorkerKey) -> StoreFuture<'_, Result<(), StoreError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_from_its_grant_for_its_length_less_the_margin() {
        assert!(LeaseClock::granted(Instant::now()).is_fresh());
        // Granted by a request sent longer ago than the lease lasts: a
        // worker paused since then holds nothing.
        let Some(long_ago) = Instant::now().checked_sub(LEASE - LEASE_MARGIN) else {
            return; // a clock younger than a lease: nothing to check
        };
        assert!(!LeaseClock::granted(long_ago).is_fresh());
    }

    #[test]
    fn a_lease_is_over_when_the_wall_clock_says_so_too() {
        // The monotonic clock stood still (a suspended machine) while the
        // wall clock went past the lease.
        let clock = LeaseClock::granted(Instant::now());
        if let Some(t) = lock(&clock.fresh_until).as_mut() {
            t.wall = SystemTime::now() - Duration::from_millis(1);
        }
        assert!(!clock.is_fresh());
    }

    #[test]
    fn a_lapsed_lease_stays_lapsed_and_a_late_answer_does_not_shorten_one() {
        let Some(long_ago) = Instant::now().checked_sub(LEASE) else {
            return;
        };
        let clock = LeaseClock::granted(Instant::now());
        clock.renewed(long_ago);
        assert!(clock.is_fresh(), "an old renewal's late answer");
        clock.lost();
        clock.renewed(Instant::now());
        assert!(!clock.is_fresh(), "lost is lost");
        let lapsed = LeaseClock::granted(long_ago);
        assert!(!lapsed.is_fresh());
        lapsed.renewed(Instant::now());
        assert!(!lapsed.is_fresh(), "a renewal that got through too late");
    }
}
