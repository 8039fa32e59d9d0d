//! flyte: typed, serializable tasks run on tokio, with `map`, `gather` and
//! per-item error collection, in the model of Flyte 2.
//!
//! - [`#[task]`](macro@task) turns a function (sync or async) into a task
//!   bound to a [`TaskEnvironment`]; calling it returns a [`TaskCall`].
//! - [`run`] (or [`Runner`]) runs a call as the root of a run.
//! - [`map`] runs one task over many inputs with bounded concurrency, reading
//!   the input lazily; [`map_stream`] does the same for an async `Stream`.
//! - [`gather`] runs calls of different tasks side by side.
//! - `.collect_errors()` settles every item instead of failing fast.
//! - [`group`] labels actions; [`current`] tells a task where it runs;
//!   [`registry`] runs any task by name from encoded input.
//! - Retries with [`Backoff`], timeouts, and an environment's concurrency
//!   and rate limits are enforced locally; see [`TaskEnvironment`].
//! - Runs are recorded in the [`store`] (SQLite under `FLYTE_HOME`);
//!   `#[task(cache = "auto")]` (or [`Cache`] on an environment) reuses
//!   outputs across runs; [`Runner::resume`], or the same call under the
//!   same [`Runner::name`], replays what succeeded and runs the rest.
//!   [`RunOutcome::recorded`] tells whether the record is complete: a run
//!   that did not ask for a store goes on unrecorded when the default one
//!   cannot be used, with one warning.
//!
//! # Quick start
//!
//! ```
//! use flyte::prelude::*;
//!
//! static ENV: TaskEnvironment = TaskEnvironment::new("quick_start");
//!
//! #[task(env = ENV)]
//! fn double(x: i64) -> i64 {
//!     x * 2
//! }
//!
//! #[task(env = ENV)]
//! async fn double_all(items: Vec<i64>) -> Result<Vec<i64>, TaskError> {
//!     flyte::map(double, items).concurrency(5).await
//! }
//!
//! fn main() -> Result<(), TaskError> {
//!     let out = flyte::run(double_all(vec![1, 2, 3]))?;
//!     assert_eq!(out, vec![2, 4, 6]);
//!     Ok(())
//! }
//! ```
//!
//! # Fan-out semantics
//!
//! Awaiting a `map` or `gather` is **fail-fast**: the first error (first in
//! time) is returned with its item index, every sibling still running is
//! cancelled (with its own children) and no unstarted item is started.
//! `.collect_errors()` settles: every item runs and each outcome comes back
//! in input order. `.as_completed()` streams `(index, result)` as items
//! finish. `.concurrency(0)` or no call means unbounded.

#[doc(inline)]
pub use flyte_core::record;
#[doc(inline)]
pub use flyte_core::{
    codec, ActionId, Backoff, Cache, ErrorKind, InvalidEnvName, RateLimit, TaskEnvironment,
    TaskError, UnknownCache, MAX_CONCURRENCY,
};
#[doc(inline)]
pub use flyte_macros::task;
#[doc(inline)]
pub use flyte_runtime::{
    current, gather, group, logs, map, map_stream, progress, registry, run, store, ActionNode,
    ActionStatus, AsCompleted, CallFuture, ChildCounts, Context, FanOutKind, FanOutSummary,
    FanOutTotals, Gather, GatherSettled, Gatherable, Group, IterSource, Map, MapFuture, MapRatio,
    MapSettled, Origin, Progress, Recorded, Registry, RunOutcome, Runner, Source, StreamSource,
    TaskCall, TaskInfo, MAX_KEPT_CHILDREN, MAX_KEPT_FAILURES, MAX_KEPT_FAN_OUTS,
};

/// Fleet mode: [`fleet::Worker`] in your binary on many machines, a
/// driver with `Runner::new().postgres(url)`. Connecting to PostgreSQL
/// needs the `postgres` feature.
#[doc(inline)]
pub use flyte_runtime::fleet;

/// The command line (feature `cli`): `fn main() -> std::process::ExitCode
/// { flyte::cli::main() }` in a binary that links your tasks makes it the
/// full `flyte` command (runs, show, run, resume, abort, cache, report, ...).
#[cfg(feature = "cli")]
#[doc(inline)]
pub use flyte_cli as cli;

/// What a task file needs: `use flyte::prelude::*;`.
pub mod prelude {
    #[doc(no_inline)]
    pub use crate::{task, Backoff, Cache, ErrorKind, TaskCall, TaskEnvironment, TaskError};
}

/// Support for the code `#[task]` generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use flyte_runtime::private::*;
}
