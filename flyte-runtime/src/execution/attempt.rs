//! One attempt of a task's body: an async body polled in place under its
//! time limit, a sync body on the pool or in its map's lane; a panic becomes
//! an error of kind `Panic`, an expired limit one of kind `Timeout`.

use crate::policies::cancel::CancelSignal;
use crate::state::context::{Scope, ScopeData};
use crate::state::tree::{ActionCell, FanOutCell};
use crate::task::body::ExecutionKind;
use crate::threads::lane::Lane;
use flyte_core::queue::LeaseClock;
use flyte_core::{panic_message, ErrorKind, TaskError};
use futures_util::FutureExt;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

fn timeout_error(limit: Duration) -> TaskError {
    TaskError::new(
        ErrorKind::Timeout,
        format!("timed out after {}", humanize(limit)),
    )
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Why a claimed action's attempt did not begin: its worker's lease had
/// lapsed. Such an outcome is not the action's: the worker gives the
/// action back instead of completing it.
const LEASE_LAPSED: &str =
    "this worker's lease had lapsed (was it paused?): the fleet runs it elsewhere";

/// The refusal of an attempt under a lapsed lease.
pub(crate) fn lease_lapsed() -> TaskError {
    TaskError::new(ErrorKind::WorkerLost, LEASE_LAPSED).into_non_retryable()
}

fn panic_error(payload: &(dyn std::any::Any + Send)) -> TaskError {
    TaskError::new(ErrorKind::Panic, panic_message(payload))
}

/// A map item's sync attempt, run in its map's lane.
#[derive(Clone, Copy)]
pub(crate) struct InLane<'a> {
    pub(crate) lane: &'a Arc<Lane>,
    /// Whether a retryable failure of this attempt is retried: then it is
    /// not the map's failure, and the lane's thread goes on (see `lane.rs`).
    pub(crate) retries_left: bool,
}

/// One attempt: an async body polled here, a sync body on a blocking thread.
///
/// The action's cell is told when the body begins (for its times), and
/// `watched`, the fan-out of an item a progress display watches, when it
/// begins and ends (its count of items executing now). `at_once`: an async
/// body that begins in the poll that made its action (see `Executing`).
///
/// `lease`: on a worker, the lease a claimed action runs under. The caller
/// checked it; a sync body is checked again on its thread, just before it
/// begins, because it may wait there for a thread (the pool's or its
/// lane's) while the worker is paused past its lease: it must not begin
/// once another worker may have run it. An async body is polled right
/// after the caller's check.
pub(crate) async fn run<T: Send + 'static>(
    execution: ExecutionKind<T>,
    scope: &Scope,
    timeout: Option<Duration>,
    lane: Option<InLane<'_>>,
    lease: Option<Arc<LeaseClock>>,
    watched: Option<Arc<FanOutCell>>,
    at_once: bool,
) -> Result<T, TaskError> {
    match execution {
        ExecutionKind::Async(fut) => {
            // At the deadline the future is dropped: the task stops at its
            // current `.await`, and its children are cancelled with it.
            let guarded = scope.clone().enter(AssertUnwindSafe(fut).catch_unwind());
            if !scope.action.timed && watched.is_none() {
                // Nothing to mark (a run nobody watches): the body alone.
                let caught = match timeout {
                    Some(limit) => Box::pin(tokio::time::timeout(limit, guarded))
                        .await
                        .map_err(|_| timeout_error(limit))?,
                    None => guarded.await,
                };
                return caught.unwrap_or_else(|payload| Err(panic_error(&*payload)));
            }
            let executing = Executing::begin(&*scope.action, watched, at_once);
            let caught = match timeout {
                Some(limit) => Box::pin(tokio::time::timeout(limit, guarded))
                    .await
                    .map_err(|_| timeout_error(limit)),
                None => Ok(guarded.await),
            };
            drop(executing);
            caught?.unwrap_or_else(|payload| Err(panic_error(&*payload)))
        }
        ExecutionKind::Blocking(run) => {
            let attempt_cancel = Arc::new(CancelSignal::default());
            let thread_scope = Scope::new(ScopeData {
                attempt_cancel: Some(Arc::clone(&attempt_cancel)),
                ..ScopeData::clone(scope)
            });
            let runtime = tokio::runtime::Handle::current();
            let work = move || {
                if lease.is_some_and(|lease| !lease.is_fresh()) {
                    return Ok(Err(lease_lapsed()));
                }
                // Until the thread is done with it (a body that timed out
                // goes on executing on its thread).
                // (No guard, and no clone of the cell, when nobody reads it.)
                let _executing = (thread_scope.action.timed || watched.is_some())
                    .then(|| Executing::begin(Arc::clone(&thread_scope.action), watched, false));
                // The task may `.wait()` on children: it needs the runtime.
                let _runtime = runtime.enter();
                std::panic::catch_unwind(AssertUnwindSafe(|| thread_scope.enter_sync(run)))
            };
            let joined = match lane {
                Some(lane) => in_lane(lane, work, timeout).await,
                None => on_pool(work, timeout).await,
            };
            // At the deadline the caller gets the timeout; the thread cannot
            // be stopped, so it is told (`is_cancelled`, and any `.wait()` it
            // is in returns `Cancelled`) and its late result is dropped.
            match joined {
                Ok(Some(Ok(result))) => result,
                Ok(Some(Err(payload))) => Err(panic_error(&*payload)),
                // The job was dropped unrun: the pool is gone (process exit).
                Ok(None) => Err(TaskError::cancelled()),
                Err(Elapsed(limit)) => {
                    // The attempt ends here, though its thread goes on.
                    scope.action.attempt_ended(scope.action.attempt_mark());
                    attempt_cancel.cancel();
                    Err(timeout_error(limit))
                }
            }
        }
    }
}

