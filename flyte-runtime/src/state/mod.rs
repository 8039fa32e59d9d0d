//! The live state of a run: the run itself and what an action sees of it
//! (`context`: `RunShared`, `Scope`, `flyte::current()`), the live cells of
//! actions and fan-outs and the tree read from them after the run (`tree`).
//! The run and its cells refer to each other:
//! this is the one module loop of the crate, kept inside this folder.

pub(crate) mod context;
pub(crate) mod tree;
