//! How a [`TaskCall`] runs when awaited: as a child of the action awaiting
//! it, or outside any run as the root of an ephemeral one.

use crate::execution::action::{run_action, Place};
use crate::execution::wait;
use crate::state::context::{RunShared, Scope};
use crate::task::call::TaskCall;
use flyte_core::TaskError;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, TaskError>> + Send>>;

/// The future of an awaited [`TaskCall`].
///
/// # Cancel safety
///
/// Dropping it cancels the action and everything it started.
#[must_use = "futures do nothing unless polled"]
pub struct CallFuture<T>(BoxFuture<T>);

/// `.wait()` is here, beside how a call runs, rather than with the call
/// itself (`task::call`), which knows nothing of the machinery.
impl<T: Send + 'static> TaskCall<T> {
    /// Runs the call to its end, blocking this thread: for sync code (a
    /// sync `#[task]`, `fn main`, a plain thread).
    ///
    /// # Errors
    ///
    /// The task's error; or [`ErrorKind::Runtime`](flyte_core::ErrorKind::Runtime)
    /// when called on a thread that runs async tasks, where blocking could
    /// deadlock: `.await` there instead.
    pub fn wait(self) -> Result<T, TaskError> {
        wait::block_on(self.into_future()).and_then(|r| r)
    }
}

impl<T> Future for CallFuture<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for CallFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallFuture")
    }
}

impl<T: Send + 'static> IntoFuture for TaskCall<T> {
    type Output = Result<T, TaskError>;
    type IntoFuture = CallFuture<T>;

    fn into_future(self) -> CallFuture<T> {
        CallFuture(Box::pin(async move {
            match Scope::current() {
                Some(parent) => run_action(self, Place::Direct(parent)).await,
                // Awaited outside any run: an ephemeral run of its own.
                None => {
                    let run = RunShared::new(None);
                    let result = run_action(self, Place::Root(Arc::clone(&run))).await;
                    // Cached outputs reach the disk before the caller goes on.
                    run.durability.flush_cache().await;
                    result
                }
            }
        }))
    }
}
