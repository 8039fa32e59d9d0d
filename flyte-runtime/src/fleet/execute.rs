//! One claimed action, run on this worker as a local action of the run it
//! belongs to: its retries, time limit and cache as anywhere else, its own
//! calls queued to the fleet again.

use crate::durability::record::Durability;
use crate::execution::action::{Action, Place};
use crate::registry::registry;
use crate::state::context::RunShared;
use flyte_core::backend::RunStore;
use flyte_core::queue::{Claimed, Completion, LeaseClock};
use flyte_core::record::{ActionStatus, AttemptTimes, Origin};
use flyte_core::store::{RunKey, StoreError, MAX_STORED_VALUE};
use flyte_core::{ErrorKind, TaskError};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::SystemTime;

/// The runs this worker takes part in, shared by their actions here while
/// any of them runs.
#[derive(Default)]
pub(crate) struct Runs {
    by_key: HashMap<(RunKey, u32), Weak<RunShared>>,
}

impl Runs {
    /// The worker's view of the run of `claimed`, claimed under `lease`.
    /// (After a rejoin the worker starts a new `Runs`: a run's view holds
    /// the lease its actions were claimed under.)
    pub(crate) fn get(
        &mut self,
        store: &Arc<dyn RunStore>,
        claimed: &Claimed,
        lease: &Arc<LeaseClock>,
    ) -> Arc<RunShared> {
        let key = (claimed.run, claimed.execution);
        if let Some(run) = self.by_key.get(&key).and_then(Weak::upgrade) {
            return run;
        }
        self.by_key.retain(|_, run| run.strong_count() > 0);
        let durability = Durability::attached(Arc::clone(store), claimed.run).in_fleet(
            claimed.execution,
            claimed.no_worker_after,
            Some(Arc::clone(lease)),
        );
        let run = RunShared::with(claimed.run_id.clone(), claimed.run_name.clone(), durability);
        self.by_key.insert(key, Arc::downgrade(&run));
        run
    }
}

/// Runs `claimed` in `run` and says how it ended; `None` when it did not
/// begin because the worker's lease had lapsed (it is not this worker's
/// to complete: the worker gives it back).
pub(crate) async fn execute(claimed: Claimed, run: Arc<RunShared>) -> Option<Completion> {
    let lease = run.durability.fleet().and_then(|fleet| fleet.lease.clone());
    let store = run.durability.recorded_as().map(|(store, _)| store);
    let (result, attempts, origin, began, attempt_times) = run_claimed(&claimed, run).await;
    if let Err(e) = &result {
        // A lapsed lease stays lapsed: this is the refusal of `Action`'s
        // lease check (or a failure while the claim was void anyway).
        if e.kind() == ErrorKind::WorkerLost && lease.is_some_and(|l| !l.is_fresh()) {
            return None;
        }
    }
    let status = ActionStatus::of(&result);
    let (status, output, error) = match result {
        Ok(bytes) if bytes.len() > MAX_STORED_VALUE => {
            // The driver gets an output only through the store: one that
            // does not fit fails the action, clearly, rather than its
            // write failing for as long as it is tried.
            let location = store.map_or_else(|| "the fleet's store".to_owned(), |s| s.location());
            let refused = StoreError::too_large(&claimed.task, bytes.len(), location);
            let error = TaskError::from(refused).into_non_retryable();
            (ActionStatus::Failed, None, Some(error))
        }
        Ok(bytes) => (status, Some(bytes), None),
        Err(e) => (status, None, Some(e)),
    };
    let ended_at = SystemTime::now();
    Some(Completion {
        run: claimed.run,
        id: claimed.id,
        claim: claimed.claim,
        status,
        output,
        error,
        attempts,
        origin,
        // One that never began (cached, cancelled while it waited for a
        // slot) executed for no time.
        started_at: began.unwrap_or(ended_at),
        ended_at,
        attempt_times,
    })
}

/// How a claimed action ran: its result, attempts, origin, when it began
/// and each attempt's times (when it had more than one).
type Ran = (
    Result<Vec<u8>, TaskError>,
    u32,
    Origin,
    Option<SystemTime>,
    Vec<AttemptTimes>,
);

async fn run_claimed(claimed: &Claimed, run: Arc<RunShared>) -> Ran {
    let mut call = match registry().call_bytes(&claimed.task, &claimed.input) {
        Ok(call) => call,
        Err(e) => {
            let e = e.with_task(claimed.task.clone());
            return (Err(e), 1, Origin::Executed, None, Vec::new());
        }
    };
    if let Some(retries) = claimed.retries {
        call = call.retries(retries);
    }
    if let Some(limit) = claimed.timeout {
        call = call.timeout(limit);
    }
    let place = Place::Claimed {
        run,
        id: claimed.id,
        parent: claimed.parent,
        index: claimed.index.map(|i| i as usize),
        group: claimed.group.as_deref().map(Arc::from),
    };
    let action = Action::start(call.def, &call, place);
    let cell = Arc::clone(action.cell());
    let result = action.run_traced(call).await;
    let attempts = cell.attempt.load(Ordering::Relaxed).max(1);
    let attempt_times = match attempts > 1 {
        true => cell.attempt_times(),
        false => Vec::new(),
    };
    (
        result,
        attempts,
        cell.origin(),
        cell.began_at(),
        attempt_times,
    )
}
