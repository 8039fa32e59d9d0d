//! What a store is made of: the words a run and a store share
//! ([`RunKey`], [`ActionEnd`], [`RunEnd`], ...), why a store could not be
//! used ([`StoreError`]), and what a store can do, one trait per
//! capability: [`RunLog`] (what a run writes: every store has it),
//! [`TaskCache`], [`RunReader`] (what tools read) and [`RunOperations`]
//! (abort, logs, published progress, deleting). A backend names the ones it
//! has in its [`RunStore`](crate::backend::RunStore); `flyte-sqlite` (the
//! embedded default, under `FLYTE_HOME`) and `flyte-postgres` have them
//! all, and so does the in-memory store (`memory-store` feature).
//!
//! A store is used from many threads at once and must not block the
//! caller on the hot path: [`RunLog::record_action`],
//! [`RunLog::record_fan_out`] and [`TaskCache::put`] queue their record and
//! return; what could not be written is counted, and reported when the run
//! ends ([`RunClosed`]).
//!
//! # The life of a recorded run
//!
//! 1. [`RunLog::begin_run`] records a new run as running and holds its
//!    liveness (another process sees that it is going on; a run whose
//!    process died is marked [`RunStatus::Killed`](crate::record::RunStatus::Killed)
//!    by the store); or [`RunLog::find_run`] + [`RunLog::resume_run`] take
//!    an earlier run up again, with where its succeeded outputs are.
//! 2. Each action and fan-out that ends is appended.
//! 3. [`RunLog::end_run`] writes the run's end after everything queued,
//!    releases its liveness and says what could not be written.

mod capabilities;
mod error;
mod vocabulary;

pub use capabilities::{RunLog, RunOperations, RunReader, TaskCache};
pub use error::{human_bytes, warn_large_output, StoreError, LARGE_OUTPUT, MAX_STORED_VALUE};
pub use vocabulary::{
    ActionEnd, CacheEntry, CacheInfo, LogLine, NewRun, OutputAt, OutputRef, RunClosed, RunEnd,
    RunFilter, RunKey, RunRef, StoreFuture,
};
