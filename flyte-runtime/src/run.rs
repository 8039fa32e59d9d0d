//! Runs: [`run`], the [`Runner`] builder and the [`RunOutcome`].

use crate::action::{Action, Place};
use crate::call::TaskCall;
use crate::context::{RunShared, Scope};
use crate::registry::registry;
use crate::signals;
use crate::tree::{ActionNode, ActionStatus, ChildCounts, FanOutTotals};
use crate::wait;
use flyte_core::{ActionId, ErrorKind, TaskError};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::runtime::Handle;

/// Runs `call` as the root action of a new run and returns its output.
///
/// Builds (once per process) a multi-threaded tokio runtime and blocks
/// until the run ends. Ctrl-C (SIGINT) or SIGTERM cancels the run: every
/// action is recorded as cancelled and the call returns an
/// [`ErrorKind::Cancelled`](flyte_core::ErrorKind::Cancelled) error at once
/// (a sync task's thread is told through `flyte::current().is_cancelled()`);
/// a second signal exits the process. A `main` that returns this error exits
/// non-zero. Use [`Runner`] to name the run or to read its action
/// tree, and [`Runner::run_async`] inside async code.
///
/// # Examples
///
/// ```
/// use flyte::prelude::*;
///
/// #[task]
/// async fn main_task(items: Vec<i64>) -> Vec<i64> {
///     items.iter().map(|x| x * 2).collect()
/// }
///
/// fn main() -> Result<(), TaskError> {
///     let out = flyte::run(main_task(vec![1, 2, 3]))?;
///     assert_eq!(out, vec![2, 4, 6]);
///     Ok(())
/// }
/// ```
///
/// # Errors
///
/// The root task's error; [`ErrorKind::Config`](flyte_core::ErrorKind::Config)
/// when two tasks share a name; [`ErrorKind::Runtime`](flyte_core::ErrorKind::Runtime)
/// when called on a thread that runs async tasks (use `Runner::run_async`).
pub fn run<T: Send + 'static>(call: TaskCall<T>) -> Result<T, TaskError> {
    Runner::new().run(call).into_output()
}

/// Starts runs with options: a name, and the action tree afterwards.
///
/// # Examples
///
/// ```
/// use flyte::prelude::*;
///
/// #[task]
/// fn step(x: u32) -> u32 {
///     x + 1
/// }
///
/// #[task]
/// async fn main_task(x: u32) -> Result<u32, TaskError> {
///     assert_eq!(flyte::current().run_name(), Some("nightly"));
///     let a = step(x).await?;
///     step(a).await
/// }
///
/// let outcome = flyte::Runner::new().name("nightly").run(main_task(1));
/// println!("run {} made {} actions", outcome.run_id(), outcome.actions().iter().count());
/// assert_eq!(outcome.actions().children.len(), 2);
/// assert_eq!(outcome.into_output()?, 3);
///
/// // Inside async code:
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let outcome = flyte::Runner::new().name("nightly").run_async(main_task(1)).await;
/// assert_eq!(outcome.into_output()?, 3);
/// # Ok::<(), TaskError>(())
/// # })?;
/// # Ok::<(), TaskError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Runner {
    name: Option<String>,
}

impl Runner {
    /// A runner with no name.
    pub fn new() -> Self {
        Runner::default()
    }

