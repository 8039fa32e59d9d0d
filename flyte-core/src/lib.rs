//! Runtime-free types of flyte: [`TaskEnvironment`] with its [`Backoff`] and [`Cache`], task metadata
//! ([`TaskDef`]), the error type [`TaskError`], the [`codec`] and the
//! deterministic ids of [`hash`], the [`record`] vocabulary of runs, and the [`store`] interface.
//!
//! Users depend on the `flyte` crate, which re-exports what they need.

pub mod backend;
mod backoff;
mod cache;
pub mod codec;
#[cfg(feature = "store-contract")]
pub mod contract;
mod env;
mod error;
pub mod hash;
#[cfg(feature = "memory-store")]
pub mod memory;
pub mod queue;
pub mod record;
pub mod redact;
pub mod store;
#[doc(hidden)]
pub mod sync;
mod task;
pub mod terminal;

pub use backoff::Backoff;
pub use cache::{Cache, UnknownCache};
pub use env::{
    is_valid_env_name, InvalidEnvName, RateLimit, TaskEnvironment, DEFAULT_ENV, MAX_CONCURRENCY,
};
pub use error::{panic_message, ErrorKind, TaskError};
pub use hash::{ActionId, IdMap, IdSet, InputHash};
pub use task::TaskDef;
