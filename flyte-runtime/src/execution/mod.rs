//! The execution machinery: how a call runs when awaited or waited on
//! (`call_future`), one action and its attempts (`action`; one attempt's
//! body in `attempt`), the engine under `map` and `gather` (`fan_out`,
//! `item`), and the one `block_on` policy for `.wait()` (`wait`). What a
//! call is lives below, in `task`; where sync bodies run, in `threads`.

pub(crate) mod action;
pub(crate) mod attempt;
pub(crate) mod call_future;
pub(crate) mod fan_out;
pub(crate) mod item;
pub(crate) mod wait;
