//! One fan-out item in flight: polled inline by the fan-out's own task, or,
//! once it proves slow, on a tokio task of its own.
//!
//! Inline polling costs no spawn and no cross-thread wake-up, which for
//! short async items is most of the cost of a hand-written `JoinSet` loop
//! (see BENCHMARKS.md). An item whose first poll takes longer than
//! [`SLOW_POLL`] (CPU work between awaits) moves, if it is still pending,
//! to a task of its own; [`SLOW_STREAK`] such first polls in a row mark its
//! fan-out as slow: from then on new items are spawned on tokio tasks, to
//! run in parallel across worker threads. One slow poll alone may be the
//! system preempting the thread: on a busy 2-core machine, one in a few
//! million polls is (it once switched a 10,000,000-item map of trivial
//! tasks to spawning, 4.8 s -> 11.8 s).

use flyte_core::TaskError;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A first poll longer than this marks an item, and its fan-out, as slow.
pub(crate) const SLOW_POLL: Duration = Duration::from_micros(100);

/// Slow first polls in a row that mark a fan-out slow.
pub(crate) const SLOW_STREAK: u32 = 3;

/// A fan-out's count of slow first polls in a row; at [`SLOW_STREAK`] it
/// stays there (the fan-out is slow).
pub(crate) type SlowStreak = Arc<AtomicU32>;

fn is_slow(streak: &AtomicU32) -> bool {
    streak.load(Ordering::Relaxed) >= SLOW_STREAK
}

/// Counts a first poll: slow ones add to the streak, fast ones end it
/// (unless the fan-out is already slow).
fn count_first_poll(streak: &AtomicU32, slow: bool) {
    let now = streak.load(Ordering::Relaxed);
    if slow && now < SLOW_STREAK {
        streak.store(now + 1, Ordering::Relaxed);
    } else if !slow && now != 0 && now < SLOW_STREAK {
        streak.store(0, Ordering::Relaxed);
    }
}

type ItemBody<T> = Pin<Box<dyn Future<Output = Result<T, TaskError>> + Send>>;

/// The future of item `index`; completes with `(index, result)`.
pub(crate) struct Item<T> {
    index: usize,
    state: State<T>,
    /// The fan-out's streak of slow first polls.
    slow: SlowStreak,
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
    pub(crate) fn new(index: usize, body: ItemBody<T>, slow: &SlowStreak) -> Self {
        let state = if is_slow(slow) {
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
                if first {
                    // CPU work that ended in one poll, again and again:
                    // later items go to tasks of their own, in parallel.
                    count_first_poll(&this.slow, slow);
                }
                match polled {
                    Poll::Ready(result) => result,
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
    /// future: moving the box does not move the pinned future).
    fn promote(&mut self, cx: &mut Context<'_>) {
        if let State::Inline { body, .. } = std::mem::replace(&mut self.state, State::Done) {
            self.state = State::Spawned(tokio::spawn(body));
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
