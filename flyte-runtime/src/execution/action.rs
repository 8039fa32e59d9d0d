//! Running one action: its id, its attempts under the environment's limits,
//! backoff between them, panics and timeouts, and its record in the run tree.

use crate::durability::cache::{self, CacheKey, Claim, Flight};
use crate::durability::record::{Fleet, Mode};
use crate::execution::attempt::{self, lease_lapsed, InLane};
use crate::policies::limits::EnvLimits;
use crate::state::context::{RunRef, RunShared, Scope, ScopeData, EPHEMERAL};
use crate::state::tree::{ActionCell, ActionStatus, FanOutCell, Origin};
use crate::task::body::{ExecutionKind, KeptOutput, OutputCheck, OutputEncoder};
use crate::task::call::TaskCall;
use crate::threads::lane::Lane;
use crate::watch::sink::{ActionEnded, ActionStart, Retry};
use flyte_core::backend::RunStore;
use flyte_core::queue::{LeaseClock, Submit};
use flyte_core::store::{ActionEnd, OutputRef};
use flyte_core::sync::lock;
use flyte_core::{ActionId, Backoff, Cache, ErrorKind, TaskDef, TaskError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::{Instrument, Span};

/// Where a new action sits in the run tree.
pub(crate) enum Place {
    /// The root of a run.
    Root(Arc<RunShared>),
    /// Awaited directly by the action of `Scope`.
    Direct(Scope),
    /// Item `index` of a `map` or `gather` (the fan-out knows its run),
    /// run in the map's `lane` when it has one.
    Item {
        fan_out: Arc<FanOutCell>,
        index: usize,
        lane: Option<Arc<Lane>>,
    },
    /// An action of a fleet run that this worker claimed: its id, parent
    /// and index come from the queue.
    Claimed {
        run: Arc<RunShared>,
        id: ActionId,
        parent: Option<ActionId>,
        index: Option<usize>,
        group: Option<Arc<str>>,
    },
}

/// Where an action runs, and so who records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Remote {
    /// In this process; the run's store records it.
    Local,
    /// Queued for a fleet worker: its row in the queue is its record.
    Dispatched,
    /// Claimed from the queue by this worker, which completes its row.
    Claimed,
}

/// Where a new action sits, settled from its [`Place`] once.
struct Seat {
    run: RunRef,
    id: ActionId,
    group: Option<Arc<str>>,
    /// The action that started it (for the store).
    parent: Option<ActionId>,
    /// The parent's cell, when it awaits this action directly.
    parent_cell: Option<Arc<ActionCell>>,
    index: Option<usize>,
    lane: Option<Arc<Lane>>,
    remote: Remote,
}

impl Place {
    /// Where an action of task `def` (named `task`) with inputs hashing to
    /// `input` sits at this place.
    fn seat(self, def: &'static TaskDef, task: &str, input: flyte_core::InputHash) -> Seat {
        match self {
            Place::Root(run) => Seat {
                run: RunRef::Run(run),
                id: ActionId::root(task, input),
                group: None,
                parent: None,
                parent_cell: None,
                index: None,
                lane: None,
                remote: Remote::Local,
            },
            Place::Direct(parent) => {
                // The TaskDef's address tells tasks apart without hashing the name.
                let seq = parent
                    .action
                    .next_seq(def as *const TaskDef as usize, input.0);
                Seat {
                    id: ActionId::child(parent.action.id, task, input, seq),
                    run: parent.run.clone(),
                    group: parent.group.clone(),
                    parent: Some(parent.action.id),
                    parent_cell: Some(Arc::clone(&parent.action)),
                    index: None,
                    lane: None,
                    remote: Remote::Local,
                }
            }
            Place::Item {
                fan_out,
                index,
                lane,
            } => {
                fan_out.item_started();
                Seat {
                    id: ActionId::child(fan_out.id, task, input, index as u64),
                    group: fan_out.group().clone(),
                    parent: Some(fan_out.parent),
                    parent_cell: None,
                    index: Some(index),
                    lane,
                    remote: Remote::Local,
                    run: RunRef::FanOut(fan_out),
                }
            }
            Place::Claimed {
                run,
                id,
                parent,
                index,
                group,
            } => Seat {
                run: RunRef::Run(run),
                id,
                group,
                parent,
                parent_cell: None,
                index,
                lane: None,
                remote: Remote::Claimed,
            },
        }
    }
}