/// A body executing now: its action's cell knows when it began and ended
/// (on the thread that ran it), and the fan-out a display watches counts
/// it while it executes.
struct Executing<C: Deref<Target = ActionCell>> {
    cell: C,
    mark: u64,
    watched: Option<Arc<FanOutCell>>,
}

impl<C: Deref<Target = ActionCell>> Executing<C> {
    /// `at_once`: it begins in the poll that made its action, whose
    /// queued time is then its start (one clock read fewer per action).
    fn begin(cell: C, watched: Option<Arc<FanOutCell>>, at_once: bool) -> Executing<C> {
        let mark = match (cell.timed, at_once) {
            (false, _) => 0,
            (true, true) => cell.attempt_began_at_queued(),
            (true, false) => cell.attempt_began(),
        };
        if let Some(fan_out) = &watched {
            fan_out.item_began();
        }
        Executing {
            cell,
            mark,
            watched,
        }
    }
}

impl<C: Deref<Target = ActionCell>> Drop for Executing<C> {
    fn drop(&mut self) {
        if self.mark != 0 {
            self.cell.attempt_ended(self.mark);
        }
        if let Some(fan_out) = &self.watched {
            fan_out.item_paused();
        }
    }
}

/// What a sync attempt's thread returns: the task's result, or its panic.
type Caught<T> = std::thread::Result<Result<T, TaskError>>;

/// A sync attempt that ran past its time limit.
struct Elapsed(Duration);

fn no_thread(e: &std::io::Error) -> TaskError {
    TaskError::new(
        ErrorKind::Runtime,
        format!("cannot start a thread for a sync task: {e}"),
    )
}

/// Runs `work` on a pool thread; `None` if it was dropped unrun.
async fn on_pool<T: Send + 'static>(
    work: impl FnOnce() -> Caught<T> + Send + 'static,
    timeout: Option<Duration>,
) -> Result<Option<Caught<T>>, Elapsed> {
    let (send, handle) = tokio::sync::oneshot::channel();
    let job = Box::new(move || {
        if !send.is_closed() {
            // The caller may have stopped waiting meanwhile (timeout, cancel).
            let _ = send.send(work());
        }
    });
    if let Err(e) = crate::threads::sync_pool::submit(job) {
        return Ok(Some(Ok(Err(no_thread(&e)))));
    }
    match timeout {
        Some(limit) => match Box::pin(tokio::time::timeout(limit, handle)).await {
            Ok(joined) => Ok(joined.ok()),
            Err(_) => Err(Elapsed(limit)),
        },
        None => Ok(handle.await.ok()),
    }
}

