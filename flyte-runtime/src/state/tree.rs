//! The action tree: what a run did, returned to the caller after the run.
//!
//! While a run goes on, each action is an [`ActionCell`] shared by the code
//! running it and by its parent; after the run, the cells are read once
//! into plain [`ActionNode`] values.
//!
//! Memory stays bounded in long runs: a `map` or `gather` does not keep a
//! record per item. It keeps counts by status and the records of the first
//! [`MAX_KEPT_FAILURES`] failed items ([`FanOutSummary`]); a successful
//! item's record and its subtree are dropped as soon as it finishes. An
//! action keeps the records of its first [`MAX_KEPT_CHILDREN`] direct
//! children, then of failed ones only, and counts the rest.

use crate::policies::cancel::CancelSignal;
use crate::state::context::RunShared;
use crate::watch::sink::{LiveCounts, LiveFanOut};
use flyte_core::record::{from_micros, micros, ActionRecord, AttemptTimes, FanOutRecord};
pub use flyte_core::record::{ActionStatus, FanOutKind, Origin};
use flyte_core::sync::lock;
use flyte_core::{ActionId, TaskError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// How many failed items' records one fan-out keeps; later failures are
/// only counted.
pub const MAX_KEPT_FAILURES: usize = 1_000;

/// How many `map`/`gather` summaries one action keeps; later fan-outs are
/// folded into [`ActionNode::more_fan_outs`].
pub const MAX_KEPT_FAN_OUTS: usize = 1_000;

/// How many distinct (task, inputs) keys one action numbers its direct
/// calls by; past it, calls are numbered by order.
const MAX_SEQ_KEYS: usize = 100_000;

/// How many direct children's records one action keeps; later ones are
/// counted in [`ActionNode::more_children`] (failed ones are still kept, up
/// to [`MAX_KEPT_FAILURES`] more).
pub const MAX_KEPT_CHILDREN: usize = 1_000;

/// One action of a run, with the actions it started.
///
/// The action itself is an [`ActionRecord`], the one shape the store and
/// every tool use too; its fields read through the node (`node.status`,
/// `node.task`, ...). The tree keeps no outputs (`output_bytes` is `None`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActionNode {
    /// The action: id, task, group, status, attempts, times, error, origin;
    /// `parent` is set below the root, `item` for a kept failed item.
    pub action: ActionRecord,
    /// Actions it awaited directly, in the order they started: the first
    /// [`MAX_KEPT_CHILDREN`], then only failed ones.
    pub children: Vec<ActionNode>,
    /// Direct children past the first [`MAX_KEPT_CHILDREN`], by how they
    /// ended (failed ones are also in `children`, while there is room).
    pub more_children: ChildCounts,
    /// The `map`s and `gather`s it ran, in the order they started.
    pub fan_outs: Vec<FanOutSummary>,
    /// The fan-outs past the first [`MAX_KEPT_FAN_OUTS`], added up.
    pub more_fan_outs: FanOutTotals,
}

impl std::ops::Deref for ActionNode {
    type Target = ActionRecord;

    fn deref(&self) -> &ActionRecord {
        &self.action
    }
}

impl ActionNode {
    /// A node for `action`, with nothing below it.
    pub(crate) fn leaf(action: ActionRecord) -> ActionNode {
        ActionNode {
            action,
            children: Vec::new(),
            more_children: ChildCounts::default(),
            fan_outs: Vec::new(),
            more_fan_outs: FanOutTotals::default(),
        }
    }
}

/// Fan-outs added up: how many, and their items by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FanOutTotals {
    /// Fan-outs counted.
    pub fan_outs: u64,
    /// Items started.
    pub started: u64,
    /// Items that succeeded.
    pub succeeded: u64,
    /// Items that failed.
    pub failed: u64,
    /// Items cancelled.
    pub cancelled: u64,
}

/// Counts of actions by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChildCounts {
    /// Succeeded.
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
}