/// What a durable action does before its attempts.
enum Prepared<T> {
    /// It needs no attempt: its output was replayed or cached (or it cannot
    /// run: its cache key could not be made). Already recorded.
    Done(Result<T, TaskError>),
    /// It runs; then its output is handled as this says.
    Run(Durable<T>),
    /// Another call in this process computes its cached output: wait until
    /// this closes, then prepare again.
    Wait(tokio::sync::watch::Receiver<()>),
}

/// What a durable action needs after its attempts.
///
/// Small: it is held across the attempts, so it is part of every recorded
/// map item's future; what only cached actions need is boxed.
struct Durable<T> {
    /// Where its output is cached, when it is.
    cache: Option<Box<Keep>>,
    /// Set when the output is recorded and not cached: it is then encoded
    /// straight into its record.
    encoder: Option<OutputEncoder<T>>,
}

/// Where a cached action keeps its output.
struct Keep {
    key: CacheKey,
    store: Arc<dyn RunStore>,
    def: &'static TaskDef,
    output_type: &'static str,
    output_check: OutputCheck,
    /// Held while it computes the output (dropped after the output is kept:
    /// the calls waiting for it then find it).
    _flight: Option<Flight>,
}

/// Runs `call` as a new action at `place`.
pub(crate) async fn run_action<T: Send + 'static>(
    call: TaskCall<T>,
    place: Place,
) -> Result<T, TaskError> {
    // One rule everywhere: a run refuses to start when two tasks share a
    // name (checked as it starts), and so does a call or a map awaited
    // outside any run.
    let outside_any_run = match &place {
        Place::Root(_) => true,
        Place::Item { fan_out, .. } => matches!(fan_out.parent, EPHEMERAL),
        Place::Direct(_) | Place::Claimed { .. } => false,
    };
    if outside_any_run {
        crate::registry::registry().check()?;
    }
    // A parent awaiting a direct child gives its concurrency slot back meanwhile.
    let wait = match &place {
        Place::Direct(parent) => parent.slot.as_ref().map(|slot| slot.begin_wait()),
        _ => None,
    };
    let action = Action::start(call.def, &call, place);
    let result = match action.span() {
        None => action.run(call).await,
        // Boxed: the common path (no span) keeps a small future.
        Some(span) => Box::pin(action.run(call).instrument(span)).await,
    };
    if let Some(wait) = wait {
        // Boxed: the common path (no limits) keeps a small future.
        Box::pin(wait.end()).await;
    }
    result
}

/// A started action. Dropping it before [`Action::run`] ends records the
/// action as cancelled.
pub(crate) struct Action {
    scope: Scope,
    limits: Option<Arc<EnvLimits>>,
    /// The input index, when the action is a fan-out item.
    index: Option<usize>,
    /// Where its sync attempts run, when it is an item of a map that has a
    /// lane.
    lane: Option<Arc<Lane>>,
    /// The parent, when it counts this child instead of keeping its record.
    counted_by: Option<Arc<ActionCell>>,
    /// The action that started this one (for the store).
    parent: Option<ActionId>,
    max_attempts: u32,
    finished: bool,
    /// Its tracing span, when one was made (boxed: most actions have none).
    span: Option<Box<Span>>,
    /// Where it runs.
    remote: Remote,
    /// Whether the run's store records its output (it may then replay one).
    recorded: bool,
    /// Whether its first attempt begins in the poll that made it (no cache
    /// to read first, no slot or rate window to wait for): an async body's
    /// start is then the action's queued time, without reading the clock.
    starts_when_made: bool,
}

