//! The engine under `map`, `map_stream` and `gather`: pulls inputs lazily,
//! keeps at most `limit` actions in flight, yields `(index, result)` as each
//! finishes. How each item runs is in [`crate::execution::item`].

use crate::execution::action::{run_action, Place};
use crate::execution::item::{Item, SlowStreak};
use crate::policies::limits::ChildWait;
use crate::state::context::{RunRef, RunShared, Scope, ScopeData, EPHEMERAL};
use crate::state::tree::{ActionCell, FanOutCell, FanOutKind};
use crate::task::call::TaskCall;
use crate::threads::lane::Lane;
use crate::watch::sink::{FanOutClosed, FanOutStart, LiveFanOut};
use flyte_core::{panic_message, ActionId, ErrorKind, TaskError};
use futures_core::Stream;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// In a lane, items started ahead per item running (see [`FanOut::lane_fits`]).
const LANE_LOOKAHEAD: usize = 4;

/// Most items started in one poll, so an endless fast input cannot starve
/// the executor when concurrency is unbounded.
const STARTS_PER_POLL: usize = 256;

mod sealed {
    pub trait Sealed {}
}

/// Where a map's inputs come from: an iterator ([`IterSource`]) or an async
/// stream ([`StreamSource`]). Sealed: made by `map` and `map_stream`.
pub trait Source: sealed::Sealed + Send + Unpin + 'static {
    /// One input.
    type Item: Send + 'static;
    #[doc(hidden)]
    fn poll_next_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::Item>>;
    /// How many inputs are left, as `Iterator::size_hint` says.
    #[doc(hidden)]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
}

/// Inputs from an iterator, read one at a time as slots free up.
pub struct IterSource<I>(pub(crate) Box<I>);

impl<I> sealed::Sealed for IterSource<I> {}
impl<S> sealed::Sealed for StreamSource<S> {}

impl<I> Source for IterSource<I>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    type Item = I::Item;
    fn poll_next_item(&mut self, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.0.next())
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// Inputs from an async stream, polled as slots free up.
pub struct StreamSource<S>(pub(crate) Pin<Box<S>>);

impl<S> Source for StreamSource<S>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    type Item = S::Item;
    fn poll_next_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.0.as_mut().poll_next(cx)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// The running fan-out. A `Stream` of `(index, result)` in completion order.
///
/// Items are [`Item`]s: polled inline by whoever polls the fan-out, or on
/// tokio tasks of their own once they prove slow. Dropping the fan-out
/// cancels every item in flight (inline ones at once, spawned ones by
/// abort); each is recorded as cancelled.
pub(crate) struct FanOut<Src: Source, F, T> {
    source: Src,
    make: F,
    limit: usize,
    kind: FanOutKind,
    started: Option<(Scope, Arc<FanOutCell>)>,
    /// The parent gives its concurrency slot back while its fan-out runs.
    parent_wait: Option<ChildWait>,
    /// Taking the parent's slot back at the end.
    reacquire: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    stagger: Option<Duration>,
    next_launch: Option<Pin<Box<Sleep>>>,
    in_flight: FuturesUnordered<Item<T>>,
    /// Slow first polls in a row; at `SLOW_STREAK`, later items are spawned directly.
    slow: SlowStreak,
    /// The parent that adds this fan-out to its totals when it ends (its
    /// summary is not kept: the parent has run too many).
    fold_into: Option<Arc<ActionCell>>,
    /// The task its items run, for its record.
    task: ItemTask,
    /// Its tracing span, when one was made (its items' spans name it as
    /// their parent).
    span: Option<tracing::Span>,
    /// Where its sync items run, when it runs them in a lane.
    lane: Option<Arc<Lane>>,
    /// Results that did not come from an action (a panicking input closure,
    /// no runtime to run on).
    ready: VecDeque<(usize, Result<T, TaskError>)>,
    next_index: usize,
    source_done: bool,
    /// Set while the fan-out's sync items run in a lane, with more started
    /// ahead, waiting in it (see [`FanOut::lane_fits`]).
    lookahead: bool,
    /// An item made while lookahead was ending, waiting for room.
    held: Option<(usize, TaskCall<T>)>,
    /// The next input, read while the stagger's gap runs (so that the end
    /// of the input is seen without waiting one more gap).
    peeked: Option<Src::Item>,
    /// An item failed: its lane waits for the consumer's next poll (or
    /// `cancel_all`) before it starts the next item.
    resume_lane: bool,
}

