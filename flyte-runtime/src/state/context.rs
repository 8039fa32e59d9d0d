//! Where an action runs: the run it belongs to, the action, its group.
//!
//! The scope travels with the code: a tokio task-local for async code, a
//! thread-local for a sync task on its blocking thread. [`current`] reads it.

use crate::durability::record::Durability;
use crate::policies::cancel::CancelSignal;
use crate::policies::limits::{LimitTable, Slot};
use crate::policies::signals::StopHandle;
use crate::state::tree::{ActionCell, FanOutCell};
use crate::watch::sink::{Listener, Sink};
use crate::watch::spans::Spans;
use flyte_core::sync::lock;
use flyte_core::{ActionId, ErrorKind, TaskError};
use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio::task::futures::TaskLocalFuture;

/// The action a `map` or `gather` awaited outside any run hangs under (a
/// hash is never 0).
pub(crate) const EPHEMERAL: ActionId = ActionId(0);

/// One run: its id, its name, and how many of its actions are still live.
#[derive(Debug)]
pub(crate) struct RunShared {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    live: AtomicUsize,
    idle: Notify,
    pub(crate) limits: LimitTable,
    /// Stops the whole run (Ctrl-C, SIGTERM); `stop.cancel` is set then.
    pub(crate) stop: Arc<StopHandle>,
    /// Fan-outs dropped while items were still in flight, to tell when
    /// those items have ended (items do not touch `live`, which would be one
    /// more contended counter per item).
    fan_outs: Mutex<Vec<Weak<FanOutCell>>>,
    /// The store: the run's record, the cache.
    pub(crate) durability: Durability,
    /// Everything that watches the run: its store's recorder, the spans,
    /// the progress board.
    pub(crate) sink: Sink,
    /// The run's tracing span, when a subscriber wants it. Never entered
    /// (that would cost every poll of the root): the root action and the
    /// fan-outs started outside any span name it as their parent.
    pub(crate) span: OnceLock<tracing::Span>,
}

impl RunShared {
    /// The id of the run's tracing span, if it has one.
    pub(crate) fn span_id(&self) -> Option<tracing::span::Id> {
        self.span.get().and_then(tracing::Span::id)
    }

    /// An unrecorded run (an ephemeral one, or persistence off).
    pub(crate) fn new(name: Option<String>) -> Arc<Self> {
        RunShared::with(new_run_id(), name, Durability::default())
    }

    /// Run `id`, tied to its store by `durability`, watched by its store's
    /// recorder and the tracing spans (when a subscriber wants them).
    pub(crate) fn with(id: String, name: Option<String>, durability: Durability) -> Arc<Self> {
        RunShared::watched(id, name, durability, Vec::new())
    }

    /// [`RunShared::with`], watched by `watchers` too (a progress board).
    pub(crate) fn watched(
        id: String,
        name: Option<String>,
        durability: Durability,
        watchers: Vec<Arc<dyn Listener>>,
    ) -> Arc<Self> {
        let listeners = durability
            .recorder()
            .into_iter()
            .chain(Spans::wanted())
            .chain(watchers)
            .collect();
        Arc::new(RunShared {
            id,
            name,
            live: AtomicUsize::new(0),
            idle: Notify::new(),
            limits: LimitTable::default(),
            stop: Arc::default(),
            fan_outs: Mutex::new(Vec::new()),
            durability,
            sink: Sink::new(listeners),
            span: OnceLock::new(),
        })
    }

    pub(crate) fn add_fan_out(&self, cell: &Arc<FanOutCell>) {
        lock(&self.fan_outs).push(Arc::downgrade(cell));
    }

    fn all_items_ended(&self) -> bool {
        lock(&self.fan_outs)
            .iter()
            .filter_map(Weak::upgrade)
            .all(|cell| cell.all_items_ended())
    }

    /// The error a stopped run returns.
    pub(crate) fn stopped_error(&self) -> TaskError {
        let why = match self.stop.stopped_by() {
            Some(signal) => format!("run {} cancelled by {signal}", self.id),
            None => format!("run {} cancelled", self.id),
        };
        TaskError::new(ErrorKind::Cancelled, why)
    }

