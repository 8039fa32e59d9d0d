//! Environment limits within a run: concurrency slots and start rate.

use flyte_core::sync::lock;
use flyte_core::{RateLimit, TaskEnvironment};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The limits of one environment within one run.
#[derive(Debug)]
pub(crate) struct EnvLimits {
    slots: Option<Arc<Semaphore>>,
    rate: Option<RateLimiter>,
}

/// Per-run table of limits, made on first use for each limited environment.
#[derive(Debug, Default)]
pub(crate) struct LimitTable(Mutex<HashMap<usize, Arc<EnvLimits>>>);

impl LimitTable {
    /// The limits of `env` in this run, or `None` when it sets none (no lock taken).
    pub(crate) fn for_env(&self, env: &'static TaskEnvironment) -> Option<Arc<EnvLimits>> {
        let concurrency = env.concurrency_setting();
        let rate = env.rate_limit_setting();
        if concurrency.is_none() && rate.is_none() {
            return None;
        }
        let key = env as *const TaskEnvironment as usize;
        let mut table = lock(&self.0);
        let limits = table.entry(key).or_insert_with(|| {
            Arc::new(EnvLimits {
                slots: concurrency.map(|n| Arc::new(Semaphore::new(n))),
                rate: rate.map(RateLimiter::new),
            })
        });
        Some(Arc::clone(limits))
    }
}

impl EnvLimits {
    /// The slot an action of this environment holds while it runs.
    pub(crate) fn slot(&self) -> Option<Arc<Slot>> {
        self.slots.as_ref().map(|s| {
            Arc::new(Slot {
                semaphore: Arc::clone(s),
                state: Mutex::new(SlotState::default()),
            })
        })
    }

    /// Waits until starting one more task keeps within the rate limit.
    pub(crate) async fn admit(&self) {
        if let Some(rate) = &self.rate {
            rate.admit().await;
        }
    }
}

/// One action's place under its environment's concurrency limit. Held while
/// an attempt runs; given back while the action waits on its own children.
#[derive(Debug)]
pub(crate) struct Slot {
    semaphore: Arc<Semaphore>,
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    permit: Option<OwnedSemaphorePermit>,
    /// Child calls and fan-outs the action is waiting on right now.
    waiting: usize,
}

impl Slot {
    /// Takes the slot for an attempt.
    pub(crate) async fn acquire(&self) {
        let permit = Arc::clone(&self.semaphore).acquire_owned().await;
        // The semaphore is never closed, so acquiring cannot fail.
        lock(&self.state).permit = permit.ok();
    }

    /// Gives the slot back after an attempt.
    pub(crate) fn release(&self) {
        lock(&self.state).permit = None;
    }

    /// The action starts waiting on a child: the slot is free meanwhile.
    pub(crate) fn begin_wait(self: &Arc<Self>) -> ChildWait {
        let mut state = lock(&self.state);
        state.waiting += 1;
        state.permit = None;
        ChildWait {
            slot: Some(Arc::clone(self)),
        }
    }
}

/// An action waiting on a child. [`ChildWait::end`] takes the slot back
/// before the action goes on; dropping it instead takes the slot only if
/// one is free at once.
#[derive(Debug)]
pub(crate) struct ChildWait {
    slot: Option<Arc<Slot>>,
}

impl ChildWait {
    pub(crate) async fn end(mut self) {
        let Some(slot) = self.slot.take() else { return };
        if !Self::leave(&slot) {
            return;
        }
        let permit = Arc::clone(&slot.semaphore).acquire_owned().await.ok();
        let mut state = lock(&slot.state);
        // Another child wait may have begun meanwhile: then the slot stays free.
        if state.waiting == 0 && state.permit.is_none() {
            state.permit = permit;
        }
    }

    /// Counts the wait as over; true when the slot should be taken back.
    fn leave(slot: &Slot) -> bool {
        let mut state = lock(&slot.state);
        state.waiting -= 1;
        state.waiting == 0 && state.permit.is_none()
    }
}

impl Drop for ChildWait {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            if Self::leave(&slot) {
                let permit = Arc::clone(&slot.semaphore).try_acquire_owned().ok();
                lock(&slot.state).permit = permit;
            }
        }
    }
}

/// A sliding-window log of start times.
#[derive(Debug)]
struct RateLimiter {
    limit: RateLimit,
    starts: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            // Grows as starts come: a large count must not reserve its
            // whole window up front.
            starts: Mutex::new(VecDeque::with_capacity((limit.count as usize).min(1_024))),
        }
    }

    async fn admit(&self) {
        loop {
            let wait_until = {
                let mut starts = lock(&self.starts);
                let now = Instant::now();
                while starts
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.limit.per)
                {
                    starts.pop_front();
                }
                if starts.len() < self.limit.count as usize {
                    starts.push_back(now);
                    return;
                }
                // The oldest start leaves the window first (a window too long
                // to add to a clock ends beyond any wait: sleep it out).
                starts.front().map(|t| t.checked_add(self.limit.per))
            };
            match wait_until {
                Some(Some(at)) => tokio::time::sleep_until(at).await,
                Some(None) => tokio::time::sleep(self.limit.per).await,
                None => {}
            }
        }
    }
}
