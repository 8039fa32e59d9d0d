//! Blocking on flyte futures from sync code, and the runtime that does it.

use crate::state::context::Scope;
use flyte_core::{ErrorKind, TaskError};
use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::{Builder, Handle, Runtime};

/// The process-wide runtime for sync callers (`flyte::run`, `.wait()` in
/// `main`). Built on first use, with one worker per core.
pub(crate) fn global() -> Result<&'static Runtime, TaskError> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .enable_all()
                .thread_name("flyte-worker")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            TaskError::new(
                ErrorKind::Runtime,
                format!("cannot start the tokio runtime: {e}"),
            )
        })
}

/// The error for blocking where async tasks run.
pub(crate) fn would_block_error(what: &str) -> TaskError {
    TaskError::new(
        ErrorKind::Runtime,
        format!(
            "{what} blocks its thread, and this thread runs async tasks, so it could \
             deadlock: use `.await` here (`{what}` is for sync code: a sync #[task], \
             `fn main`, a plain thread)"
        ),
    )
}

/// Runs `fut` to its end on this thread.
///
/// - In a sync task: on the runtime running that task, in its scope. If the
///   task is cancelled meanwhile, `fut` is dropped (cancelling what it
///   started) and the result is a `Cancelled` error.
/// - On a thread with no runtime: on the global runtime.
/// - On a thread of an async runtime: refused, since blocking a worker may
///   deadlock.
pub(crate) fn block_on<F: Future>(fut: F) -> Result<F::Output, TaskError> {
    if Scope::in_sync_task() {
        let handle = Handle::try_current().map_err(|_| would_block_error(".wait()"))?;
        return match Scope::current() {
            Some(scope) => {
                let watch = scope.clone();
                handle.block_on(async {
                    tokio::select! {
                        biased;
                        () = watch.cancelled() => Err(TaskError::cancelled()),
                        out = scope.enter(fut) => Ok(out),
                    }
                })
            }
            None => Ok(handle.block_on(fut)),
        };
    }
    if Handle::try_current().is_ok() {
        return Err(would_block_error(".wait()"));
    }
    Ok(global()?.block_on(fut))
}
