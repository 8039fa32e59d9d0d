//! A store as the runtime and tools hold it: where it is, and which
//! capabilities it has (see [`crate::store`]), each asked for by name.
//! The work queue of a fleet is one more handle a store may give
//! ([`RunStore::queue`]); it is a module of its own, below this one, and
//! knows nothing of the store's other capabilities.
//!
//! ```
//! # use flyte_core::backend::RunStore;
//! # fn show(store: &dyn RunStore) -> Result<(), flyte_core::store::StoreError> {
//! // A capability the store lacks is a clear error naming the store.
//! let runs = store.reader()?.list_runs(&Default::default())?;
//! # let _ = runs; Ok(()) }
//! ```

use crate::queue::WorkQueue;
use crate::store::{RunLog, RunOperations, RunReader, StoreError, TaskCache};
use std::sync::Arc;

/// A store: its location, and its capabilities. A backend implements the
/// capability traits it supports on its own type and returns itself from
/// the matching `as_` methods here; the defaults say it lacks the others.
/// Callers ask with [`cache`](#method.cache), [`reader`](#method.reader)
/// and [`operations`](#method.operations), which name the store and what
/// it lacks in their error.
///
/// ```
/// use flyte_core::backend::RunStore;
/// use flyte_core::store::{RunLog, RunReader, StoreError};
///
/// #[derive(Debug)]
/// struct MyStore;
/// # impl RunLog for MyStore {
/// #     fn find_run(&self, _: flyte_core::store::RunRef<'_>) -> Result<Option<(flyte_core::store::RunKey, flyte_core::record::RunRecord)>, StoreError> { Ok(None) }
/// #     fn run_inputs(&self, _: flyte_core::store::RunKey) -> Result<Option<Vec<u8>>, StoreError> { Ok(None) }
/// #     fn begin_run(&self, _: &flyte_core::store::NewRun<'_>) -> Result<flyte_core::store::RunKey, StoreError> { Ok(flyte_core::store::RunKey(0)) }
/// #     fn resume_run(&self, _: flyte_core::store::RunKey, _: &str) -> Result<std::collections::HashMap<flyte_core::ActionId, flyte_core::store::OutputAt>, StoreError> { Ok(Default::default()) }
/// #     fn recorded_output(&self, _: flyte_core::store::OutputAt) -> Result<Option<Vec<u8>>, StoreError> { Ok(None) }
/// #     fn record_action(&self, _: flyte_core::store::RunKey, _: &flyte_core::store::ActionEnd<'_>) {}
/// #     fn record_fan_out(&self, _: flyte_core::store::RunKey, _: &flyte_core::record::FanOutRecord) {}
/// #     fn end_run(&self, _: flyte_core::store::RunKey, _: flyte_core::store::RunEnd) -> flyte_core::store::StoreFuture<'_, flyte_core::store::RunClosed> { Box::pin(async { Default::default() }) }
/// #     fn release_run(&self, _: flyte_core::store::RunKey) {}
/// #     fn flush(&self) -> flyte_core::store::StoreFuture<'_, Result<(), StoreError>> { Box::pin(async { Ok(()) }) }
/// # }
///
/// impl RunStore for MyStore {
///     fn location(&self) -> String {
///         "my store".into()
///     }
///     fn run_log(&self) -> &dyn RunLog {
///         self
///     }
/// }
///
/// let store: &dyn RunStore = &MyStore;
/// let refused = store.reader().err().unwrap();
/// assert_eq!(
///     refused.to_string(),
///     "the flyte store at my store does not support reading runs"
/// );
/// ```
pub trait RunStore: std::fmt::Debug + Send + Sync + 'static {
    /// Where the store is, for people: a directory, a database URL without
    /// its password, `memory`.
    fn location(&self) -> String;

    /// What runs write to it, and read back to resume.
    fn run_log(&self) -> &dyn RunLog;

    /// Its task cache, if it has one (a run on a store without one runs
    /// cached tasks uncached, with a warning).
    fn as_cache(&self) -> Option<&dyn TaskCache> {
        None
    }

    /// What tools read from it, if they can.
    fn as_reader(&self) -> Option<&dyn RunReader> {
        None
    }

    /// Abort, logs, published progress and deleting, if it has them.
    fn as_operations(&self) -> Option<&dyn RunOperations> {
        None
    }

    /// The work queue of a store that spreads runs over a fleet of worker
    /// processes (see [`crate::queue`]). `None`, the default: a run's
    /// actions run in its own process.
    fn queue(&self) -> Option<Arc<dyn WorkQueue>> {
        None
    }
}

impl dyn RunStore {
    /// Its task cache.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unsupported`], naming the store, when it has none.
    pub fn cache(&self) -> Result<&dyn TaskCache, StoreError> {
        self.as_cache().ok_or_else(|| self.lacks("a task cache"))
    }

    /// What tools read from it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unsupported`], naming the store, when it cannot be read.
    pub fn reader(&self) -> Result<&dyn RunReader, StoreError> {
        self.as_reader().ok_or_else(|| self.lacks("reading runs"))
    }

    /// Abort, logs, published progress and deleting.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unsupported`], naming the store, when it has none of
    /// them.
    pub fn operations(&self) -> Result<&dyn RunOperations, StoreError> {
        self.as_operations()
            .ok_or_else(|| self.lacks("operating runs (abort, logs, progress, gc)"))
    }

    /// The error of a capability this store lacks.
    pub fn lacks(&self, capability: &'static str) -> StoreError {
        StoreError::Unsupported {
            operation: capability,
            store: self.location(),
        }
    }
}

/// Inside a backend's `impl RunStore`: the accessors of a store whose type
/// implements every capability itself (`RunLog`, `TaskCache`, `RunReader`
/// and `RunOperations`), as the SQLite, PostgreSQL and in-memory stores do.
///
/// ```ignore
/// impl RunStore for MyStore {
///     fn location(&self) -> String { "my store".into() }
///     flyte_core::every_capability!();
/// }
/// ```
#[macro_export]
macro_rules! every_capability {
    () => {
        fn run_log(&self) -> &dyn $crate::store::RunLog {
            self
        }

        fn as_cache(&self) -> Option<&dyn $crate::store::TaskCache> {
            Some(self)
        }

        fn as_reader(&self) -> Option<&dyn $crate::store::RunReader> {
            Some(self)
        }

        fn as_operations(&self) -> Option<&dyn $crate::store::RunOperations> {
            Some(self)
        }
    };
}
