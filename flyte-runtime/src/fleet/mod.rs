//! Fleet mode: the same tasks on many machines, coordinated through a
//! store with a work queue (PostgreSQL, feature `postgres`).
//!
//! A **driver** is any program that runs with `Runner::new().postgres(url)`
//! (or `FLYTE_POSTGRES_URL`): its root task runs in the driver, and every
//! call a task makes is queued in the database. **Workers** are copies of
//! the user's own binary running [`Worker`]: each claims the queued actions
//! whose task it has at the same code version, runs them through the
//! registry (their own calls are queued in turn), and completes them.
//!
//! What holds across the fleet:
//! - at-least-once execution, exactly-once recorded result: a worker that
//!   lost its lease cannot overwrite the result of the worker that ran the
//!   action again;
//! - a worker that dies (no heartbeat for 10 s) has its actions queued
//!   again; an action that took [`MAX_DEATHS`] workers down fails with
//!   [`ErrorKind::WorkerLost`](flyte_core::ErrorKind::WorkerLost);
//! - retries with backoff and time limits run on the worker that runs the
//!   action; an environment's `concurrency(n)` is counted across the fleet;
//! - a parent run again after its worker died finds the children that
//!   already ended, by their deterministic ids;
//! - Ctrl-C of the driver (or a failing sibling, or `flyte abort`) cancels
//!   the actions wherever they run.
//!
//! [`MAX_DEATHS`]: flyte_core::queue::MAX_DEATHS

mod ahead;
mod execute;
mod lease;
mod serving;
mod worker;

pub use worker::Worker;

/// The queue interface a fleet's store implements (what `flyte-postgres`
/// does), for other backends and for tools.
pub use flyte_core::queue;
