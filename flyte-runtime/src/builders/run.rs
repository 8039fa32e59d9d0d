//! Runs: [`run`] and the [`Runner`] builder (what a run produced is in
//! `outcome.rs`).

mod open;
mod root;

use super::outcome::{failed, RunOutcome};
use crate::durability::record::NO_WORKER_AFTER;
use crate::durability::store_at::StoreAt;
use crate::execution::wait;
use crate::policies::signals;
use crate::progress::board::Board;
use crate::progress::display::Display;
use crate::progress::Progress;
use crate::registry::registry;
use crate::state::context::{keyed_run_id, RunShared, Scope};
use crate::task::call::TaskCall;
use flyte_core::backend::RunStore;
use flyte_core::sync::warn_once;
use flyte_core::{codec, ActionId, TaskError};
use open::{reopen, Opened};
use root::run_in;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
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

/// Starts runs with options: a name, where the store is, whether the run is
/// recorded; and gives the action tree afterwards.
///
/// Runs are recorded in the [store](crate::store) under `FLYTE_HOME`
/// (default `./.flyte/`): the run, each action as it ends, and each output.
/// A named run, started again under the same name, resumes: what succeeded
/// before is replayed from the store, the rest runs.
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
/// # let home = std::env::temp_dir().join(format!("flyte-doc-runner-{}", std::process::id()));
/// let runner = flyte::Runner::new().name("nightly").home(&home);
/// let outcome = runner.run(main_task(1));
/// println!("run {} made {} actions", outcome.run_id(), outcome.actions().iter().count());
/// assert_eq!(outcome.actions().children.len(), 2);
/// assert_eq!(outcome.into_output()?, 3);
///
/// // The same name again: the run resumes, and its recorded output is replayed.
/// let again = runner.run(main_task(1));
/// assert_eq!(again.actions().origin, flyte::Origin::Replayed);
/// assert_eq!(again.into_output()?, 3);
///
/// // Inside async code, and without a record:
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let outcome = flyte::Runner::new()
///     .name("nightly")
///     .persist(false)
///     .run_async(main_task(1))
///     .await;
/// assert_eq!(outcome.actions().children.len(), 2);
/// assert_eq!(outcome.into_output()?, 3);
/// # Ok::<(), TaskError>(())
/// # })?;
/// # std::fs::remove_dir_all(&home).ok();
/// # Ok::<(), TaskError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Runner {
    name: Option<String>,
    idempotency_key: Option<String>,
    persist: bool,
    store: StoreAt,
    report: Option<PathBuf>,
    progress: Progress,
    no_worker_after: Duration,
}

impl Default for Runner {
    fn default() -> Self {
        Runner {
            name: None,
            idempotency_key: None,
            persist: persist_from_env(),
            store: StoreAt::Default,
            report: None,
            progress: Progress::None,
            no_worker_after: NO_WORKER_AFTER,
        }
    }
}

/// The variable that turns recording off where no code says
/// [`Runner::persist`].
pub(crate) const PERSIST_VAR: &str = "FLYTE_PERSIST";

/// Whether `FLYTE_PERSIST` leaves recording on (unset: on).
fn persist_from_env() -> bool {
    match std::env::var(PERSIST_VAR) {
        Err(_) => true,
        Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
            "" | "on" | "1" | "true" | "yes" => true,
            "off" | "0" | "false" | "no" => false,
            _ => {
                warn_once(&format!(
                    "{PERSIST_VAR}={value:?} is not on or off: runs are recorded \
                     (set it to off, 0, false or no to turn recording off)"
                ));
                true
            }
        },
    }
}

impl Runner {
    /// A runner with no name, recording its runs in the default store.
    pub fn new() -> Self {
        Runner::default()
    }

