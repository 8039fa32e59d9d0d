//! The tokio runtime of flyte: runs, task calls, `map`, `gather`, groups
//! and the task context. Users depend on the `flyte` crate, which re-exports
//! this one.
//!
//! The code is grouped by concern (see `ARCHITECTURE.md` at the root):
//! `builders` (what users call), `execution` (actions, attempts, fan-outs,
//! where sync tasks run), `state` (the live run: scope, context, cells,
//! groups), `policies` (limits, cancellation, signals) and `durability`
//! (the sink, the cache, replay, the store interface).

mod builders;
mod durability;
mod execution;
pub mod fleet;
pub mod logs;
mod policies;
pub mod progress;
mod registry;
mod state;

#[doc(hidden)]
pub mod private;

pub use builders::gather::{gather, Gather, GatherSettled, Gatherable};
pub use builders::map::{
    map, map_stream, AsCompleted, Completed, Map, MapFuture, MapRatio, MapSettled,
};
pub use builders::run::{run, RunOutcome, Runner};
pub use durability::record::Recorded;
pub use durability::store;
pub use execution::call::TaskCall;
pub use execution::call_future::CallFuture;
pub use execution::fan_out::{IterSource, Source, StreamSource};
pub use progress::Progress;
pub use registry::{registry, Registry, TaskInfo};
pub use state::context::{current, Context};
pub use state::group::{group, Group};
pub use state::tree::{
    ActionNode, ActionStatus, ChildCounts, FanOutKind, FanOutSummary, FanOutTotals, Origin,
    MAX_KEPT_CHILDREN, MAX_KEPT_FAILURES, MAX_KEPT_FAN_OUTS,
};
