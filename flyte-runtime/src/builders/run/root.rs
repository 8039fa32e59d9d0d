//! Running a run's root: on a runtime worker, watched for aborts from
//! other processes, to its end, which the run's sink hears.

use crate::builders::outcome::{failed, RunOutcome};
use crate::execution::action::{Action, Place};
use crate::policies::abort;
use crate::state::context::RunShared;
use crate::task::call::TaskCall;
use crate::watch::sink::RunStart;
use flyte_core::record::RunStatus;
use flyte_core::store::RunEnd;
use flyte_core::{ActionId, ErrorKind, TaskError};
use std::sync::Arc;

/// Runs `call` as the root of `run` on a runtime worker (not on the thread
/// that awaits it, which for `flyte::run` is the caller's own thread): work
/// the root spawns then starts on the worker's local queue, and memory is
/// allocated and freed on the same threads. Dropping the returned future
/// aborts the root, which cancels the run.
pub(super) async fn run_in<T: Send + 'static>(
    run: Arc<RunShared>,
    call: TaskCall<T>,
    id: ActionId,
) -> RunOutcome<T> {
    let task = call.def.name();
    if run.sink.is_heard() {
        let start = RunStart {
            id: &run.id,
            name: run.name.as_deref(),
            task,
        };
        if let Some(span) = run.sink.run_started(&start) {
            let _ = run.span.set(span);
        }
    }
    // A recorded run can be aborted from another process through its store.
    let _abort_watch = run.durability.recorded_as().map(|(store, key)| {
        AbortOnDrop(tokio::spawn(abort::watch(
            store,
            key,
            Arc::clone(&run.stop),
        )))
    });
    let mut root = AbortOnDrop(tokio::spawn(run_root(run, call)));
    match (&mut root.0).await {
        Ok(outcome) => outcome,
        // Task panics are caught inside the root, and it is aborted only by
        // dropping this future; a failed join is a bug in flyte itself.
        Err(e) => failed(
            task,
            id,
            TaskError::new(
                ErrorKind::Runtime,
                format!("the run's root stopped unexpectedly: {e}"),
            ),
        ),
    }
}

/// Aborts the spawned task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run_root<T: Send + 'static>(run: Arc<RunShared>, call: TaskCall<T>) -> RunOutcome<T> {
    let action = Action::start(call.def, &call, Place::Root(run.clone()));
    let root = action.cell().clone();
    let task = call.def.name();
    let root_future = action.run_traced(call);
    let output = tokio::select! {
        out = root_future => out,
        // Dropping the root's future cancels the whole tree below it.
        () = run.stop.cancel.cancelled() => Err(run.stopped_error().with_task(task)),
    };
    // Cancelled actions record themselves as tokio drops them.
    run.settled().await;
    let end = RunEnd {
        status: RunStatus::of(&output),
        error: output.as_ref().err().cloned(),
    };
    let closed = run.sink.run(end, run.span.get()).await;
    let recorded = run.durability.close(&run.id, closed).await;
    RunOutcome {
        run_id: run.id.clone(),
        name: run.name.clone(),
        root: root.snapshot(),
        output,
        recorded,
        stored: run.durability.recorded_as(),
    }
}
