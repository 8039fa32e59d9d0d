//! Locking a `Mutex` without poisoning: one helper for every lock here.
//!
//! A poisoned lock means a thread panicked while holding it. flyte's locks
//! guard small bookkeeping (counters, queues, buffers) that no panic leaves
//! half-written (task panics are caught before they reach them), so the data
//! is used as it is rather than turning one panic into many.

use std::sync::{Condvar, Mutex, MutexGuard, WaitTimeoutResult};
use std::time::Duration;

/// Locks `m`, whether or not a panic poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `cv.wait(guard)`, whether or not a panic poisoned the lock.
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `cv.wait_timeout(guard, d)`, whether or not a panic poisoned the lock.
pub(crate) fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    d: Duration,
) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
    cv.wait_timeout(guard, d)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