    /// Names the runs it starts (`flyte::current().run_name()`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Runs `call` as the root of a new run, blocking this thread.
    ///
    /// On a thread that runs async tasks the run is refused (its outcome
    /// holds an [`ErrorKind::Runtime`](flyte_core::ErrorKind::Runtime)
    /// error): use [`Runner::run_async`] there.
    pub fn run<T: Send + 'static>(&self, call: TaskCall<T>) -> RunOutcome<T> {
        if Scope::in_sync_task() {
            // A sync task starting a run of its own, on its blocking thread.
            if let Ok(handle) = Handle::try_current() {
                return handle.block_on(self.run_async(call));
            }
        }
        if Handle::try_current().is_ok() {
            return refused(call, wait::would_block_error("Runner::run"));
        }
        match wait::global() {
            Ok(runtime) => runtime.block_on(async {
                if let Err(e) = registry().check() {
                    return refused(call, e);
                }
                let run = RunShared::new(self.name.clone());
                let _watched = signals::watch(&run);
                run_in(run, call).await
            }),
            Err(e) => refused(call, e),
        }
    }

    /// Runs `call` as the root of a new run, for callers already in async code.
    ///
    /// Unlike [`Runner::run`], it does not listen for Ctrl-C or SIGTERM: the
    /// caller owns the process's signals; dropping this future cancels the run.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the run's actions.
    pub async fn run_async<T: Send + 'static>(&self, call: TaskCall<T>) -> RunOutcome<T> {
        if let Err(e) = registry().check() {
            return refused(call, e);
        }
        run_in(RunShared::new(self.name.clone()), call).await
    }
}

/// Runs `call` as the root of `run` on a runtime worker (not on the thread
/// that awaits it, which for `flyte::run` is the caller's own thread): work
/// the root spawns then starts on the worker's local queue, and memory is
/// allocated and freed on the same threads. Dropping the returned future
/// aborts the root, which cancels the run.
async fn run_in<T: Send + 'static>(run: Arc<RunShared>, call: TaskCall<T>) -> RunOutcome<T> {
    let task = call.def.name();
    let id = ActionId::root(task, call.body.input_hash());
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
    let output = tokio::select! {
        out = action.run(call) => out,
        // Dropping the root's future cancels the whole tree below it.
        () = run.cancel.cancelled() => Err(run.stopped_error().with_task(task)),
    };
    // Cancelled actions record themselves as tokio drops them.
    run.settled().await;
    RunOutcome {
        run_id: run.id.clone(),
        name: run.name.clone(),
        root: root.snapshot(),
        output,
    }
}

/// The outcome of a run that could not start.
fn refused<T: 'static>(call: TaskCall<T>, error: TaskError) -> RunOutcome<T> {
    let task = call.def.name();
    failed(task, ActionId::root(task, call.body.input_hash()), error)
}

/// The outcome of a run whose root could not run.
fn failed<T>(task: &str, id: ActionId, error: TaskError) -> RunOutcome<T> {
    let now = SystemTime::now();
    let root = ActionNode {
        id,
        task: task.to_owned(),
        group: None,
        status: ActionStatus::Failed,
        attempts: 0,
        started_at: now,
        ended_at: Some(now),
        error: Some(error.clone()),
        children: Vec::new(),
        more_children: ChildCounts::default(),
        fan_outs: Vec::new(),
        more_fan_outs: FanOutTotals::default(),
    };
    RunOutcome {
        run_id: String::new(),
        name: None,
        root,
        output: Err(error),
    }
}

/// What a run produced: its output, its id and its action tree.
pub struct RunOutcome<T> {
    run_id: String,
    name: Option<String>,
    root: ActionNode,
    output: Result<T, TaskError>,
}

impl<T> RunOutcome<T> {
    /// The run's id (empty when the run was refused before it started).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's name, if the runner gave one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The root action, with the tree of actions below it.
    pub fn actions(&self) -> &ActionNode {
        &self.root
    }

    /// The output, by reference.
    pub fn output(&self) -> Result<&T, &TaskError> {
        self.output.as_ref()
    }

    /// The output.
    ///
    /// # Errors
    ///
    /// The root task's error, or why the run could not start.
    pub fn into_output(self) -> Result<T, TaskError> {
        self.output
    }
}

impl<T: fmt::Debug> fmt::Debug for RunOutcome<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOutcome")
            .field("run_id", &self.run_id)
            .field("name", &self.name)
            .field("output", &self.output)
            .field("root", &self.root)
            .finish()
    }
}
