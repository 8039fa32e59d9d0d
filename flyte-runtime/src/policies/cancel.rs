//! [`CancelSignal`]: a flag that async code can wait on and sync code can poll.

use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// Set once, never cleared. Async code awaits [`CancelSignal::cancelled`];
/// sync code polls [`CancelSignal::is_cancelled`].
#[derive(Debug, Default)]
pub(crate) struct CancelSignal {
    flag: AtomicBool,
    notify: Notify,
}

impl CancelSignal {
    pub(crate) fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Completes once [`CancelSignal::cancel`] has been called.
    pub(crate) async fn cancelled(&self) {
        loop {
            let signal = self.notify.notified();
            tokio::pin!(signal);
            // Register before checking the flag, so a cancel in between is seen.
            signal.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            signal.await;
        }
    }
}
