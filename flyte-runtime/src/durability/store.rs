//! The run store: what runs record through and tools read ([`RunStore`],
//! and its capabilities [`RunLog`], [`TaskCache`], [`RunReader`] and
//! [`RunOperations`]), and the embedded default behind it, a SQLite database under `FLYTE_HOME`
//! (default `./.flyte/`) that keeps runs, their actions and fan-outs, and
//! the task cache.
//!
//! Runs started with [`Runner`](crate::Runner) (and [`run`](crate::run))
//! are recorded in [`Store::open_default`] unless
//! [`Runner::persist(false)`](crate::Runner::persist) says otherwise, or in
//! another store given with [`Runner::home`](crate::Runner::home) or
//! [`Runner::store`](crate::Runner::store). Several processes may use one
//! SQLite store at once; a run whose process died is marked
//! [`RunStatus::Killed`] the next time the store is opened.
//!
//! [`Store`] is also the read API for tools: [`Store::runs`] lists runs,
//! [`Store::run`] gets one with its actions; through [`RunReader`],
//! [`RunReader::list_runs`] filters and pages, [`RunReader::actions`] reads
//! a run batch by batch and [`RunReader::fan_outs`] gives its `map`s and
//! `gather`s. A store held as `dyn RunStore` gives each capability by name
//! (`store.reader()?`), or an error naming the store when it lacks it; a
//! store kept in memory is `MemoryStore` (feature `memory-store`).
//!
//! # Examples
//!
//! ```
//! use flyte::prelude::*;
//! use flyte::store::{RunFilter, RunLog, RunReader, RunRef, RunStatus, Store};
//!
//! #[task]
//! fn double(x: i64) -> i64 {
//!     x * 2
//! }
//!
//! #[task]
//! async fn double_all(xs: Vec<i64>) -> Result<Vec<i64>, TaskError> {
//!     flyte::map(double, xs).concurrency(2).await
//! }
//!
//! # let home = std::env::temp_dir().join(format!("flyte-doc-store-{}", std::process::id()));
//! let outcome = flyte::Runner::new().home(&home).run(double_all(vec![1, 2, 3]));
//! assert_eq!(outcome.output().ok(), Some(&vec![2, 4, 6]));
//!
//! let store = Store::open(&home)?;
//! let run = store.run(outcome.run_id())?.expect("the run was recorded");
//! assert_eq!(run.status, RunStatus::Succeeded);
//! assert_eq!(run.root().unwrap().output::<Vec<i64>>()?, Some(vec![2, 4, 6]));
//!
//! // Filtered and paged, and the run's map as one row with its counts.
//! let failed = store.list_runs(&RunFilter::all().status(RunStatus::Failed))?;
//! assert!(failed.is_empty());
//! let (key, _) = store.find_run(RunRef::Id(outcome.run_id()))?.unwrap();
//! let maps = store.fan_outs(key)?;
//! assert_eq!((maps[0].task.as_deref(), maps[0].succeeded), (Some("default.double"), 3));
//! # std::fs::remove_dir_all(&home).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use flyte_core::backend::RunStore;
pub use flyte_core::record::{ActionRecord, FanOutRecord, RunRecord, RunStatus};
pub use flyte_core::store::{
    ActionEnd, CacheEntry, CacheInfo, LogLine, NewRun, OutputAt, OutputRef, RunClosed, RunEnd,
    RunFilter, RunKey, RunLog, RunOperations, RunReader, RunRef, StoreError, StoreFuture,
    TaskCache,
};
pub use flyte_sqlite::{default_home, Store, FLYTE_HOME};

/// A store kept in memory, with every capability (feature `memory-store`).
#[cfg(feature = "memory-store")]
pub use flyte_core::memory::MemoryStore;

pub use super::store_at::open_postgres;
