//! One fan-out item in flight: polled inline by the fan-out's own task, or,
//! once it proves slow, on a tokio task of its own.
//!
//! Inline polling costs no spawn and no cross-thread wake-up, which for
//! short async items is most of the cost of a hand-written `JoinSet` loop
//! (see BENCHMARKS.md). An item whose first poll takes longer than
//! [`SLOW_POLL`] (CPU work between awaits) marks its fan-out as slow: from
//! then on new items are spawned on tokio tasks, to run in parallel across
//! worker threads; and the item itself, if it is still pending, moves to a
//! task of its own.

use flyte_core::TaskError;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A first poll longer than this marks an item, and its fan-out, as slow.
pub(crate) const SLOW_POLL: Duration = Duration::from_micros(100);

type ItemBody<T> = Pin<Box<dyn Future<Output = Result<T, TaskError>> + Send>>;

/// The future of item `index`; completes with `(index, result)`.
pub(crate) struct Item<T> {
    index: usize,
    state: State<T>,
    /// The fan-out's flag: set once any of its items proves slow.
    slow: Arc<AtomicBool>,
}

enum State<T> {
    /// Not polled yet, or polled inline.
    Inline {
        body: ItemBody<T>,
        polled: bool,
    },
    /// On a task of its own; aborted if the item is dropped.
    Spawned(JoinHandle<Result<T, TaskError>>),
    Done,
}

impl<T: Send + 'static> Item<T> {
    /// Item `index`: inline unless the fan-out has seen slow items.
    pub(crate) fn new(index: usize, body: ItemBody<T>, slow: &Arc<AtomicBool>) -> Self {
        let state = if slow.load(Ordering::Relaxed) {
            State::Spawned(tokio::spawn(body))
        } else {
            State::Inline {
                body,
                polled: false,
            }
        };
        Item {
            index,
            state,
            slow: Arc::clone(slow),
        }
    }

    /// Aborts a spawned item, returning its handle to await the abort.
    pub(crate) fn abort(mut self) -> Option<JoinHandle<Result<T, TaskError>>> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Spawned(handle) => {
                handle.abort();
                Some(handle)
            }
            _ => None,
        }
    }
}

impl<T: Send + 'static> Future for Item<T> {
    type Output = (usize, Result<T, TaskError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let result = match &mut this.state {
            State::Inline { body, polled } => {
                let first = !*polled;
                *polled = true;
                let started = first.then(Instant::now);
                let polled = body.as_mut().poll(cx);
                let slow = started.is_some_and(|t| t.elapsed() >= SLOW_POLL);
                match polled {
                    Poll::Ready(result) => {
                        if slow {
                            // CPU work that ended in one poll: later items
                            // go to tasks of their own, to run in parallel.
                            this.slow.store(true, Ordering::Relaxed);
                        }
                        result
                    }
                    Poll::Pending => {
                        if slow {
                            this.promote(cx);
                        }
                        return Poll::Pending;
                    }
                }
            }
            State::Spawned(handle) => match Pin::new(handle).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(result)) => result,
                // Aborted only when the item is dropped, and panics are
                // caught inside the action: the runtime is shutting down.
                Poll::Ready(Err(_)) => Err(TaskError::cancelled()),
            },
            State::Done => return Poll::Pending,
        };
        this.state = State::Done;
        Poll::Ready((this.index, result))
    }
}

impl<T: Send + 'static> Item<T> {
    /// Moves a slow inline item onto a task of its own (its body is a boxed
    /// future: moving the box does not move the pinned future), and marks
    /// the fan-out slow so that its next items are spawned directly.
    fn promote(&mut self, cx: &mut Context<'_>) {
        if let State::Inline { body, .. } = std::mem::replace(&mut self.state, State::Done) {
            self.state = State::Spawned(tokio::spawn(body));
            self.slow.store(true, Ordering::Relaxed);
            // Polled again at once, as spawned, to wait for the task's end.
            cx.waker().wake_by_ref();
        }
    }
}

impl<T> Item<T> {
    /// Whether the item runs on a task of its own (its cancellation is
    /// recorded a moment after it is aborted, not at once).
    pub(crate) fn is_spawned(&self) -> bool {
        matches!(self.state, State::Spawned(_))
    }
}

impl<T> Drop for Item<T> {
    fn drop(&mut self) {
        // An inline body is dropped with the item (recording its
        // cancellation at once); a spawned one must be aborted.
        if let State::Spawned(handle) = &self.state {
            handle.abort();
        }
    }
}
