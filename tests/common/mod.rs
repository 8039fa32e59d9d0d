//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test file uses a part

use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts tasks running at once and remembers the peak.
pub(crate) struct Gauge {
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    pub(crate) const fn new() -> Self {
        Gauge {
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Counts one more running until the guard drops (also when a timed-out
    /// or cancelled task is dropped mid-await).
    pub(crate) fn enter(&self) -> Running<'_> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Running(self)
    }

    /// The peak so far, resetting it.
    pub(crate) fn take_peak(&self) -> usize {
        self.peak.swap(0, Ordering::SeqCst)
    }
}

pub(crate) struct Running<'a>(&'a Gauge);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}
