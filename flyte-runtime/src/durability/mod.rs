//! What outlives a run, behind one sink: the sink every ended action,
//! fan-out and run is emitted to, with its listeners (`sink`); the run's
//! ties to its store and replay on resume (`record`), where that store is
//! and how it opens (`store_at`), how much of a run got there
//! (`recorded`); the task cache (`cache`); and the public `store` module
//! (the store interface and the embedded SQLite store).

pub(crate) mod cache;
pub(crate) mod record;
pub(crate) mod recorded;
pub(crate) mod sink;
pub mod store;
pub(crate) mod store_at;