    /// Names the runs it starts (`flyte::current().run_name()`).
    ///
    /// A name is a run's durable identity: running under a name the store
    /// already holds *resumes* that run (as [`Runner::resume`] does) instead
    /// of starting a new one, so the same call under the same name does only
    /// the work that did not succeed before. The call must be the same (same
    /// root task and inputs); another call under a used name is refused.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Starts at most one run for `key`, across processes and machines
    /// that share the store: the run's id is derived from the key, so a
    /// second start with the same key finds the run the first one made and
    /// executes it again as [`Runner::resume`] does (what succeeded
    /// replays, so a run that succeeded returns its output without running
    /// anything). A retried request, a redelivered message or a double click
    /// starts one run. The call must be the same (same root task and
    /// inputs); another call under a used key is refused with an
    /// [`ErrorKind::Config`](flyte_core::ErrorKind::Config) error, as is a
    /// start while that run is going on in another process. A key needs a
    /// recorded run: with recording off it is ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// use flyte::prelude::*;
    ///
    /// #[task]
    /// fn charge(order: u64) -> String {
    ///     format!("charged order {order}")
    /// }
    ///
    /// # let home = std::env::temp_dir().join(format!("flyte-doc-idempotency-{}", std::process::id()));
    /// let runner = flyte::Runner::new().home(&home).idempotency_key("order-77");
    /// let first = runner.run(charge(77));
    /// let again = runner.run(charge(77));
    /// assert_eq!(again.run_id(), first.run_id());
    /// assert_eq!(again.actions().origin, flyte::Origin::Replayed);
    /// # std::fs::remove_dir_all(&home).ok();
    /// ```
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The id of the run [`Runner::idempotency_key`] `key` starts: known
    /// before the run begins (an HTTP API answers with it at once).
    pub fn run_id_for_key(key: &str) -> String {
        keyed_run_id(key)
    }

    /// Whether the runs are recorded in the store (default: on, or what
    /// `FLYTE_PERSIST` says: `off`, `0`, `false` or `no` turn it off, for
    /// programs and command lines that do not call this). Off, a run keeps
    /// nothing on disk and cannot be resumed; cached tasks still use the
    /// cache.
    pub fn persist(mut self, on: bool) -> Self {
        self.persist = on;
        self
    }

    /// The store's directory for these runs, instead of `FLYTE_HOME`
    /// (default `./.flyte`).
    pub fn home(mut self, dir: impl Into<PathBuf>) -> Self {
        self.store = StoreAt::Home(dir.into());
        self
    }