// Nothing in a FanOut is pinned structurally: item bodies are boxed, and
// results are moved out by value.
impl<Src: Source, F, T> Unpin for FanOut<Src, F, T> {}

impl<Src, F, T> FanOut<Src, F, T>
where
    Src: Source,
    F: FnMut(Src::Item) -> TaskCall<T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    /// `limit` 0 means unbounded; `stagger` spaces starts at least that far apart.
    pub(crate) fn new(
        source: Src,
        make: F,
        limit: usize,
        stagger: Option<Duration>,
        kind: FanOutKind,
    ) -> Self {
        FanOut {
            source,
            make,
            limit: if limit == 0 { usize::MAX } else { limit },
            kind,
            started: None,
            parent_wait: None,
            reacquire: None,
            stagger,
            next_launch: None,
            in_flight: FuturesUnordered::new(),
            slow: SlowStreak::default(),
            fold_into: None,
            task: ItemTask::NoneYet,
            span: None,
            lane: None,
            ready: VecDeque::new(),
            next_index: 0,
            source_done: false,
            lookahead: false,
            held: None,
            peeked: None,
            resume_lane: false,
        }
    }

    /// Attaches the fan-out to the calling action (or to an ephemeral run
    /// when there is none). Done on first poll, where the caller's scope is.
    fn start(&mut self) -> &(Scope, Arc<FanOutCell>) {
        let kind = self.kind;
        let concurrency = u32::try_from(self.limit).ok();
        let parent_wait = &mut self.parent_wait;
        let span = &mut self.span;
        let fold_into = &mut self.fold_into;
        let source = &self.source;
        self.started.get_or_insert_with(|| {
            let parent = Scope::current().unwrap_or_else(ephemeral_scope);
            *parent_wait = parent.slot.as_ref().map(|slot| slot.begin_wait());
            let group = parent.group.clone();
            let run = parent.run.shared();
            let run_span = run.span_id();
            let (cell, kept) = parent.action.add_fan_out(|seq| {
                FanOutCell::new(
                    run,
                    ActionId::fan_out(parent.action.id, seq),
                    parent.action.id,
                    kind,
                    group,
                    concurrency,
                )
            });
            if !kept {
                *fold_into = Some(Arc::clone(&parent.action));
            }
            let sink = &cell.run.sink;
            if sink.hears_starts() {
                let (low, high) = source.size_hint();
                let live: Arc<dyn LiveFanOut> = cell.clone();
                *span = sink.fan_out_started(&FanOutStart {
                    id: cell.id,
                    kind,
                    concurrency,
                    parent_task: parent.action.task,
                    expected: (high == Some(low)).then_some(low as u64),
                    live: &live,
                    run_span,
                });
                if let Some(id) = span.as_ref().and_then(tracing::Span::id) {
                    cell.set_span_id(id);
                }
            }
            (parent, cell)
        })
    }

    /// How many items were started so far (indexes `0..launched()`).
    pub(crate) fn launched(&self) -> usize {
        self.next_index
    }

    /// Aborts every item in flight and waits until each has recorded its
    /// cancellation (prompt: an aborted item stops at its next `.await`),
    /// then takes the parent's slot back.
    pub(crate) async fn cancel_all(&mut self) {
        self.source_done = true;
        self.held = None;
        // Inline items are dropped here, recording their cancellation at
        // once; spawned ones are aborted and awaited until they have.
        let items = std::mem::take(&mut self.in_flight);
        let aborted: Vec<_> = items.into_iter().filter_map(Item::abort).collect();
        for handle in aborted {
            let _ = handle.await;
        }
        // Sync items waiting in the lane now see that no one waits for
        // them: resumed, they end without running.
        self.resume_lane();
        if let Some(wait) = self.parent_wait.take() {
            wait.end().await;
        }
    }

    /// At the end: the parent takes its slot back before it goes on.
    fn poll_reacquire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(wait) = self.parent_wait.take() {
            self.reacquire = Some(Box::pin(wait.end()));
        }
        match &mut self.reacquire {
            Some(fut) => {
                let done = fut.as_mut().poll(cx);
                if done.is_ready() {
                    self.reacquire = None;
                }
                done
            }
            None => Poll::Ready(()),
        }
    }

    /// Whether the stagger lets the next item start now.
    fn may_launch(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(sleep) = &mut self.next_launch {
            if sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            self.next_launch = None;
        }
        true
    }

    /// Whether `call` may run in the fan-out's lane: a sync task of a
    /// bounded `map`, whose starts are not rate-limited or staggered (a
    /// lane starts a waiting item whenever a thread frees up).
    ///
    /// In a lane, `concurrency(n)` items run at once and
    /// [`LANE_LOOKAHEAD`]` × n` more are started ahead, waiting in the lane,
    /// so that a pool thread that finishes an item takes the next one at
    /// once, as rayon's threads do, instead of waiting for this fan-out's
    /// task to be woken on a tokio worker to hand it out; and so that the
    /// lane can wake this task once per batch of results (see `lane.rs`).
    ///
    /// Never when the items go to a fleet's queue: an item started ahead
    /// there is claimed and run by whichever worker has a free slot, so
    /// `concurrency(n)` would let `(1 + LANE_LOOKAHEAD) × n` run at once.
    fn lane_fits(&self, call: &TaskCall<T>) -> bool {
        self.kind == FanOutKind::Map
            && self.limit != usize::MAX
            && self.stagger.is_none()
            && !call.def.is_async()
            && call.def.env().rate_limit_setting().is_none()
            && !self.dispatched()
    }

    /// Whether this fan-out's items are queued for a fleet's workers
    /// rather than run in this process (every call but the root of a
    /// fleet run is).
    fn dispatched(&self) -> bool {
        self.started
            .as_ref()
            .is_some_and(|(scope, _)| scope.run.durability.fleet().is_some())
    }

    fn launch(&mut self, item: Src::Item) {
        let index = self.next_index;
        self.next_index += 1;
        let cell = Arc::clone(&self.start().1);
        match std::panic::catch_unwind(AssertUnwindSafe(|| (self.make)(item))) {
            Ok(call) => {
                if self.task.saw(call.def.name()) {
                    cell.note_first_task(call.def.name());
                }
                if index == 0 && self.lane_fits(&call) {
                    self.lane = Some(Lane::new(self.limit));
                    self.lookahead = true;
                    self.limit = self.limit.saturating_mul(1 + LANE_LOOKAHEAD);
                } else if self.lookahead && !self.lane_fits(&call) {
                    // A closure that calls another kind of task: back to
                    // `n` in flight before this item starts.
                    self.lookahead = false;
                    self.limit /= 1 + LANE_LOOKAHEAD;
                    if self.in_flight.len() >= self.limit {
                        self.held = Some((index, call));
                        return;
                    }
                }
                self.push(index, call);
            }
            Err(payload) => {
                let e =
                    TaskError::new(ErrorKind::Panic, panic_message(&*payload)).with_index(index);
                self.ready.push_back((index, Err(e)));
            }
        }
    }
}

