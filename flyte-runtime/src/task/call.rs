//! [`TaskCall`]: a task applied to its inputs, not yet run.

use crate::task::body::{Body, Execution, Inputs, Mapped};
use flyte_core::{codec, ActionId, Backoff, Cache, TaskDef, TaskError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;

use std::time::Duration;

/// A task applied to its inputs. Nothing runs until it is awaited.
///
/// Calling a `#[task]` function returns one. `.await` it in async code, or
/// [`.wait()`](TaskCall::wait) in sync code; hand many to `flyte::map` or
/// `flyte::gather` to run them side by side.
///
/// # Examples
///
/// ```
/// use flyte::prelude::*;
/// use std::time::Duration;
///
/// #[task]
/// fn process_item(x: i64) -> i64 {
///     x * 2
/// }
///
/// #[task]
/// async fn main_task() -> Result<i64, TaskError> {
///     let doubled = process_item(3).await?;
///     let quick = process_item(4).retries(0).timeout(Duration::from_secs(1)).await?;
///     Ok(doubled + quick)
/// }
///
/// assert_eq!(flyte::run(main_task())?, 14);
/// assert_eq!(process_item(5).wait()?, 10); // sync code may also wait on a call
/// # Ok::<(), TaskError>(())
/// ```
///
/// # Cancel safety
///
/// Dropping the future made by `.await` before it completes cancels the
/// action and everything it started; the action is recorded as cancelled.
#[must_use = "a TaskCall does nothing until it is awaited or waited on"]
pub struct TaskCall<T> {
    pub(crate) def: &'static TaskDef,
    pub(crate) body: Box<dyn Body<T>>,
    pub(crate) retries: Option<u32>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) cache: Option<Cache>,
}

impl<T: Send + 'static> TaskCall<T> {
    /// A call of the task `def` with `inputs` (a tuple of its parameters).
    /// Called by the code `#[task]` generates.
    #[doc(hidden)]
    pub fn new<In>(
        def: &'static TaskDef,
        inputs: In,
        exec: fn(In) -> Execution<T>,
        cache_key: fn(&In) -> Result<Vec<u8>, TaskError>,
    ) -> Self
    where
        In: Serialize + DeserializeOwned + Send + 'static,
        T: Serialize + DeserializeOwned,
    {
        TaskCall {
            def,
            body: Box::new(Inputs {
                inputs,
                exec,
                cache_key,
            }),
            retries: None,
            timeout: None,
            backoff: None,
            cache: None,
        }
    }

    /// Overrides the retries for this call (`n` retries = `n + 1` attempts).
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = Some(n);
        self
    }

    /// Overrides the per-attempt time limit for this call.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Overrides the wait between attempts for this call.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Overrides the cache setting for this call, e.g.
    /// `.cache(Cache::Override)` to run it and replace its cached output.
    pub fn cache(mut self, cache: Cache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The task's name, `"<env>.<fn>"`.
    pub fn task_name(&self) -> &'static str {
        self.def.name()
    }

    /// The id this call has as the root action of a run (a run records
    /// it; the same task with the same inputs has the same id), to tell
    /// whether a recorded run is this call.
    pub fn root_id(&self) -> ActionId {
        ActionId::root(self.def.name(), self.body.input_hash())
    }

    fn map_output<U: Send + 'static>(self, f: fn(T) -> Result<U, TaskError>) -> TaskCall<U> {
        TaskCall {
            def: self.def,
            body: Box::new(Mapped {
                inner: self.body,
                f,
            }),
            retries: self.retries,
            timeout: self.timeout,
            backoff: self.backoff,
            cache: self.cache,
        }
    }
}

impl<T: Serialize + Send + 'static> TaskCall<T> {
    /// This call with its output encoded by the codec (for the registry).
    #[doc(hidden)]
    pub fn encode_output(self) -> TaskCall<Vec<u8>> {
        self.map_output(|out| codec::encode(&out))
    }

    /// This call with its output as JSON (for the registry).
    #[doc(hidden)]
    pub fn json_output(self) -> TaskCall<serde_json::Value> {
        self.map_output(|out| {
            serde_json::to_value(out).map_err(|e| {
                TaskError::new(
                    flyte_core::ErrorKind::Input,
                    format!("cannot write the output as JSON: {e}"),
                )
            })
        })
    }
}

/// Erased output, for gathering calls of different types.
pub(crate) type AnyBox = Box<dyn std::any::Any + Send>;

impl<T: Send + 'static> TaskCall<T> {
    pub(crate) fn erase(self) -> TaskCall<AnyBox> {
        self.map_output(|out| Ok(Box::new(out) as AnyBox))
    }
}

impl<T> fmt::Debug for TaskCall<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskCall")
            .field("task", &self.def.name())
            .field("retries", &self.retries)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
