//! The store's own runtime: one thread that owns every connection, so the
//! store works the same from sync code, from any tokio runtime, and from a
//! runtime that is shutting down.

use flyte_core::store::StoreError;
use std::future::Future;
use std::sync::Mutex;
use tokio::runtime::{Handle, Runtime};

/// The runtime and a handle to spawn on it.
pub(crate) struct Bridge {
    handle: Handle,
    /// Taken on drop and shut down in the background: dropping a runtime
    /// inside async code would panic.
    runtime: Mutex<Option<Runtime>>,
}

impl Bridge {
    pub(crate) fn start() -> Result<Bridge, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("flyte-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::backend("postgres", e))?;
        Ok(Bridge {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
        })
    }

    /// Runs `fut` on the store's runtime and blocks this thread until it
    /// ends. Allowed anywhere, also on a thread of another runtime: it
    /// blocks as a SQLite call would.
    pub(crate) fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| StoreError::WriterStopped)
    }

    /// Runs `fut` on the store's runtime; the result is awaited from any
    /// runtime.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.handle
            .spawn(fut)
            .await
            .map_err(|_| StoreError::WriterStopped)
    }

    /// Starts `fut` on the store's runtime.
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.handle.spawn(fut);
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let runtime = match self.runtime.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(runtime) = runtime {
            runtime.shutdown_background();
        }
    }
}