    pub(crate) fn action_started(&self) {
        self.live.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn action_ended(&self) {
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until every action of the run has recorded how it ended (an
    /// aborted item records its cancellation when tokio drops it, just after
    /// the abort).
    pub(crate) async fn settled(&self) {
        loop {
            let idle = self.idle.notified();
            if self.live.load(Ordering::Acquire) == 0 {
                break;
            }
            idle.await;
        }
        // Items only update their fan-out's counters; those left to record
        // a cancellation do so within a scheduler tick, so poll briefly.
        while !self.all_items_ended() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // Their fan-outs end with their last item; make sure each did.
        for cell in lock(&self.fan_outs).iter().filter_map(Weak::upgrade) {
            cell.end_if_done();
        }
    }
}

/// A run id: `r` and 20 hex digits, unique across processes and time.
pub(crate) fn new_run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(&nanos.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let h = hasher.digest128();
    format!("r{:020x}", h >> 48)
}

/// The run id an idempotency key starts: `r` and 20 hex digits of a
/// cryptographic hash of the key, so that every process derives the same
/// id and the store's unique id admits one run per key.
pub(crate) fn keyed_run_id(key: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"flyte idempotency key\0");
    hasher.update(key.as_bytes());
    let hash = hasher.finalize();
    let hex: String = hash.as_bytes()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("r{hex}")
}

/// The scope code runs in: the run, the current action and group.
///
/// One `Arc` per action: cloning it (for the task-local, for a child's
/// parent) touches only this action's counter, never one shared by every
/// item of a map.
#[derive(Debug, Clone)]
pub(crate) struct Scope(Arc<ScopeData>);

#[derive(Debug, Clone)]
pub(crate) struct ScopeData {
    pub(crate) run: RunRef,
    pub(crate) action: Arc<ActionCell>,
    pub(crate) group: Option<Arc<str>>,
    /// The action's place under its environment's concurrency limit.
    pub(crate) slot: Option<Arc<Slot>>,
    /// Set when this attempt of a sync task timed out (its thread cannot be
    /// stopped, but it can notice).
    pub(crate) attempt_cancel: Option<Arc<CancelSignal>>,
}

impl std::ops::Deref for Scope {
    type Target = ScopeData;
    fn deref(&self) -> &ScopeData {
        &self.0
    }
}

/// How an action reaches its run: directly, or, for a map item, through its
/// fan-out (which holds the run), so that an item holds one shared `Arc`.
#[derive(Debug, Clone)]
pub(crate) enum RunRef {
    Run(Arc<RunShared>),
    FanOut(Arc<FanOutCell>),
}

impl std::ops::Deref for RunRef {
    type Target = RunShared;
    fn deref(&self) -> &RunShared {
        match self {
            RunRef::Run(run) => run,
            RunRef::FanOut(fan_out) => &fan_out.run,
        }
    }
}

impl RunRef {
    /// The run itself, to hand to a new fan-out.
    pub(crate) fn shared(&self) -> Arc<RunShared> {
        match self {
            RunRef::Run(run) => Arc::clone(run),
            RunRef::FanOut(fan_out) => Arc::clone(&fan_out.run),
        }
    }
}

tokio::task_local! {
    static CURRENT: Scope;
}

thread_local! {
    static SYNC_SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

impl Scope {
    pub(crate) fn new(data: ScopeData) -> Self {
        Scope(Arc::new(data))
    }

    /// The scope of the calling code, if it runs inside an action.
    pub(crate) fn current() -> Option<Scope> {
        CURRENT
            .try_with(Scope::clone)
            .ok()
            .or_else(|| SYNC_SCOPE.with(|s| s.borrow().clone()))
    }

    /// Whether this thread is running a sync task (where blocking is allowed).
    pub(crate) fn in_sync_task() -> bool {
        SYNC_SCOPE.with(|s| s.borrow().is_some())
    }

    /// Runs `fut` with this scope as the current one.
    pub(crate) fn enter<F: Future>(self, fut: F) -> TaskLocalFuture<Scope, F> {
        CURRENT.scope(self, fut)
    }

    /// Runs `f` on this thread with this scope as the current one.
    pub(crate) fn enter_sync<R>(self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Scope>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                SYNC_SCOPE.with(|s| *s.borrow_mut() = previous);
            }
        }
        let previous = SYNC_SCOPE.with(|s| s.borrow_mut().replace(self));
        let _restore = Restore(previous);
        f()
    }

    /// Whether this action, or this attempt of it, was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.action.cancel.is_cancelled()
            || self
                .attempt_cancel
                .as_ref()
                .is_some_and(|a| a.is_cancelled())
    }