/// What one `map` or `gather` did: its record (counts by status, task,
/// kind, group, concurrency, timings: the [`FanOutRecord`] the store keeps
/// too; its fields read through the summary, `summary.failed`) and the
/// failed items. The fan-outs of a run recorded nowhere
/// (`Runner::persist(false)`) are not timed: their `started_at` and
/// `ended_at` are `UNIX_EPOCH`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FanOutSummary {
    /// The fan-out as recorded.
    pub fan_out: FanOutRecord,
    /// Records of the first [`MAX_KEPT_FAILURES`] failed items, in the order
    /// they failed.
    pub failures: Vec<ActionNode>,
}

impl std::ops::Deref for FanOutSummary {
    type Target = FanOutRecord;

    fn deref(&self) -> &FanOutRecord {
        &self.fan_out
    }
}

impl ActionNode {
    /// This node and every node below it (direct children and kept failed
    /// fan-out items), depth first.
    pub fn iter(&self) -> impl Iterator<Item = &ActionNode> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            let node = stack.pop()?;
            for f in node.fan_outs.iter().rev() {
                stack.extend(f.failures.iter().rev());
            }
            stack.extend(node.children.iter().rev());
            Some(node)
        })
    }
}

/// The live record of one action.
#[derive(Debug)]
pub(crate) struct ActionCell {
    pub(crate) id: ActionId,
    pub(crate) task: &'static str,
    pub(crate) group: Option<Arc<str>>,
    /// When its caller made it (it may wait for slots after).
    pub(crate) queued_at: SystemTime,
    /// Whether its attempts are timed: only when its run is watched (a
    /// store, spans, a display); a run nobody watches reads no clock per
    /// attempt.
    pub(crate) timed: bool,
    /// When its first attempt's body began, in microseconds since the
    /// epoch; 0 until then.
    began_us: AtomicU64,
    /// When the current attempt's body began (0: it has not), and when it
    /// ended.
    attempt_began_us: AtomicU64,
    attempt_ended_us: AtomicU64,
    pub(crate) attempt: AtomicU32,
    /// An [`Origin`], as its number.
    origin: AtomicU8,
    /// Set when the action is cancelled: sync code polls it, a sync task's
    /// `.wait()` is woken by it.
    pub(crate) cancel: CancelSignal,
    state: Mutex<CellState>,
}

#[derive(Debug, Default)]
struct CellState {
    ended: Option<Ended>,
    children: Vec<Arc<ActionCell>>,
    /// Of `children`, how many are failures kept past the cap.
    kept_failures: usize,
    more_children: ChildCounts,
    fan_outs: Vec<Arc<FanOutCell>>,
    /// Fan-outs started so far (the sequence number in their ids).
    fan_out_seq: u64,
    more_fan_outs: FanOutTotals,
    /// Each attempt's times, kept once it has more than one.
    attempt_times: Vec<AttemptTimes>,
    /// Calls made so far per (task, input hash): the sequence number in ids.
    seq: HashMap<(usize, u128), u64>,
    /// Direct calls made so far, for ids past [`MAX_SEQ_KEYS`] keys.
    calls: u64,
}

#[derive(Debug)]
struct Ended {
    status: ActionStatus,
    at: SystemTime,
    error: Option<TaskError>,
}

impl ActionCell {
    /// The cell of a new action; `timed`: whether its attempts are timed
    /// (see its `timed` field).
    pub(crate) fn new(
        id: ActionId,
        task: &'static str,
        group: Option<Arc<str>>,
        timed: bool,
    ) -> Self {
        ActionCell {
            id,
            task,
            group,
            queued_at: SystemTime::now(),
            timed,
            began_us: AtomicU64::new(0),
            attempt_began_us: AtomicU64::new(0),
            attempt_ended_us: AtomicU64::new(0),
            attempt: AtomicU32::new(0),
            origin: AtomicU8::new(0),
            cancel: CancelSignal::default(),
            state: Mutex::new(CellState::default()),
        }
    }