impl<Src: Source, F, T> FanOut<Src, F, T> {
    /// Lets the lane go on after a failed item (see `Lane::resume`).
    fn resume_lane(&mut self) {
        if let Some(lane) = &self.lane {
            lane.resume();
        }
    }
}

impl<Src: Source, F, T: Send + 'static> FanOut<Src, F, T> {
    fn push(&mut self, index: usize, call: TaskCall<T>) {
        let Some((_, cell)) = &self.started else {
            return; // `launch` started the fan-out before making the call
        };
        let place = Place::Item {
            fan_out: Arc::clone(cell),
            index,
            lane: self.lane.clone(),
        };
        let body = Box::pin(run_action(call, place));
        self.in_flight.push(Item::new(index, body, &self.slow));
    }
}

impl<Src: Source, F, T> Drop for FanOut<Src, F, T> {
    fn drop(&mut self) {
        // Spawned items still in flight are aborted as they drop, and record
        // their cancellation a moment later: the run waits for them.
        if self.in_flight.iter().any(Item::is_spawned) {
            if let Some((_, cell)) = &self.started {
                cell.run.add_fan_out(cell);
            }
        }
        if let (Some(parent), Some((_, cell))) = (&self.fold_into, &self.started) {
            parent.fold_fan_out(cell);
        }
        // Dropped: the items go first, then the lane drains what waited.
        drop(std::mem::take(&mut self.in_flight));
        self.resume_lane();
        if let Some((_, cell)) = &self.started {
            cell.close(self.task.name());
            if cell.run.sink.is_heard() {
                cell.run.sink.fan_out_closed(&FanOutClosed {
                    task: self.task.name(),
                    counts: cell.counts(),
                    span: self.span.as_ref(),
                });
            }
        }
    }
}

