//! What users call: [`run`](run::run) and [`Runner`](run::Runner), a task
//! applied to its inputs ([`TaskCall`](call::TaskCall)), [`map`](map::map)
//! and [`gather`](gather::gather). Each builds a value and hands it to the
//! execution machinery when awaited.

pub(crate) mod call;
pub(crate) mod gather;
pub(crate) mod map;
pub(crate) mod run;
