//! The execution machinery: a task applied to its inputs (`call`, with
//! `call_future` for how it runs when awaited), one action and its attempts
//! (`action`; one attempt's body in `attempt`), the type-erased body that runs a call (`body`), the engine under `map` and
//! `gather` (`fan_out`, `item`), where sync tasks run (`lane`,
//! `sync_pool`), the one `block_on` policy for `.wait()` (`wait`), and the tracing spans
//! of runs, fan-outs, actions and attempts (`spans`).

pub(crate) mod action;
pub(crate) mod attempt;
pub(crate) mod body;
pub(crate) mod call;
pub(crate) mod call_future;
pub(crate) mod fan_out;
pub(crate) mod item;
pub(crate) mod lane;
pub(crate) mod spans;
pub(crate) mod sync_pool;
pub(crate) mod wait;
