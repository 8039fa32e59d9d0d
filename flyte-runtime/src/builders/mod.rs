//! What users call to run many things: [`run`](run::run) and
//! [`Runner`](run::Runner), [`map`](map::map) and [`gather`](gather::gather).
//! Each builds a value and hands it to the execution machinery when run or
//! awaited. (A single call, `TaskCall`, is in `task::call`: it is what
//! the machinery runs.)

pub(crate) mod gather;
pub(crate) mod group;
pub(crate) mod map;
pub(crate) mod outcome;
pub(crate) mod run;