    /// The sequence number of the next direct call with this key: how many
    /// calls with the same task and inputs came before it. Past
    /// [`MAX_SEQ_KEYS`] distinct keys, new keys are numbered by call order
    /// instead (above 2^32, so the two never collide), which keeps memory
    /// bounded and ids unique and deterministic.
    pub(crate) fn next_seq(&self, task_key: usize, input: u128) -> u64 {
        let mut state = lock(&self.state);
        state.calls += 1;
        let calls = state.calls;
        let room = state.seq.len() < MAX_SEQ_KEYS;
        match state.seq.get_mut(&(task_key, input)) {
            Some(n) => {
                *n += 1;
                *n - 1
            }
            None if room => {
                state.seq.insert((task_key, input), 1);
                0
            }
            None => (1 << 32) + calls,
        }
    }

    /// Keeps `child`'s record, or, past [`MAX_KEPT_CHILDREN`], returns
    /// false: the child then reports how it ended with
    /// [`ActionCell::count_child`].
    pub(crate) fn add_child(&self, child: &Arc<ActionCell>) -> bool {
        let mut state = lock(&self.state);
        if state.children.len() - state.kept_failures < MAX_KEPT_CHILDREN {
            state.children.push(Arc::clone(child));
            true
        } else {
            false
        }
    }

    /// Counts a direct child past the cap; keeps its record if it failed
    /// and there is room.
    pub(crate) fn count_child(&self, status: ActionStatus, child: &Arc<ActionCell>) {
        let mut state = lock(&self.state);
        let counts = &mut state.more_children;
        match status {
            ActionStatus::Succeeded => counts.succeeded += 1,
            ActionStatus::Cancelled => counts.cancelled += 1,
            ActionStatus::Failed => {
                counts.failed += 1;
                if state.kept_failures < MAX_KEPT_FAILURES {
                    state.kept_failures += 1;
                    state.children.push(Arc::clone(child));
                }
            }
            // Running (and any status a newer flyte-core adds) is not an end.
            _ => {}
        }
    }

    /// Registers a new fan-out, made from its sequence number under this
    /// action. Returns it, and whether its summary is kept (past
    /// [`MAX_KEPT_FAN_OUTS`] it is folded in with [`ActionCell::fold_fan_out`]
    /// when it ends).
    pub(crate) fn add_fan_out(
        &self,
        make: impl FnOnce(u64) -> FanOutCell,
    ) -> (Arc<FanOutCell>, bool) {
        let mut state = lock(&self.state);
        let cell = Arc::new(make(state.fan_out_seq));
        state.fan_out_seq += 1;
        let kept = state.fan_outs.len() < MAX_KEPT_FAN_OUTS;
        if kept {
            state.fan_outs.push(Arc::clone(&cell));
        }
        (cell, kept)
    }

    /// Adds an ended fan-out whose summary is not kept to the totals.
    pub(crate) fn fold_fan_out(&self, fan_out: &FanOutCell) {
        // Its counters only: no snapshot (records, strings) of a fan-out
        // that is not kept.
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut state = lock(&self.state);
        let totals = &mut state.more_fan_outs;
        totals.fan_outs += 1;
        totals.started += count(&fan_out.started);
        totals.succeeded += count(&fan_out.succeeded);
        totals.failed += count(&fan_out.failed);
        totals.cancelled += count(&fan_out.cancelled);
    }

    /// The input index its error names, for a failed item.
    fn error_index(&self) -> Option<u64> {
        let state = lock(&self.state);
        let index = state.ended.as_ref()?.error.as_ref()?.index()?;
        u64::try_from(index).ok()
    }