    /// Records these runs (and keeps their cached outputs) in `store`, any
    /// implementation of the [store interface](crate::store::RunStore),
    /// instead of the SQLite store under `FLYTE_HOME`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flyte::prelude::*;
    /// use flyte::store::{RunStore, Store};
    /// use std::sync::Arc;
    ///
    /// #[task]
    /// fn one() -> u8 {
    ///     1
    /// }
    ///
    /// # let home = std::env::temp_dir().join(format!("flyte-doc-given-{}", std::process::id()));
    /// let store = Arc::new(Store::open(&home)?);
    /// let outcome = flyte::Runner::new().store(store.clone()).run(one());
    /// assert_eq!(store.run(outcome.run_id())?.unwrap().actions.len(), 1);
    /// # std::fs::remove_dir_all(&home).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn store(mut self, store: Arc<dyn RunStore>) -> Self {
        self.store = StoreAt::Given(store);
        self
    }

    /// Runs on a fleet: records these runs in the PostgreSQL database at
    /// `url` (a libpq URL, `postgres://user:password@host/db`), and queues
    /// every call their tasks make there, for the workers of the fleet
    /// (`flyte::fleet::Worker`) to run. The root task runs here and holds
    /// the run: its progress, its Ctrl-C, its outcome. `map`, `gather`,
    /// retries, timeouts, the cache, resume and fail-fast cancellation
    /// keep their meaning. Setting `FLYTE_POSTGRES_URL` does the same for
    /// runs that name no store. Needs the `postgres` feature.
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
    /// #[task]
    /// async fn squares(n: u64) -> Result<Vec<u64>, TaskError> {
    ///     flyte::map(square, 0..n).concurrency(64).await // each item runs on a worker
    /// }
    ///
    /// let outcome = flyte::Runner::new()
    ///     .postgres("postgres://flyte:flyte@localhost/flyte")
    ///     .run(squares(1000));
    /// assert_eq!(outcome.into_output()?.len(), 1000);
    /// # Ok::<(), TaskError>(())
    /// ```
    pub fn postgres(mut self, url: impl Into<String>) -> Self {
        self.store = StoreAt::Postgres(url.into());
        self
    }

    /// How long a call of a fleet run may wait while no live worker can
    /// run its task (none has the task at the same code version) before it
    /// fails with [`ErrorKind::NoWorker`](flyte_core::ErrorKind::NoWorker):
    /// "no worker for task X version V". Default 60 s; the calls those
    /// calls make on the workers get the same time.
    pub fn no_worker_timeout(mut self, limit: Duration) -> Self {
        self.no_worker_after = limit;
        self
    }

    /// Writes each run's report to `path` when the run ends (see
    /// [`RunOutcome::write_report`]); a report that cannot be written is a
    /// warning on stderr, not a failed run.
    ///
    /// # Examples
    ///
    /// ```
    /// use flyte::prelude::*;
    ///
    /// #[task]
    /// fn one() -> u8 {
    ///     1
    /// }
    ///
    /// # let home = std::env::temp_dir().join(format!("flyte-doc-runner-report-{}", std::process::id()));
    /// let report = home.join("report.html");
    /// flyte::Runner::new().home(&home).report(&report).run(one());
    /// assert!(report.is_file());
    /// # std::fs::remove_dir_all(&home).ok();
    /// ```
    pub fn report(mut self, path: impl Into<PathBuf>) -> Self {
        self.report = Some(path.into());
        self
    }

    /// Shows the run's progress on stderr (default [`Progress::None`]; the
    /// `FLYTE_PROGRESS` environment variable overrides it): a line per
    /// fan-out site with done/total, rate, ETA and the last failure, drawn
    /// ten times a second from the fan-outs' counters, never per item.
    ///
    /// # Examples
    ///
    /// ```
    /// use flyte::prelude::*;
    /// use flyte::Progress;
    ///
    /// #[task]
    /// fn one(x: u32) -> u32 {
    ///     x
    /// }
    ///
    /// #[task]
    /// async fn many(n: u32) -> Result<Vec<u32>, TaskError> {
    ///     flyte::map(one, 0..n).await
    /// }
    ///
    /// let outcome = flyte::Runner::new().persist(false).progress(Progress::Auto).run(many(10));
    /// assert_eq!(outcome.into_output()?.len(), 10);
    /// # Ok::<(), TaskError>(())
    /// ```
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// Runs `call` as the root of a new run, blocking this thread.
    ///
    /// On a thread that runs async tasks the run is refused (its outcome
    /// holds an [`ErrorKind::Runtime`](flyte_core::ErrorKind::Runtime)
    /// error): use [`Runner::run_async`] there.
    pub fn run<T: Send + 'static>(&self, call: TaskCall<T>) -> RunOutcome<T> {
        self.block_on(|| self.start(call, |call, root| self.open_run(call, root), true))
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
        self.start(call, |call, root| self.open_run(call, root), false)
            .await
    }

    /// Executes the recorded run `run_id` again, blocking this thread: the
    /// actions that succeeded before return their recorded output without
    /// running (matched by their deterministic ids); failed, cancelled and
    /// never-started ones run. The root call is rebuilt from the task name
    /// and inputs stored with the run, through the [registry](crate::registry).
    ///
    /// # Examples
    ///
    /// ```
    /// use flyte::prelude::*;
    ///
    /// #[task]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// # let home = std::env::temp_dir().join(format!("flyte-doc-resume-{}", std::process::id()));
    /// let runner = flyte::Runner::new().home(&home);
    /// let first = runner.run(square(7));
    /// let again = runner.resume::<u64>(first.run_id());
    /// assert_eq!(again.run_id(), first.run_id());
    /// assert_eq!(again.actions().origin, flyte::Origin::Replayed);
    /// assert_eq!(again.into_output()?, 49);
    /// # std::fs::remove_dir_all(&home).ok();
    /// # Ok::<(), TaskError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// In the outcome: [`ErrorKind::Store`](flyte_core::ErrorKind::Store)
    /// when the run is not in the store or the store cannot be used;
    /// [`ErrorKind::Config`](flyte_core::ErrorKind::Config) when the run is
    /// going on in another process; [`ErrorKind::Input`](flyte_core::ErrorKind::Input)
    /// when the output is not a `T`; else the root task's error.
    pub fn resume<T: DeserializeOwned + Send + 'static>(&self, run_id: &str) -> RunOutcome<T> {
        self.resume_encoded(run_id)
            .map_output(|bytes| codec::decode(&bytes))
    }

    /// [`Runner::resume`] for a caller that does not know the output's type
    /// (the command line): the output as JSON, decoded through the
    /// [registry](crate::registry).
    ///
    /// # Errors
    ///
    /// As [`Runner::resume`].
    pub fn resume_json(&self, run_id: &str) -> RunOutcome<serde_json::Value> {
        let outcome = self.resume_encoded(run_id);
        let task = outcome.actions().task.clone();
        outcome.map_output(|bytes| registry().output_json(&task, &bytes))
    }

    /// [`Runner::resume`] with the output as the codec wrote it.
    fn resume_encoded(&self, run_id: &str) -> RunOutcome<Vec<u8>> {
        self.block_on(|| async {
            match self.stored_call(run_id) {
                Ok((call, store, key, run)) => {
                    let wait = self.no_worker_after;
                    let reopen = |_: &TaskCall<Vec<u8>>, _| reopen(store, key, run, wait);
                    self.start(call, reopen, true).await
                }
                Err(e) => failed("", ActionId(0), e),
            }
        })
    }

    /// Runs `start()` to its end from sync code, on the global runtime (or
    /// on the current one, from a sync task's thread).
    fn block_on<T, F>(&self, start: impl FnOnce() -> F) -> RunOutcome<T>
    where
        F: Future<Output = RunOutcome<T>>,
    {
        if Scope::in_sync_task() {
            // A sync task starting a run of its own, on its blocking thread.
            if let Ok(handle) = Handle::try_current() {
                return handle.block_on(start());
            }
        }
        if Handle::try_current().is_ok() {
            return failed("", ActionId(0), wait::would_block_error("Runner::run"));
        }
        match wait::global() {
            Ok(runtime) => runtime.block_on(start()),
            Err(e) => failed("", ActionId(0), e),
        }
    }

    /// Opens the run `call` is the root of, and runs it.
    async fn start<T: Send + 'static>(
        &self,
        call: TaskCall<T>,
        open: impl FnOnce(&TaskCall<T>, ActionId) -> Result<Opened, TaskError>,
        watch_signals: bool,
    ) -> RunOutcome<T> {
        // Hashed once here: the inputs of a root can be large.
        let root = call.root_id();
        if let Err(e) = registry().check() {
            return failed(call.def.name(), root, e);
        }
        let opened = match open(&call, root) {
            Ok(opened) => opened,
            Err(e) => return failed(call.def.name(), root, e),
        };
        // The display's board hears the run's fan-outs start on its sink.
        let shown = self.progress.resolve();
        let board = shown.map(|_| Arc::new(Board::new(call.def.name())));
        let watchers = board.iter().map(Board::listener).collect();
        let run = RunShared::watched(opened.id, opened.name, opened.durability, watchers);
        let _watched = watch_signals.then(|| signals::watch(&run.stop));
        let display = shown.zip(board).map(|(shown, board)| {
            Display::start(
                board,
                shown,
                Arc::clone(&run.stop),
                run.durability.recorded_as(),
            )
        });
        let outcome = run_in(run, call, root).await;
        if let Some(display) = display {
            display.finish();
        }
        if let Some(path) = &self.report {
            if let Err(e) = outcome.write_report(path) {
                eprintln!("flyte: run {}: {}", outcome.run_id, e.message());
            }
        }
        outcome
    }
}
