//! Running one action: its id, its attempts, panics and timeouts, and its
//! record in the run's tree.

use crate::call::{ExecutionKind, TaskCall};
use crate::context::{RunShared, Scope};
use crate::tree::{ActionCell, ActionStatus, FanOutCell};
use flyte_core::{panic_message, ActionId, ErrorKind, TaskDef, TaskError};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Where a new action sits in the run tree.
pub(crate) enum Place {
    /// The root of a run.
    Root(Arc<RunShared>),
    /// Awaited directly by the action of `Scope`.
    Direct(Scope),
    /// Item `index` of a `map` or `gather` run by the action of `parent`.
    Item {
        parent: Scope,
        fan_out: Arc<FanOutCell>,
        index: usize,
    },
}

/// Runs `call` as a new action at `place`.
pub(crate) async fn run_action<T: Send + 'static>(
    call: TaskCall<T>,
    place: Place,
) -> Result<T, TaskError> {
    let action = Action::start(call.def, &call, place);
    action.run(call).await
}

/// A started action. Dropping it before [`Action::run`] ends records the
/// action as cancelled.
pub(crate) struct Action {
    scope: Scope,
    fan_out: Option<(Arc<FanOutCell>, usize)>,
    max_attempts: u32,
    finished: bool,
}

impl Action {
    pub(crate) fn start<T: 'static>(
        def: &'static TaskDef,
        call: &TaskCall<T>,
        place: Place,
    ) -> Action {
        let task = def.name();
        let input = call.body.input_hash();
        let (run, id, group, parent_cell, fan_out) = match place {
            Place::Root(run) => (run, ActionId::root(task, input), None, None, None),
            Place::Direct(parent) => {
                // The TaskDef's address tells tasks apart without hashing the name.
                let seq = parent
                    .action
                    .next_seq(def as *const TaskDef as usize, input.0);
                let id = ActionId::child(parent.action.id, task, input, seq);
                (parent.run, id, parent.group, Some(parent.action), None)
            }
            Place::Item {
                parent,
                fan_out,
                index,
            } => {
                let id = ActionId::child(fan_out.id, task, input, index as u64);
                fan_out.item_started();
                (parent.run, id, parent.group, None, Some((fan_out, index)))
            }
        };
        let cell = Arc::new(ActionCell::new(id, task, group));
        if let Some(parent) = parent_cell {
            parent.add_child(Arc::clone(&cell));
        }
        run.action_started();
        Action {
            // A task's own children start outside any group.
            scope: Scope {
                run,
                action: cell,
                group: None,
            },
            fan_out,
            max_attempts: def.retries_for(call.retries).saturating_add(1),
            finished: false,
        }
    }

    pub(crate) fn cell(&self) -> &Arc<ActionCell> {
        &self.scope.action
    }

    /// Runs every attempt allowed, then records the outcome.
    pub(crate) async fn run<T: Send + 'static>(
        mut self,
        call: TaskCall<T>,
    ) -> Result<T, TaskError> {
        let timeout = call.def.timeout_for(call.timeout);
        let mut body = call.body;
        let mut attempt = 1;
        let result = loop {
            self.scope.action.attempt.store(attempt, Ordering::Relaxed);
            // Another attempt needs the inputs again: copy them first.
            let spare = (attempt < self.max_attempts).then(|| body.duplicate());
            let result = run_attempt(body.execute().into_kind(), &self.scope, timeout).await;
            match (result, spare) {
                (Err(e), Some(Ok(next))) if is_retryable(&e) => {
                    body = next;
                    attempt += 1;
                }
                (Err(e), Some(Err(copy_error))) if is_retryable(&e) => {
                    let why = format!(
                        "{} (not retried: the inputs could not be copied for another attempt: {})",
                        e.message(),
                        copy_error.message()
                    );
                    break Err(TaskError::new(e.kind(), why));
                }
                (result, _) => break result,
            }
        };
        let result = result.map_err(|e| self.describe(e, attempt));
        self.finish(&result);
        result
    }

    /// Ties an error made by this action's own code to the task, its
    /// attempts and its item index. An error passed up from a child task
    /// keeps the child's name and attempts.
    fn describe(&self, e: TaskError, attempt: u32) -> TaskError {
        let e = if e.task().is_none() {
            e.with_task(self.scope.action.task)
                .with_attempts(attempt, self.max_attempts)
        } else {
            e
        };
        match &self.fan_out {
            Some((_, index)) => e.with_index(*index),
            None => e,
        }
    }

    fn finish<T>(&mut self, result: &Result<T, TaskError>) {
        self.finished = true;
        let status = match result {
            Ok(_) => ActionStatus::Succeeded,
            Err(e) if e.kind() == ErrorKind::Cancelled => ActionStatus::Cancelled,
            Err(_) => ActionStatus::Failed,
        };
        let cell = &self.scope.action;
        match &self.fan_out {
            // A successful item's record is dropped right away: only count it.
            Some((fan_out, _)) if status == ActionStatus::Succeeded => {
                fan_out.item_finished(status, cell)
            }
            Some((fan_out, _)) => {
                cell.finish(status, result.as_ref().err().cloned());
                fan_out.item_finished(status, cell);
            }
            None => cell.finish(status, result.as_ref().err().cloned()),
        }
        self.scope.run.action_ended();
    }
}

impl Drop for Action {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let cell = &self.scope.action;
        cell.cancel();
        let attempt = cell.attempt.load(Ordering::Relaxed);
        let error = self.describe(TaskError::cancelled(), attempt);
        cell.finish(ActionStatus::Cancelled, Some(error));
        if let Some((fan_out, _)) = &self.fan_out {
            fan_out.item_finished(ActionStatus::Cancelled, cell);
        }
        self.scope.run.action_ended();
    }
}

fn is_retryable(e: &TaskError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::User | ErrorKind::Panic | ErrorKind::Timeout
    )
}

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

fn panic_error(payload: &(dyn std::any::Any + Send)) -> TaskError {
    TaskError::new(ErrorKind::Panic, panic_message(payload))
}

/// One attempt: an async body polled here, a sync body on a blocking thread.
async fn run_attempt<T: Send + 'static>(
    execution: ExecutionKind<T>,
    scope: &Scope,
    timeout: Option<Duration>,
) -> Result<T, TaskError> {
    match execution {
        ExecutionKind::Async(fut) => {
            let guarded = scope.clone().enter(AssertUnwindSafe(fut).catch_unwind());
            let caught = match timeout {
                Some(limit) => tokio::time::timeout(limit, guarded)
                    .await
                    .map_err(|_| timeout_error(limit))?,
                None => guarded.await,
            };
            caught.unwrap_or_else(|payload| Err(panic_error(&*payload)))
        }
        ExecutionKind::Blocking(run) => {
            let scope = scope.clone();
            let handle = tokio::task::spawn_blocking(move || scope.enter_sync(run));
            // On timeout the thread cannot be stopped: its late result is
            // dropped with the handle.
            let joined = match timeout {
                Some(limit) => tokio::time::timeout(limit, handle)
                    .await
                    .map_err(|_| timeout_error(limit))?,
                None => handle.await,
            };
            match joined {
                Ok(result) => result,
                Err(e) if e.is_panic() => Err(panic_error(&*e.into_panic())),
                Err(_) => Err(TaskError::cancelled()),
            }
        }
    }
}