    /// `[kind] message` of its error, once it ended with one.
    pub(crate) fn error_line(&self) -> Option<String> {
        let state = lock(&self.state);
        let e = state.ended.as_ref()?.error.as_ref()?;
        Some(format!("[{}] {}", e.kind().as_str(), e.message()))
    }

    /// An attempt's body begins now (with every slot it needed); returns
    /// its mark, for [`ActionCell::attempt_ended`].
    pub(crate) fn attempt_began(&self) -> u64 {
        self.attempt_began_at(now_us())
    }

    /// The first attempt's body begins in the poll that made the action:
    /// at its queued time, to the microsecond.
    pub(crate) fn attempt_began_at_queued(&self) -> u64 {
        self.attempt_began_at(micros(self.queued_at).max(1) as u64)
    }

    fn attempt_began_at(&self, now: u64) -> u64 {
        self.attempt_ended_us.store(0, Ordering::Relaxed);
        self.attempt_began_us.store(now, Ordering::Relaxed);
        let _ = self
            .began_us
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        now
    }

    /// The attempt that began at `mark` ended now (returned, or its time
    /// ran out: a sync body that goes on past its limit moves nothing, nor
    /// does it end a later attempt).
    pub(crate) fn attempt_ended(&self, mark: u64) {
        if mark != 0 && self.attempt_began_us.load(Ordering::Relaxed) == mark {
            let _ = self.attempt_ended_us.compare_exchange(
                0,
                now_us(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// The mark of the attempt executing now (0: none).
    pub(crate) fn attempt_mark(&self) -> u64 {
        self.attempt_began_us.load(Ordering::Relaxed)
    }

    /// When its latest attempt's body ended, if one began and ended: an
    /// action's end as it ran (its result may reach its caller later: a
    /// map's lane hands results over in batches).
    pub(crate) fn executed_until(&self) -> Option<SystemTime> {
        match self.attempt_ended_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(time_us(us)),
        }
    }

    /// Keeps the times of the attempt that just ended (for an action of
    /// more than one attempt), and readies for the next.
    pub(crate) fn keep_attempt_times(&self) {
        let began = self.attempt_began_us.swap(0, Ordering::Relaxed);
        if began != 0 {
            let ended = self.attempt_ended_us.load(Ordering::Relaxed).max(began);
            lock(&self.state).attempt_times.push(AttemptTimes {
                started_at: time_us(began),
                ended_at: time_us(ended),
            });
        }
    }

    /// When its first attempt began, if one did.
    pub(crate) fn began_at(&self) -> Option<SystemTime> {
        match self.began_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(time_us(us)),
        }
    }

    /// Each attempt's times, when it had more than one.
    pub(crate) fn attempt_times(&self) -> Vec<AttemptTimes> {
        lock(&self.state).attempt_times.clone()
    }

    pub(crate) fn set_origin(&self, origin: Origin) {
        self.origin.store(origin.code(), Ordering::Relaxed);
    }

    pub(crate) fn origin(&self) -> Origin {
        Origin::from_code(self.origin.load(Ordering::Relaxed))
    }

    pub(crate) fn finish(&self, status: ActionStatus, at: SystemTime, error: Option<TaskError>) {
        let mut state = lock(&self.state);
        if state.ended.is_none() {
            state.ended = Some(Ended { status, at, error });
        }
    }

    pub(crate) fn snapshot(&self) -> ActionNode {
        self.snapshot_under(None, None)
    }

    /// The tree from this action down; `parent` and `item` say where it
    /// hangs (the cell does not keep them: the tree's shape does).
    fn snapshot_under(
        &self,
        parent: Option<ActionId>,
        item: Option<(ActionId, u64)>,
    ) -> ActionNode {
        let state = lock(&self.state);
        let (status, ended_at, error) = match &state.ended {
            Some(e) => (e.status, Some(e.at), e.error.clone()),
            None => (ActionStatus::Running, None, None),
        };
        // One that never began executed for no time: its start is its end
        // (or now, while it waits). One not timed is known only from when
        // it was queued.
        let started_at = match self.timed {
            true => self.began_at().or(ended_at).unwrap_or_else(SystemTime::now),
            false => self.queued_at,
        };
        let mut action =
            ActionRecord::new(self.id, self.task.to_owned(), status, started_at, ended_at);
        action.queued_at = self.queued_at;
        action.attempt_times.clone_from(&state.attempt_times);
        action.parent = parent;
        action.item = item;
        action.group = self.group.as_deref().map(str::to_owned);
        action.attempts = self.attempt.load(Ordering::Relaxed);
        action.error = error;
        action.origin = self.origin();
        ActionNode {
            action,
            children: state
                .children
                .iter()
                .map(|c| c.snapshot_under(Some(self.id), None))
                .collect(),
            more_children: state.more_children,
            fan_outs: state.fan_outs.iter().map(|f| f.snapshot()).collect(),
            more_fan_outs: state.more_fan_outs,
        }
    }
}

/// The live record of one `map` or `gather`.
#[derive(Debug)]
pub(crate) struct FanOutCell {
    /// The run the fan-out's items belong to (they reach it through here).
    pub(crate) run: Arc<RunShared>,
    pub(crate) id: ActionId,
    /// The action that ran the fan-out (the parent of its items in the store).
    pub(crate) parent: ActionId,
    kind: FanOutKind,
    group: Option<Arc<str>>,
    /// Its concurrency bound (`None`: unbounded).
    concurrency: Option<u32>,
    /// Set when the run's sink is heard: only then is the fan-out's end
    /// emitted, and the fan-out timed (two clock reads cost a small
    /// `gather` about 3%; a run nobody hears keeps `UNIX_EPOCH`).
    heard: bool,
    started_at: SystemTime,
    /// Set when the fan-out is dropped.
    ended_at: OnceLock<SystemTime>,
    /// The task its items ran (`None`: several, or none), told when it is
    /// dropped.
    task: OnceLock<Option<&'static str>>,
    /// Set when the fan-out is dropped: it ends once its items have.
    closed: AtomicBool,
    /// Set once its end was emitted to the run's sink.
    emitted: AtomicBool,
    started: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    cached: AtomicU64,
    replayed: AtomicU64,
    failures: Mutex<Vec<Arc<ActionCell>>>,
    /// What only a progress display reads, set when one watches the
    /// fan-out (boxed: a fan-out nobody watches keeps the size it had).
    watched: OnceLock<Box<Watched>>,
    /// Its tracing span, when a subscriber wants it: its items' parent.
    span_id: OnceLock<tracing::span::Id>,
}

/// What a progress display reads of a fan-out beyond its counts.
#[derive(Debug, Default)]
struct Watched {
    /// How many items it will run, when its input said so up front.
    expected: Option<u64>,
    /// Items that needed more than one attempt.
    retried: AtomicU64,
    /// Items whose body executes now (the others in flight wait: for a
    /// slot, a rate window, a thread, a backoff).
    executing: AtomicU64,
    /// The latest item that failed.
    last_failure: Mutex<Option<Arc<ActionCell>>>,
    /// The task of its first item.
    first_task: OnceLock<&'static str>,
}

impl FanOutCell {
    pub(crate) fn new(
        run: Arc<RunShared>,
        id: ActionId,
        parent: ActionId,
        kind: FanOutKind,
        group: Option<Arc<str>>,
        concurrency: Option<u32>,
    ) -> Self {
        let heard = run.sink.is_heard();
        FanOutCell {
            run,
            id,
            parent,
            kind,
            group,
            concurrency,
            heard,
            started_at: match heard {
                true => SystemTime::now(),
                false => SystemTime::UNIX_EPOCH,
            },
            ended_at: OnceLock::new(),
            task: OnceLock::new(),
            closed: AtomicBool::new(false),
            emitted: AtomicBool::new(false),
            started: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            cached: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
            watched: OnceLock::new(),
            span_id: OnceLock::new(),
        }
    }

    /// The group label the fan-out ran in.
    pub(crate) fn group(&self) -> &Option<Arc<str>> {
        &self.group
    }

    /// Whether every started item has recorded how it ended.
    pub(crate) fn all_items_ended(&self) -> bool {
        let ended = self.succeeded.load(Ordering::Acquire)
            + self.failed.load(Ordering::Acquire)
            + self.cancelled.load(Ordering::Acquire);
        ended >= self.started.load(Ordering::Acquire)
    }

    /// Items started, succeeded, failed and cancelled so far.
    pub(crate) fn counts(&self) -> [u64; 4] {
        [
            &self.started,
            &self.succeeded,
            &self.failed,
            &self.cancelled,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }

    pub(crate) fn item_started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// The fan-out was dropped, having run items of `task` (`None`: of
    /// several tasks, or none): it ends once every started item has ended
    /// (now, or as the last one ends).
    pub(crate) fn close(&self, task: Option<&'static str>) {
        let _ = self.task.set(task);
        if self.heard {
            let _ = self.ended_at.set(SystemTime::now());
            self.closed.store(true, Ordering::SeqCst);
            self.end_if_done();
        }
    }

    /// Emits the fan-out's record to the run's sink, once, when it was
    /// closed and all its items ended. The run calls it again for fan-outs
    /// dropped with items in flight, before it ends.
    pub(crate) fn end_if_done(&self) {
        if self.heard
            && self.closed.load(Ordering::SeqCst)
            && self.all_items_ended()
            && !self.emitted.swap(true, Ordering::AcqRel)
        {
            // Emitted as its last item ended, or as it was dropped.
            self.run.sink.fan_out(&self.record(SystemTime::now()));
        }
    }

    /// The fan-out as recorded, ended at `ended_at`.
    fn record(&self, ended_at: SystemTime) -> FanOutRecord {
        let mut record =
            FanOutRecord::new(self.id, self.parent, self.kind, self.started_at, ended_at);
        record.task = self.task.get().copied().flatten().map(str::to_owned);
        record.group = self.group.as_deref().map(str::to_owned);
        record.concurrency = self.concurrency;
        record.started = self.started.load(Ordering::Relaxed);
        record.succeeded = self.succeeded.load(Ordering::Relaxed);
        record.failed = self.failed.load(Ordering::Relaxed);
        record.cancelled = self.cancelled.load(Ordering::Relaxed);
        record.cached = self.cached.load(Ordering::Relaxed);
        record.replayed = self.replayed.load(Ordering::Relaxed);
        record
    }

    /// Names the fan-out's tracing span.
    pub(crate) fn set_span_id(&self, id: tracing::span::Id) {
        let _ = self.span_id.set(id);
    }

    /// The fan-out's tracing span, if it has one.
    pub(crate) fn span_id(&self) -> Option<tracing::span::Id> {
        self.span_id.get().cloned()
    }

    /// Whether a progress display watches it.
    pub(crate) fn is_watched(&self) -> bool {
        self.watched.get().is_some()
    }

    /// An item's body began executing (for a display).
    pub(crate) fn item_began(&self) {
        if let Some(watched) = self.watched.get() {
            watched.executing.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An item's body stopped executing (for a display).
    pub(crate) fn item_paused(&self) {
        if let Some(watched) = self.watched.get() {
            watched.executing.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Counts an item that needed a second attempt (for a display).
    pub(crate) fn item_retried(&self) {
        if let Some(watched) = self.watched.get() {
            watched.retried.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Notes the task of its first item (for a display: `task` is told
    /// only at the end).
    pub(crate) fn note_first_task(&self, task: &'static str) {
        if let Some(watched) = self.watched.get() {
            let _ = watched.first_task.set(task);
        }
    }

    /// Counts a finished item; keeps the record of a failed one.
    pub(crate) fn item_finished(&self, status: ActionStatus, cell: &Arc<ActionCell>) {
        let counter = match status {
            ActionStatus::Succeeded => {
                match cell.origin() {
                    Origin::Cached => self.cached.fetch_add(1, Ordering::Relaxed),
                    Origin::Replayed => self.replayed.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
                &self.succeeded
            }
            ActionStatus::Failed => {
                if let Some(watched) = self.watched.get() {
                    *lock(&watched.last_failure) = Some(Arc::clone(cell));
                }
                let mut kept = lock(&self.failures);
                if kept.len() < MAX_KEPT_FAILURES {
                    kept.push(Arc::clone(cell));
                }
                &self.failed
            }
            ActionStatus::Cancelled => &self.cancelled,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        // An item that ends after its fan-out was dropped may be the last.
        if self.heard && self.closed.load(Ordering::Relaxed) {
            self.end_if_done();
        }
    }

    fn snapshot(&self) -> FanOutSummary {
        FanOutSummary {
            // Ended when it was dropped (a snapshot of one still going: now;
            // one not timed: `UNIX_EPOCH`).
            fan_out: self.record(match (self.heard, self.ended_at.get()) {
                (false, _) => SystemTime::UNIX_EPOCH,
                (true, Some(dropped)) => *dropped,
                (true, None) => SystemTime::now(),
            }),
            failures: lock(&self.failures)
                .iter()
                .map(|c| {
                    // A failed item's error carries its index.
                    let index = c.error_index().map(|i| (self.id, i));
                    c.snapshot_under(Some(self.parent), index)
                })
                .collect(),
        }
    }
}

/// Now, in microseconds since the epoch (never 0: 0 marks no time).
fn now_us() -> u64 {
    micros(SystemTime::now()).max(1) as u64
}

fn time_us(us: u64) -> SystemTime {
    from_micros(i64::try_from(us).unwrap_or(i64::MAX))
}

/// What a progress display reads of a fan-out while it runs.
impl LiveFanOut for FanOutCell {
    fn watch(&self, expected: Option<u64>) {
        let _ = self.watched.set(Box::new(Watched {
            expected,
            ..Watched::default()
        }));
    }

    fn live(&self) -> LiveCounts {
        let [started, succeeded, failed, cancelled] = self.counts();
        let watched = self.watched.get();
        LiveCounts {
            task: self
                .task
                .get()
                .copied()
                .flatten()
                .or_else(|| watched.and_then(|w| w.first_task.get().copied())),
            expected: watched.and_then(|w| w.expected),
            started,
            succeeded,
            failed,
            cancelled,
            cached: self.cached.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            retried: watched.map_or(0, |w| w.retried.load(Ordering::Relaxed)),
            executing: match self.run.durability.fleet() {
                Some(_) => None,
                None => Some(watched.map_or(0, |w| w.executing.load(Ordering::Relaxed))),
            },
            last_failure: watched
                .and_then(|w| lock(&w.last_failure).clone())
                .and_then(|cell| cell.error_line()),
            done: self.task.get().is_some() && self.all_items_ended(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_count_per_key_then_by_order_past_the_bound() {
        let cell = ActionCell::new(ActionId(1), "t", None, false);
        assert_eq!(cell.next_seq(1, 7), 0);
        assert_eq!(cell.next_seq(1, 7), 1);
        assert_eq!(cell.next_seq(2, 7), 0);
        for key in 0..MAX_SEQ_KEYS as u128 {
            cell.next_seq(3, key);
        }
        // Known keys keep counting; new keys are numbered by call order.
        assert_eq!(cell.next_seq(1, 7), 2);
        let a = cell.next_seq(9, 9);
        let b = cell.next_seq(9, 9);
        assert!(a > 1 << 32 && b > a);
        assert_eq!(lock(&cell.state).seq.len(), MAX_SEQ_KEYS);
    }
}