    /// Completes when this action or this attempt is cancelled.
    pub(crate) async fn cancelled(&self) {
        match &self.attempt_cancel {
            Some(attempt) => tokio::select! {
                () = self.action.cancel.cancelled() => {}
                () = attempt.cancelled() => {}
            },
            None => self.action.cancel.cancelled().await,
        }
    }

    /// This scope with `name` appended to the group path.
    pub(crate) fn with_group(&self, name: &str) -> Scope {
        let group: Arc<str> = match &self.group {
            Some(outer) => format!("{outer}/{name}").into(),
            None => name.into(),
        };
        Scope::new(ScopeData {
            group: Some(group),
            ..ScopeData::clone(self)
        })
    }
}

/// What a task knows about where it runs; see [`current`].
#[derive(Debug, Clone)]
pub struct Context {
    scope: Option<Scope>,
}

/// The context of the running task: run id, action id, task name, attempt.
///
/// Outside any task (e.g. in `main` before `flyte::run`) the context is
/// *detached*: [`Context::in_task`] is false, names are empty, the attempt
/// is 0.
///
/// # Examples
///
/// ```
/// use flyte_runtime::current;
///
/// let ctx = current();
/// assert!(!ctx.in_task());
/// assert_eq!(ctx.attempt(), 0);
/// ```
pub fn current() -> Context {
    Context {
        scope: Scope::current(),
    }
}

impl Context {
    /// Whether this context belongs to a running task.
    pub fn in_task(&self) -> bool {
        self.scope.is_some()
    }

    /// The run's id (`""` when detached).
    pub fn run_id(&self) -> &str {
        self.scope.as_ref().map_or("", |s| s.run.id.as_str())
    }

    /// The run's name, when it was given one with `Runner::name`.
    pub fn run_name(&self) -> Option<&str> {
        self.scope.as_ref().and_then(|s| s.run.name.as_deref())
    }

    /// The action's deterministic id (`None` when detached).
    pub fn action_id(&self) -> Option<ActionId> {
        self.scope.as_ref().map(|s| s.action.id)
    }

    /// The task's name, `"<env>.<fn>"` (`""` when detached).
    pub fn task_name(&self) -> &str {
        self.scope.as_ref().map_or("", |s| s.action.task)
    }

    /// The attempt number, from 1 (0 when detached).
    pub fn attempt(&self) -> u32 {
        self.scope
            .as_ref()
            .map_or(0, |s| s.action.attempt.load(Ordering::Relaxed))
    }

    /// The group path the code runs in (`flyte::group`), if any.
    pub fn group(&self) -> Option<&str> {
        self.scope.as_ref().and_then(|s| s.group.as_deref())
    }

    /// Whether the action, or this attempt of it, was cancelled (by a
    /// failing sibling, a dropped future, a stopped run, or the attempt's
    /// timeout). Async tasks are stopped at their next `.await` and never
    /// need this; a sync task cannot be stopped from outside, so long sync
    /// work should check it and return early. Whatever it returns after
    /// that is discarded.
    pub fn is_cancelled(&self) -> bool {
        self.scope.as_ref().is_some_and(Scope::is_cancelled)
    }
}