impl Action {
    pub(crate) fn start<T: 'static>(
        def: &'static TaskDef,
        call: &TaskCall<T>,
        place: Place,
    ) -> Action {
        let task = def.name();
        let is_item = matches!(place, Place::Item { .. });
        let seat = place.seat(def, task, call.body.input_hash());
        let run: &RunShared = &seat.run;
        let timed = run.sink.is_heard();
        let cell = Arc::new(ActionCell::new(seat.id, task, seat.group, timed));
        let counted_by = seat.parent_cell.filter(|parent| !parent.add_child(&cell));
        if !is_item {
            // Items are counted by their fan-out instead (a direct call of
            // an item reaches the run through that fan-out, and is counted).
            run.action_started();
        }
        let limits = run.limits.for_env(def.env());
        let slot = limits.as_ref().and_then(|l| l.slot());
        let mode = run.durability.mode();
        // In a fleet run every call but the root is queued for a worker.
        let remote = match seat.remote {
            Remote::Local if matches!(mode, Mode::Fleet) && seat.parent.is_some() => {
                Remote::Dispatched
            }
            remote => remote,
        };
        // A claimed action's row is its record: only its cache needs the
        // durable path.
        let recorded = !matches!(mode, Mode::Unrecorded) && remote != Remote::Claimed;
        let span = match run.sink.hears_starts() {
            true => {
                let parent_span = match (&seat.run, seat.parent) {
                    // An item hangs under its fan-out's span, the root under
                    // the run's (neither is entered while it starts them:
                    // that would cost every poll); a direct call under the
                    // current span, its parent's attempt.
                    (RunRef::FanOut(fan_out), _) if seat.index.is_some() => fan_out.span_id(),
                    (_, None) => run.span_id(),
                    (_, Some(_)) => None,
                };
                run.sink.action_started(&ActionStart {
                    id: cell.id,
                    task,
                    index: seat.index,
                    parent_span,
                })
            }
            false => None,
        };
        Action {
            // A task's own children start outside any group.
            scope: Scope::new(ScopeData {
                run: seat.run,
                action: cell,
                group: None,
                slot,
                attempt_cancel: None,
            }),
            limits,
            index: seat.index,
            lane: seat.lane,
            counted_by,
            parent: seat.parent,
            max_attempts: def.retries_for(call.retries).saturating_add(1),
            finished: false,
            span: span.map(Box::new),
            remote,
            recorded,
            starts_when_made: false,
        }
    }

    /// The fan-out and index, when this action is an item.
    fn item(&self) -> Option<(&Arc<FanOutCell>, usize)> {
        let index = self.index?;
        match &self.scope.run {
            RunRef::FanOut(fan_out) => Some((fan_out, index)),
            RunRef::Run(_) => None,
        }
    }

    pub(crate) fn cell(&self) -> &Arc<ActionCell> {
        &self.scope.action
    }

    /// The action's tracing span, when one was made: the caller runs the
    /// action inside it.
    pub(crate) fn span(&self) -> Option<Span> {
        self.span.as_deref().cloned()
    }

    /// [`Action::run`] inside the action's span, when it has one (for a
    /// root or a claimed action; `run_action` keeps an item's future
    /// smaller by boxing only a traced one).
    pub(crate) async fn run_traced<T: Send + 'static>(
        self,
        call: TaskCall<T>,
    ) -> Result<T, TaskError> {
        match self.span() {
            None => self.run(call).await,
            Some(span) => self.run(call).instrument(span).await,
        }
    }

    /// Runs every attempt allowed, then records the outcome; in a fleet
    /// run, a call (not the root, nor an action this worker claimed) is
    /// queued for a worker instead.
    async fn run<T: Send + 'static>(mut self, call: TaskCall<T>) -> Result<T, TaskError> {
        if self.remote == Remote::Dispatched {
            if let Some(fleet) = self.scope.run.durability.fleet() {
                let fleet = fleet.clone();
                // Boxed: a local action's future does not grow by it.
                return Box::pin(self.dispatch(call, fleet)).await;
            }
        }
        let cache = call.def.cache_for(call.cache);
        self.starts_when_made =
            cache == Cache::Disable && self.limits.is_none() && self.scope.slot.is_none();
        let durable = if cache != Cache::Disable || self.recorded {
            loop {
                match self.before_attempts(&call, cache) {
                    Prepared::Run(durable) => break Some(durable),
                    Prepared::Done(result) => return result,
                    // Boxed, like every rare wait here.
                    Prepared::Wait(mut other) => {
                        let _closed = Box::pin(other.changed()).await;
                    }
                }
            }
        } else {
            None
        };
        // Awaited here on every path: a durable action's future is no
        // larger than a plain one's, and needs no box of its own.
        let keep_output = durable.as_ref().is_some_and(|d| d.encoder.is_none());
        let (result, bytes) = self.attempts(call, keep_output).await;
        match durable {
            None => self.finish(&result, None),
            Some(durable) => self.after_attempts(&result, bytes, durable),
        }
        result
    }

    /// Queues the call for a worker of the fleet and waits for its outcome.
    /// Dropping the future cancels it wherever it runs.
    async fn dispatch<T: Send + 'static>(
        mut self,
        call: TaskCall<T>,
        fleet: Fleet,
    ) -> Result<T, TaskError> {
        let def = call.def;
        let input = match call.body.encode_inputs() {
            Ok(input) => input,
            Err(e) => {
                let e = TaskError::new(
                    ErrorKind::Input,
                    format!(
                        "its inputs cannot be sent to a fleet worker: {}",
                        e.message()
                    ),
                )
                .into_non_retryable();
                let result = Err(self.describe(e, 1));
                self.finish(&result, None);
                return result;
            }
        };
        let cell = Arc::clone(&self.scope.action);
        let env = def.env();
        let submit = Submit {
            run: fleet.run,
            execution: fleet.execution,
            id: cell.id,
            parent: self.parent,
            item: self.item().map(|(f, index)| (f.id, index as u64)),
            task: def.name(),
            version: def.version(),
            group: cell.group.clone(),
            input,
            retries: call.retries,
            timeout: call.timeout,
            env: env.name(),
            env_concurrency: env.concurrency_setting().unwrap_or(0) as u32,
            env_rate: env.rate_limit_setting(),
            no_worker_after: fleet.no_worker_after,
        };
        let settled = fleet.queue.submit(submit).await;
        let result = match settled {
            Ok(settled) => {
                cell.attempt.store(settled.attempts, Ordering::Relaxed);
                if settled.origin != Origin::Executed {
                    cell.set_origin(settled.origin);
                }
                match (settled.status, settled.output) {
                    (ActionStatus::Succeeded, Some(bytes)) => call.body.decode_output(&bytes),
                    (ActionStatus::Succeeded, None) => Err(TaskError::new(
                        ErrorKind::Store,
                        "its worker completed it without an output",
                    )),
                    (_, _) => Err(settled.error.unwrap_or_else(|| {
                        TaskError::new(ErrorKind::Store, "it failed without an error")
                    })),
                }
            }
            Err(e) => Err(e.into()),
        };
        let attempts = cell.attempt.load(Ordering::Relaxed).max(1);
        let result = result.map_err(|e| self.describe(e, attempts));
        self.finish(&result, None);
        result
    }

    /// For an action that may replay a recorded output, take one from the
    /// cache, or must leave its output in the store: its output when it
    /// needs no attempt, else what to do with the attempts' output.
    fn before_attempts<T: Send + 'static>(
        &mut self,
        call: &TaskCall<T>,
        cache: Cache,
    ) -> Prepared<T> {
        let def = call.def;
        let scope: &ScopeData = &self.scope;
        let (durability, cell) = (&scope.run.durability, &scope.action);
        if let Some(output) = durability.replay(cell.id, cell.task, &*call.body) {
            // Its row from the earlier execution stands as it is.
            cell.set_origin(Origin::Replayed);
            let result = Ok(output);
            self.finish(&result, None);
            return Prepared::Done(result);
        }
        let key = match cache {
            Cache::Disable => None,
            _ => match CacheKey::of(def, &*call.body) {
                Ok(key) => Some(key),
                Err(e) => {
                    let result = Err(self.describe(e, 1));
                    self.finish(&result, None);
                    return Prepared::Done(result);
                }
            },
        };
        let cache_store = key.and_then(|key| Some((key, durability.cache_store()?.clone())));
        let mut flight = None;
        if let (Cache::Auto, Some((key, store))) = (cache, &cache_store) {
            // One call per key computes at a time in this process; the
            // others wait for it, then find its output here.
            match cache::claim(*key) {
                Claim::Mine(mine) => flight = Some(mine),
                Claim::Theirs(done) => return Prepared::Wait(done),
            }
            if let Some((output, bytes)) = cache::recall(&**store, *key, def.name(), &*call.body) {
                self.scope.action.set_origin(Origin::Cached);
                let result = Ok(output);
                self.finish(&result, Some(OutputRef::Bytes(&bytes)));
                return Prepared::Done(result);
            }
        }
        Prepared::Run(Durable {
            // Recorded and not cached: the output is encoded into the record
            // itself, after the attempt (no buffer of its own).
            encoder: match cache_store {
                Some(_) => None,
                None => call.body.output_encoder(),
            },
            cache: cache_store.map(|(key, store)| {
                Box::new(Keep {
                    key,
                    store,
                    def,
                    output_type: call.body.output_type(),
                    output_check: call.body.output_check(),
                    _flight: flight,
                })
            }),
        })
    }

    /// Caches and records what the attempts of a durable action returned.
    fn after_attempts<T>(
        &mut self,
        result: &Result<T, TaskError>,
        bytes: Option<Vec<u8>>,
        durable: Durable<T>,
    ) {
        if let (Ok(_), Some(keep), Some(bytes)) = (result, &durable.cache, &bytes) {
            let output = (keep.output_type, keep.output_check);
            cache::keep(&*keep.store, keep.key, keep.def, output, bytes);
        }
        match (result, durable.encoder) {
            (Ok(value), Some(encode)) => {
                let encode = |buf: &mut Vec<u8>| encode(value, buf);
                self.finish(result, Some(OutputRef::Encode(&encode)));
            }
            _ => self.finish(result, bytes.as_deref().map(OutputRef::Bytes)),
        }
    }

    /// Every attempt allowed; with `keep_output`, also the encoded output of
    /// the attempt that succeeded.
    async fn attempts<T: Send + 'static>(
        &mut self,
        call: TaskCall<T>,
        keep_output: bool,
    ) -> (Result<T, TaskError>, Option<Vec<u8>>) {
        let timeout = call.def.timeout_for(call.timeout);
        let mut body = call.body;
        let mut attempt = 1;
        let (result, kept) = loop {
            self.scope.action.attempt.store(attempt, Ordering::Relaxed);
            // Another attempt needs the inputs again: copy them first.
            let spare = (attempt < self.max_attempts).then(|| body.duplicate());
            // One slot per attempt: a timed-out sync attempt that ends late
            // cannot leave its output as another attempt's.
            let kept = keep_output.then(KeptOutput::default);
            let execution = body.execute(kept.clone()).into_kind();
            let result = self.attempt(execution, timeout).await;
            match (result, spare) {
                (Err(e), Some(Ok(next))) if e.is_retryable() => {
                    // Another attempt follows: each one's times are kept.
                    self.scope.action.keep_attempt_times();
                    // Boxed, like every rare wait here, so that the future of
                    // an action that needs none stays small.
                    let backoff = call.def.backoff_for(call.backoff);
                    let delay = self.backoff_delay(&backoff, attempt);
                    let sink = &self.scope.run.sink;
                    if sink.is_heard() {
                        sink.retrying(&Retry {
                            task: call.def.name(),
                            attempt,
                            wait: delay,
                            error: &e,
                        });
                    }
                    if attempt == 1 {
                        // Counted here, off the path of items that need no retry.
                        if let Some((fan_out, _)) = self.item() {
                            fan_out.item_retried();
                        }
                    }
                    Box::pin(tokio::time::sleep(delay)).await;
                    body = next;
                    attempt += 1;
                }
                (Err(e), Some(Err(copy_error))) if e.is_retryable() => {
                    let why = format!(
                        "{} (not retried: the inputs could not be copied for another attempt: {})",
                        e.message(),
                        copy_error.message()
                    );
                    break (Err(TaskError::new(e.kind(), why)), None);
                }
                (result, _) => break (result, kept),
            }
        };
        if attempt > 1 {
            self.scope.action.keep_attempt_times();
        }
        let bytes = match (&result, kept) {
            (Ok(_), Some(kept)) => lock(&kept).take(),
            _ => None,
        };
        (result.map_err(|e| self.describe(e, attempt)), bytes)
    }

    /// One attempt, inside the environment's concurrency and rate limits.
    async fn attempt<T: Send + 'static>(
        &self,
        execution: ExecutionKind<T>,
        timeout: Option<Duration>,
    ) -> Result<T, TaskError> {
        let scope: &ScopeData = &self.scope;
        if let Some(slot) = &scope.slot {
            Box::pin(slot.acquire()).await;
        }
        if let Some(limits) = &self.limits {
            Box::pin(limits.admit()).await;
        }
        let lease = self.claimed_lease();
        if lease.as_ref().is_some_and(|lease| !lease.is_fresh()) {
            if let Some(slot) = &scope.slot {
                slot.release();
            }
            return Err(lease_lapsed());
        }
        // Boxed: an attempt's future is large, and keeping it out of the
        // action's own future keeps each map item's allocation small (the
        // measured effect is in BENCHMARKS.md).
        // A map's sync items run in its lane (see `lane.rs`); not their
        // children, which must never wait behind the item that awaits them.
        let number = scope.action.attempt.load(Ordering::Relaxed);
        let lane = self.lane.as_ref().map(|lane| InLane {
            lane,
            retries_left: number < self.max_attempts,
        });
        // Counted as executing in its fan-out while a display watches it.
        let watched = match self.item() {
            Some((fan_out, _)) if fan_out.is_watched() => Some(Arc::clone(fan_out)),
            _ => None,
        };
        let at_once = number == 1 && self.starts_when_made;
        let body = attempt::run(
            execution,
            &self.scope,
            timeout,
            lane,
            lease,
            watched,
            at_once,
        );
        let sink = &scope.run.sink;
        let span = match sink.hears_starts() {
            true => sink.attempt_started(scope.action.task, number),
            false => None,
        };
        let result = match span {
            None => Box::pin(body).await,
            Some(span) => Box::pin(body.instrument(span)).await,
        };
        if let Some(slot) = &scope.slot {
            slot.release();
        }
        result
    }

    /// On a worker, the lease a claimed action runs under: no attempt of
    /// it begins once the lease has lapsed (the worker was paused, or cut
    /// off from the database, past its lease): the fleet has given the
    /// action to another worker, which may have run it already. Checked
    /// here, and again on the thread of a sync body just before it begins
    /// (see [`attempt::run`]).
    fn claimed_lease(&self) -> Option<Arc<LeaseClock>> {
        if self.remote != Remote::Claimed {
            return None;
        }
        let fleet = self.scope.run.durability.fleet();
        fleet.and_then(|f| f.lease.clone())
    }

    /// The wait before retry number `attempt`. Jitter is drawn from the
    /// action's id, the attempt and the clock: enough to spread retries of
    /// many items apart, without a random-number crate.
    fn backoff_delay(&self, backoff: &Backoff, attempt: u32) -> Duration {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&self.scope.action.id.0.to_le_bytes());
        hasher.update(&attempt.to_le_bytes());
        hasher.update(&nanos.to_le_bytes());
        let unit = (hasher.digest() >> 11) as f64 / (1_u64 << 53) as f64;
        backoff.delay(attempt, unit)
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
        match self.index {
            Some(index) => e.with_index(index),
            None => e,
        }
    }

    fn finish<T>(&mut self, result: &Result<T, TaskError>, output: Option<OutputRef<'_>>) {
        self.end(ActionStatus::of(result), result.as_ref().err(), output);
    }

    /// The one ending of every action, however it ends (its attempts
    /// returned, its output was replayed or cached, its fleet worker
    /// answered, or it was dropped): the live tree counts it, then the
    /// run's sink hears it.
    fn end(
        &mut self,
        status: ActionStatus,
        error: Option<&TaskError>,
        output: Option<OutputRef<'_>>,
    ) {
        self.finished = true;
        let scope: &ScopeData = &self.scope;
        let cell = &scope.action;
        // It ended when its last attempt's body did (a lane hands results
        // over in batches, later); one cancelled, or that never began, now.
        let ended_at = || match status {
            ActionStatus::Cancelled => std::time::SystemTime::now(),
            _ => cell
                .executed_until()
                .unwrap_or_else(std::time::SystemTime::now),
        };
        let item = self.item();
        match item {
            // A successful item's record is dropped right away: only count it.
            Some((fan_out, _)) if matches!(status, ActionStatus::Succeeded) => {
                fan_out.item_finished(status, cell)
            }
            Some((fan_out, _)) => {
                cell.finish(status, ended_at(), error.cloned());
                fan_out.item_finished(status, cell);
            }
            None => {
                cell.finish(status, ended_at(), error.cloned());
                scope.run.action_ended();
            }
        }
        if let Some(parent) = &self.counted_by {
            parent.count_child(status, cell);
        }
        let sink = &scope.run.sink;
        if !sink.is_heard() {
            return;
        }
        let ended_at = ended_at();
        let attempts = cell.attempt.load(Ordering::Relaxed);
        // Kept only when there was more than one (the lock is off the path
        // of an action that needed one attempt).
        let attempt_times = match attempts > 1 {
            true => cell.attempt_times(),
            false => Vec::new(),
        };
        sink.action(&ActionEnded {
            end: ActionEnd {
                id: cell.id,
                parent: self.parent,
                item: item.map(|(fan_out, index)| (fan_out.id, index as u64)),
                task: cell.task,
                group: cell.group.as_ref(),
                status,
                attempts,
                queued_at: cell.queued_at,
                // One that never began executed for no time.
                started_at: cell.began_at().unwrap_or(ended_at),
                ended_at,
                attempt_times: &attempt_times,
                error,
                origin: cell.origin(),
                output,
            },
            by_fleet: self.remote != Remote::Local,
            span: self.span.as_deref(),
        });
    }
}

impl Drop for Action {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.scope.action.cancel.cancel();
        let attempt = self.scope.action.attempt.load(Ordering::Relaxed);
        let error = self.describe(TaskError::cancelled(), attempt);
        self.end(ActionStatus::Cancelled, Some(&error), None);
    }
}
