//! What bounds and stops actions: an environment's concurrency and rate
//! limits (`limits`), cancellation signals (`cancel`), and Ctrl-C / SIGTERM
//! (`signals`), abort requests filed in the store (`abort`). None of them knows the run: each holds only the handle it
//! acts on.

pub(crate) mod abort;
pub(crate) mod cancel;
pub(crate) mod limits;
pub(crate) mod signals;
