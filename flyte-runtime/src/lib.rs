//! The tokio runtime of flyte: runs, task calls, `map`, `gather`, groups
//! and the task context. Users depend on the `flyte` crate, which re-exports
//! this one.

mod action;
mod cache;
mod call;
mod cancel;
mod context;
mod fan_out;
mod gather;
mod group;
mod item;
mod lane;
mod limits;
mod map;
mod mutex;
mod notice;
mod record;
mod registry;
mod run;
mod signals;
pub mod store;
mod sync_pool;
mod tree;
mod wait;

#[doc(hidden)]
pub mod private;

pub use call::{CallFuture, TaskCall};
pub use context::{current, Context};
pub use fan_out::{IterSource, Source, StreamSource};
pub use gather::{gather, Gather, GatherSettled, Gatherable};
pub use group::{group, Group};
pub use map::{map, map_stream, AsCompleted, Completed, Map, MapFuture, MapRatio, MapSettled};
pub use record::Recorded;
pub use registry::{registry, Registry, TaskInfo};
pub use run::{run, RunOutcome, Runner};
pub use tree::{
    ActionNode, ActionStatus, ChildCounts, FanOutKind, FanOutSummary, FanOutTotals, Origin,
    MAX_KEPT_CHILDREN, MAX_KEPT_FAILURES, MAX_KEPT_FAN_OUTS,
};
