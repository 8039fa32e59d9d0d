//! What outlives a run, behind one sink: the sink every ended action,
//! fan-out and run is emitted to, with its listeners (`sink`); the run's
//! ties to its store and replay on resume (`record`); the task cache
//! (`cache`); and the public `store` module (the store interface and the
//! embedded SQLite store).

pub(crate) mod cache;
pub(crate) mod record;
pub(crate) mod sink;
pub mod store;
