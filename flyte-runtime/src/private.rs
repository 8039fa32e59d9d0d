//! Support for the code `#[task]` generates. Not public API.

pub use crate::registry::{
    output_json, Io, JsonObject, JsonParams, ParamReader, TaskRegistration, TaskValue,
};
pub use crate::task::body::Execution;
pub use crate::task::call::TaskCall;
pub use flyte_core::{Backoff, TaskDef, TaskEnvironment, TaskError, DEFAULT_ENV};
pub use inventory;
pub use serde_json;

use serde::Serialize;
use std::cell::Cell;

/// Checks `T` is a [`TaskValue`] where the macro names the type.
pub const fn assert_task_value<T: TaskValue>() {}

/// The canonical encoding of the inputs that make a task's cache key.
pub fn cache_key_bytes<T: Serialize>(kept: &T) -> Result<Vec<u8>, TaskError> {
    let mut bytes = Vec::new();
    flyte_core::codec::encode_canonical(kept, &mut bytes).map_err(|e| {
        TaskError::new(
            flyte_core::ErrorKind::Input,
            format!("the inputs cannot be encoded for the cache key: {e}"),
        )
    })?;
    Ok(bytes)
}

/// The error of a cached task with a parameter whose encoding depends on
/// iteration order.
pub fn unordered_input(def: &TaskDef, param: &str, ty: &str) -> TaskError {
    TaskError::new(
        flyte_core::ErrorKind::Input,
        format!(
            "task {} is cached, but its parameter `{param}: {ty}` has no stable encoding \
             (a HashSet is serialized in iteration order, which differs between processes): \
             use a BTreeSet, or leave it out of the key with `cache_ignore = [{param}]`",
            def.name()
        ),
    )
    .into_non_retryable()
}

/// The environment a task binds to, checked to be a `TaskEnvironment`.
pub const fn env_ref(env: &'static TaskEnvironment) -> &'static TaskEnvironment {
    env
}

/// A task's `backoff = ...`, checked to be a `Backoff`.
pub const fn backoff_value(backoff: Backoff) -> Backoff {
    backoff
}

/// Holds a task's error while the right conversion to `TaskError` is picked
/// (by autoref: `TaskError` first, then `anyhow::Error`, then any
/// `std::error::Error`).
pub struct ErrorSlot<E>(Cell<Option<E>>);

impl<E> ErrorSlot<E> {
    /// Holds `e`.
    pub fn new(e: E) -> Self {
        ErrorSlot(Cell::new(Some(e)))
    }

    fn take(&self) -> E {
        // Cannot fail: the generated code converts each slot exactly once.
        self.0.take().expect("ErrorSlot converted twice")
    }
}

/// A `TaskError` passes through with its kind kept.
pub trait ViaTaskError {
    /// Converts the held error.
    fn __flyte_into_task_error(&self) -> TaskError;
}

impl ViaTaskError for &&ErrorSlot<TaskError> {
    fn __flyte_into_task_error(&self) -> TaskError {
        self.take()
    }
}

/// An `anyhow::Error` becomes a user error (or the `TaskError` it wraps).
pub trait ViaAnyhow {
    /// Converts the held error.
    fn __flyte_into_task_error(&self) -> TaskError;
}

impl ViaAnyhow for &ErrorSlot<anyhow::Error> {
    fn __flyte_into_task_error(&self) -> TaskError {
        match self.take().downcast::<TaskError>() {
            Ok(task_error) => task_error,
            Err(other) => TaskError::from_anyhow(other),
        }
    }
}

/// Any `std::error::Error` becomes a user error.
pub trait ViaStdError {
    /// Converts the held error.
    fn __flyte_into_task_error(&self) -> TaskError;
}

impl<E: std::error::Error + Send + Sync + 'static> ViaStdError for ErrorSlot<E> {
    fn __flyte_into_task_error(&self) -> TaskError {
        TaskError::user(self.take())
    }
}
