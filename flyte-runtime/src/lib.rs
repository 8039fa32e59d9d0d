//! The tokio runtime of flyte: runs, task calls, `map`, `gather`, groups
//! and the task context. Users depend on the `flyte` crate, which re-exports
//! this one.
//!
//! The code is grouped by concern (see `ARCHITECTURE.md` at the root):
//! `builders` (what users call: run, map, gather, group), `execution`
//! (actions, attempts, fan-outs), `state` (the live run: scope, context,
//! cells), `durability` (the store's recorder, the cache, replay, the store
//! interface), `watch` (the sink every watcher listens on, and the tracing
//! spans), `policies` (limits, cancellation, signals), `task` (what a call is) and
//! `threads` (where sync bodies run), in that order from the top: no folder
//! imports one above it.

mod builders;
mod durability;
mod execution;
pub mod fleet;
pub mod logs;
mod policies;
pub mod progress;
mod registry;
mod state;
mod task;
mod threads;
mod watch;

#[doc(hidden)]
pub mod private;

pub use builders::gather::{gather, Gather, GatherSettled, Gatherable};
pub use builders::group::{group, Group};
pub use builders::map::{
    map, map_stream, AsCompleted, Completed, Map, MapFuture, MapRatio, MapSettled,
};
pub use builders::outcome::RunOutcome;
pub use builders::run::{run, Runner};
pub use durability::recorded::Recorded;
pub use durability::store;
pub use execution::call_future::CallFuture;
pub use execution::fan_out::{IterSource, Source, StreamSource};
pub use progress::Progress;
pub use registry::{registry, Registry, TaskInfo};
pub use state::context::{current, Context};
pub use state::tree::{
    ActionNode, ActionStatus, ChildCounts, FanOutKind, FanOutSummary, FanOutTotals, Origin,
    MAX_KEPT_CHILDREN, MAX_KEPT_FAILURES, MAX_KEPT_FAN_OUTS,
};
pub use task::call::TaskCall;