/// Which task a fan-out's items run: told to its record.
#[derive(Debug, Clone, Copy)]
enum ItemTask {
    NoneYet,
    One(&'static str),
    Several,
}

impl ItemTask {
    /// Notes an item's task; true for the first item.
    fn saw(&mut self, task: &'static str) -> bool {
        *self = match *self {
            ItemTask::NoneYet => {
                *self = ItemTask::One(task);
                return true;
            }
            // The same task gives the same pointer: most checks skip the bytes.
            ItemTask::One(one) if std::ptr::eq(one, task) || one == task => ItemTask::One(one),
            _ => ItemTask::Several,
        };
        false
    }

    fn name(self) -> Option<&'static str> {
        match self {
            ItemTask::One(task) => Some(task),
            _ => None,
        }
    }
}

fn ephemeral_scope() -> Scope {
    Scope::new(ScopeData {
        run: RunRef::Run(RunShared::new(None)),
        action: Arc::new(ActionCell::new(EPHEMERAL, "ephemeral", None, false)),
        group: None,
        slot: None,
        attempt_cancel: None,
    })
}

impl<Src, F, T> Stream for FanOut<Src, F, T>
where
    Src: Source,
    F: FnMut(Src::Item) -> TaskCall<T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    type Item = (usize, Result<T, TaskError>);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.started.is_none() && tokio::runtime::Handle::try_current().is_err() {
            this.source_done = true;
            this.started = Some(ephemeral_scope_with_cell(this.kind));
            this.ready.push_back((
                0,
                Err(TaskError::new(
                    ErrorKind::Runtime,
                    "flyte futures run on tokio: await them inside a tokio runtime, \
                     or use `.wait()` / `flyte::run` from sync code",
                )),
            ));
        }
        this.start();
        if std::mem::take(&mut this.resume_lane) {
            // The consumer goes on after a failed item: so does the lane.
            this.resume_lane();
        }
        if this.held.is_some() && this.in_flight.len() < this.limit {
            if let Some((index, call)) = this.held.take() {
                this.push(index, call);
            }
        }
        let mut budget = STARTS_PER_POLL;
        while !this.source_done
            && this.held.is_none()
            && this.in_flight.len() < this.limit
            && budget > 0
        {
            let item = match this.peeked.take() {
                Some(item) => item,
                None => match this.source.poll_next_item(cx) {
                    Poll::Ready(Some(item)) => item,
                    Poll::Ready(None) => {
                        this.source_done = true;
                        break;
                    }
                    Poll::Pending => break,
                },
            };
            if !this.may_launch(cx) {
                this.peeked = Some(item);
                break;
            }
            this.launch(item);
            budget -= 1;
            if let Some(gap) = this.stagger {
                this.next_launch = Some(Box::pin(tokio::time::sleep(gap)));
            }
        }
        if let Some(done) = this.ready.pop_front() {
            return Poll::Ready(Some(done));
        }
        // `Ready(())`: nothing is in flight.
        let drained = match this.in_flight.poll_next_unpin(cx) {
            Poll::Ready(Some(done)) => {
                this.resume_lane |= done.1.is_err();
                return Poll::Ready(Some(done));
            }
            Poll::Ready(None) => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        };
        match drained {
            Poll::Ready(()) if this.held.is_some() => {
                // Room for the held item now: poll again to start it.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(()) if this.source_done => this.poll_reacquire(cx).map(|()| None),
            _ => {
                if budget == 0 {
                    // More input is ready; let other tasks run first.
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }
}

fn ephemeral_scope_with_cell(kind: FanOutKind) -> (Scope, Arc<FanOutCell>) {
    let scope = ephemeral_scope();
    let cell = Arc::new(FanOutCell::new(
        scope.run.shared(),
        ActionId(0),
        ActionId(0),
        kind,
        None,
        None,
    ));
    (scope, cell)
}
