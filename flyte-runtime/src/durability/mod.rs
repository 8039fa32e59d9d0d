//! What outlives a run: the listener on the run's sink that writes it to
//! its store (`recorder`); the run's ties to its store and replay on resume
//! (`record`), where that store is
//! and how it opens (`store_at`), how much of a run got there
//! (`recorded`); the task cache (`cache`); and the public `store` module
//! (the store interface and the embedded SQLite store).

pub(crate) mod cache;
pub(crate) mod record;
pub(crate) mod recorded;
pub(crate) mod recorder;
pub mod store;
pub(crate) mod store_at;
