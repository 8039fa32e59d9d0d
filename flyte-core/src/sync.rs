//! Helpers the flyte crates share (not public API): locking a `Mutex`
//! without poisoning, one helper for every lock in flyte, and warnings for
//! people shown once.
//!
//! A poisoned lock means a thread panicked while holding it. flyte's locks
//! guard small bookkeeping (counters, queues, buffers) that no panic leaves
//! half-written (task panics are caught before they reach them), so the data
//! is used as it is rather than turning one panic into many.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard, WaitTimeoutResult};
use std::time::Duration;

/// Locks `m`, whether or not a panic poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `cv.wait(guard)`, whether or not a panic poisoned the lock.
pub fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `cv.wait_timeout(guard, d)`, whether or not a panic poisoned the lock.
pub fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    d: Duration,
) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
    cv.wait_timeout(guard, d)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Distinct warnings remembered at most; past it, repeats show again
/// rather than memory growing.
const REMEMBERED: usize = 1_000;

/// Shows a warning for people, unless it was shown before in this process:
/// through `tracing` when the program set up a subscriber, on stderr when it
/// did not, so that a user who set up no logging still learns, say, that a
/// run was not recorded.
pub fn warn_once(message: &str) {
    static SHOWN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    {
        let mut shown = lock(&SHOWN);
        let shown = shown.get_or_insert_with(HashSet::new);
        if shown.contains(message) {
            return;
        }
        if shown.len() < REMEMBERED {
            shown.insert(message.to_owned());
        }
    }
    if tracing::dispatcher::has_been_set() {
        tracing::warn!("{message}");
    } else {
        eprintln!("flyte: warning: {message}");
    }
}
