//! [`Worker`]: a process of the fleet that claims queued actions and runs
//! them.

use super::serving::Serving;
use crate::durability::store_at::{open_postgres, POSTGRES_URL_VAR};
use crate::execution::wait;
use crate::registry::registry;
use flyte_core::backend::RunStore;
use flyte_core::redact::Redacted;
use flyte_core::store::StoreError;
use flyte_core::{ErrorKind, TaskError};
use std::future::Future;
use std::sync::Arc;

/// A worker of the fleet: claims the queued actions whose task this binary
/// has (at the same code version), runs them, and completes them, until
/// Ctrl-C or SIGTERM.
///
/// # Examples
///
/// ```no_run
/// use flyte::prelude::*;
///
/// #[task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() -> Result<(), TaskError> {
///     // Every machine runs this; a driver elsewhere runs with
///     // Runner::new().postgres(url).
///     flyte::fleet::Worker::new("postgres://flyte:flyte@db/flyte")
///         .concurrency(16)
///         .run()
/// }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Worker {
    at: WorkerStore,
    concurrency: usize,
}

#[derive(Clone)]
enum WorkerStore {
    Url(String),
    FromEnv,
    Given(Arc<dyn RunStore>),
}

/// Shown without the database's password.
impl std::fmt::Debug for WorkerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerStore::Url(url) => f.debug_tuple("Url").field(&Redacted(url)).finish(),
            WorkerStore::FromEnv => f.write_str("FromEnv"),
            WorkerStore::Given(store) => f.debug_tuple("Given").field(store).finish(),
        }
    }
}

impl Worker {
    /// A worker of the fleet whose database is at `url`
    /// (`postgres://user:password@host/db`), running 16 actions at once.
    pub fn new(url: impl Into<String>) -> Worker {
        Worker {
            at: WorkerStore::Url(url.into()),
            concurrency: 16,
        }
    }

    /// A worker of the fleet named by `FLYTE_POSTGRES_URL`.
    pub fn from_env() -> Worker {
        Worker {
            at: WorkerStore::FromEnv,
            concurrency: 16,
        }
    }

    /// A worker of the fleet behind `store` (a store with a work queue).
    pub fn store(store: Arc<dyn RunStore>) -> Worker {
        Worker {
            at: WorkerStore::Given(store),
            concurrency: 16,
        }
    }

    /// How many actions it runs at once (default 16; at least 1). Sync
    /// tasks take a blocking thread each, async tasks share the runtime.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Serves until Ctrl-C or SIGTERM, blocking this thread. On the
    /// signal it stops claiming, gives back what it runs (queued again for
    /// other workers) and leaves the fleet.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] when the database cannot be reached or used;
    /// [`ErrorKind::Config`] when the program has no tasks (the crate
    /// that defines them is not linked) or two tasks share a name;
    /// [`ErrorKind::Runtime`] when called inside async code (use
    /// [`Worker::run_until`]).
    pub fn run(self) -> Result<(), TaskError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(wait::would_block_error("Worker::run"));
        }
        wait::global()?.block_on(self.run_until(shutdown_signal()))
    }

    /// Serves until `stop` resolves, then gives back what it runs and
    /// leaves the fleet.
    ///
    /// # Errors
    ///
    /// As [`Worker::run`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the worker without leaving the fleet: its
    /// actions are queued again when its lease runs out (10 s).
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), TaskError> {
        registry().check()?;
        if registry().is_empty() {
            return Err(TaskError::new(
                ErrorKind::Config,
                "this worker has no tasks: link the crate that defines them \
                 (`use my_tasks as _;` in main.rs)",
            ));
        }
        let store = match &self.at {
            WorkerStore::Url(url) => open_postgres(url)?,
            WorkerStore::FromEnv => match std::env::var(POSTGRES_URL_VAR) {
                Ok(url) if !url.is_empty() => open_postgres(&url)?,
                _ => {
                    return Err(TaskError::new(
                        ErrorKind::Config,
                        format!(
                            "{POSTGRES_URL_VAR} is not set: set it to the fleet's database \
                             (postgres://user:password@host/db)"
                        ),
                    ))
                }
            },
            WorkerStore::Given(store) => Arc::clone(store),
        };
        let queue = store.queue().ok_or_else(|| {
            TaskError::from(StoreError::Unsupported {
                operation: "a work queue (fleet workers need the PostgreSQL store)",
                store: store.location(),
            })
        })?;
        Serving::new(store, queue, self.concurrency)
            .serve(stop)
            .await
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Runner;

    #[test]
    fn debug_of_a_worker_or_a_runner_never_shows_the_password() {
        let url = "postgres://flyte:PLANTED-s3cret@db.example/fleet";
        for shown in [
            format!("{:?}", Worker::new(url)),
            format!("{:?}", Runner::new().postgres(url)),
        ] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(
                shown.contains("postgres://flyte:***@db.example/fleet"),
                "{shown}"
            );
        }
    }
}