/// Runs `work` in a map's lane: it may wait there before it starts, and its
/// time limit counts from when it does.
async fn in_lane<T: Send + 'static>(
    InLane { lane, retries_left }: InLane<'_>,
    work: impl FnOnce() -> Caught<T> + Send + 'static,
    timeout: Option<Duration>,
) -> Result<Option<Caught<T>>, Elapsed> {
    let (send, handle) = crate::threads::lane::handoff(lane);
    let (started, start) = match timeout {
        Some(_) => {
            let (started, start) = tokio::sync::oneshot::channel();
            (Some(started), Some(start))
        }
        None => (None, None),
    };
    // Returns whether the lane's thread goes on: a thread whose item failed
    // for good leaves the next one to the map's decision; one whose attempt
    // will be retried does not (the map hears of no failure, and the retry
    // waits in the lane like any item).
    let job = Box::new(move || {
        if send.is_closed() {
            return true; // cancelled before it started
        }
        if let Some(started) = started {
            let _ = started.send(());
        }
        let out = work();
        let (succeeded, item_failed) = match &out {
            Ok(Ok(_)) => (true, false),
            Ok(Err(e)) => (false, !(retries_left && e.is_retryable())),
            Err(_panic) => (false, !retries_left),
        };
        send.send(out, !succeeded);
        !item_failed
    });
    if let Err(e) = lane.submit(job) {
        return Ok(Some(Ok(Err(no_thread(&e)))));
    }
    match (timeout, start) {
        (Some(limit), Some(start)) => {
            if start.await.is_err() {
                return Ok(None); // dropped unrun
            }
            match Box::pin(tokio::time::timeout(limit, handle)).await {
                Ok(joined) => Ok(joined.ok()),
                Err(_) => Err(Elapsed(limit)),
            }
        }
        _ => Ok(handle.await.ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::context::{RunRef, RunShared};
    use crate::state::tree::ActionCell;
    use crate::threads::lane::Lane;
    use flyte_core::queue::{LEASE, LEASE_MARGIN};
    use flyte_core::ActionId;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    fn scope() -> Scope {
        Scope::new(ScopeData {
            run: RunRef::Run(RunShared::new(None)),
            action: Arc::new(ActionCell::new(ActionId(1), "demo.t", None, false)),
            group: None,
            slot: None,
            attempt_cancel: None,
        })
    }

    /// A worker paused while a claimed sync body waited for its thread:
    /// the body must not begin once the lease has lapsed, although the
    /// lease held when the attempt was admitted.
    #[tokio::test]
    async fn a_sync_body_that_waited_for_its_thread_past_the_lease_does_not_begin() {
        let lane = Lane::new(1);
        let (release, held) = std::sync::mpsc::channel::<()>();
        lane.submit(Box::new(move || {
            let _ = held.recv_timeout(Duration::from_secs(10));
            true
        }))
        .unwrap();
        // Granted long enough ago that it holds for 300 ms more.
        let Some(sent) =
            Instant::now().checked_sub(LEASE - LEASE_MARGIN - Duration::from_millis(300))
        else {
            return;
        };
        let lease = Arc::new(LeaseClock::granted(sent));
        assert!(lease.is_fresh());
        let began = Arc::new(AtomicBool::new(false));
        let body = {
            let began = Arc::clone(&began);
            ExecutionKind::Blocking(Box::new(move || {
                began.store(true, Ordering::SeqCst);
                Ok(1)
            }))
        };
        let scope = scope();
        let in_lane = InLane {
            lane: &lane,
            retries_left: false,
        };
        let attempt = run(
            body,
            &scope,
            None,
            Some(in_lane),
            Some(Arc::clone(&lease)),
            None,
            false,
        );
        let freed = async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            assert!(!lease.is_fresh());
            release.send(()).unwrap();
        };
        let (result, ()) = tokio::join!(attempt, freed);
        let e = result.expect_err("a body under a lapsed lease ran");
        assert_eq!(e.kind(), ErrorKind::WorkerLost);
        assert!(!began.load(Ordering::SeqCst), "the body began");
    }

    #[tokio::test]
    async fn a_sync_body_under_a_fresh_lease_runs() {
        let lease = Arc::new(LeaseClock::granted(Instant::now()));
        let body = ExecutionKind::Blocking(Box::new(|| Ok(7)));
        let scope = scope();
        assert_eq!(
            run(body, &scope, None, None, Some(lease), None, false)
                .await
                .unwrap(),
            7
        );
    }
}
