//! [`TaskCall`]: a task applied to its inputs, not yet run.

use crate::action::{run_action, Place};
use crate::context::{RunShared, Scope};
use crate::mutex::lock;
use crate::wait;
use flyte_core::{codec, Backoff, Cache, InputHash, TaskDef, TaskError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, TaskError>> + Send>>;

/// How one attempt of a task runs: a future for an `async fn` task, a
/// closure for a sync task (run on a blocking thread).
#[doc(hidden)]
pub struct Execution<T>(ExecutionKind<T>);

pub(crate) enum ExecutionKind<T> {
    Async(BoxFuture<T>),
    Blocking(Box<dyn FnOnce() -> Result<T, TaskError> + Send>),
}

impl<T: 'static> Execution<T> {
    /// An async task's attempt.
    pub fn from_future<F>(fut: F) -> Self
    where
        F: Future<Output = Result<T, TaskError>> + Send + 'static,
    {
        Execution(ExecutionKind::Async(Box::pin(fut)))
    }

    /// A sync task's attempt.
    pub fn blocking<F>(f: F) -> Self
    where
        F: FnOnce() -> Result<T, TaskError> + Send + 'static,
    {
        Execution(ExecutionKind::Blocking(Box::new(f)))
    }

    pub(crate) fn into_kind(self) -> ExecutionKind<T> {
        self.0
    }

    /// This execution, also encoding a successful output into `kept` (for
    /// the cache and the run store). An output that cannot be encoded is
    /// not kept, with a warning; the task still succeeds.
    fn keeping_output(self, kept: KeptOutput) -> Execution<T>
    where
        T: Serialize + Send,
    {
        let keep = move |out: &T| match codec::encode(out) {
            Ok(bytes) => *lock(&kept) = Some(bytes),
            Err(e) => tracing::warn!("an output was not stored: {}", e.message()),
        };
        match self.0 {
            ExecutionKind::Async(fut) => Execution::from_future(async move {
                let out = fut.await?;
                keep(&out);
                Ok(out)
            }),
            ExecutionKind::Blocking(run) => Execution::blocking(move || {
                let out = run()?;
                keep(&out);
                Ok(out)
            }),
        }
    }

    fn map<U: 'static>(self, f: fn(T) -> Result<U, TaskError>) -> Execution<U> {
        match self.0 {
            ExecutionKind::Async(fut) => {
                Execution::from_future(async move { fut.await.and_then(f) })
            }
            ExecutionKind::Blocking(run) => Execution::blocking(move || run().and_then(f)),
        }
    }
}

/// Where an attempt leaves its output's encoding, when someone needs the
/// bytes (the cache, the run store).
pub(crate) type KeptOutput = Arc<Mutex<Option<Vec<u8>>>>;

/// Checks that an output's stored bytes read back (see `Body::output_check`).
pub(crate) type OutputCheck = fn(&[u8]) -> Result<(), TaskError>;

/// Encodes an output after the attempt, where the bytes are needed: the
/// run store packs a recorded output straight into its batch.
pub(crate) type OutputEncoder<T> = fn(&T, &mut Vec<u8>) -> Result<(), TaskError>;

/// A task's inputs with the function that runs it, behind one type per output.
pub(crate) trait Body<T>: Send + 'static {
    fn input_hash(&self) -> InputHash;
    /// A second body with the same inputs (for another attempt), made by
    /// encoding and decoding them: inputs need not be `Clone`.
    fn duplicate(&self) -> Result<Box<dyn Body<T>>, TaskError>;
    /// The canonical encoding of the inputs in the cache key.
    fn cache_inputs(&self) -> Result<Vec<u8>, TaskError>;
    /// The task's output type, as Rust names it (part of the cache key).
    fn output_type(&self) -> &'static str;
    /// The inputs, encoded as the registry reads them (stored with a run).
    fn encode_inputs(&self) -> Result<Vec<u8>, TaskError>;
    /// An output stored earlier, decoded.
    fn decode_output(&self, bytes: &[u8]) -> Result<T, TaskError>;
    /// Whether `bytes` from [`Body::encode_inputs`] read back (a type that
    /// needs a self-describing format encodes, but never decodes).
    fn inputs_read_back(&self, bytes: &[u8]) -> Result<(), TaskError>;
    /// Checks that an output's stored bytes read back.
    fn output_check(&self) -> OutputCheck;
    /// The attempt; with `kept`, its output is also encoded there.
    fn execute(self: Box<Self>, kept: Option<KeptOutput>) -> Execution<T>;
    /// How to encode an output afterwards; `None` when only the attempt can
    /// (the output is converted after it runs: use `kept`).
    fn output_encoder(&self) -> Option<OutputEncoder<T>>;
}

/// `bytes`, stored earlier as `body`'s output, decoded; `None` (with a
/// warning naming `task` and `what` they were) when they no longer decode,
/// e.g. after the output type changed: the task then runs instead.
pub(crate) fn decode_stored<T: 'static>(
    body: &dyn Body<T>,
    bytes: &[u8],
    task: &str,
    what: &str,
) -> Option<T> {
    body.decode_output(bytes)
        .map_err(|e| {
            tracing::warn!(
                "task {task}: {what} no longer decodes ({}); running the task",
                e.message()
            )
        })
        .ok()
}

struct Inputs<In, T> {
    inputs: In,
    exec: fn(In) -> Execution<T>,
    cache_key: fn(&In) -> Result<Vec<u8>, TaskError>,
}

impl<In, T> Body<T> for Inputs<In, T>
where
    In: Serialize + DeserializeOwned + Send + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    fn input_hash(&self) -> InputHash {
        InputHash::of(&self.inputs)
    }

    fn duplicate(&self) -> Result<Box<dyn Body<T>>, TaskError> {
        let bytes = codec::encode(&self.inputs)?;
        Ok(Box::new(Inputs {
            inputs: codec::decode::<In>(&bytes)?,
            exec: self.exec,
            cache_key: self.cache_key,
        }))
    }

    fn cache_inputs(&self) -> Result<Vec<u8>, TaskError> {
        (self.cache_key)(&self.inputs)
    }

    fn output_type(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn encode_inputs(&self) -> Result<Vec<u8>, TaskError> {
        codec::encode(&self.inputs)
    }

    fn decode_output(&self, bytes: &[u8]) -> Result<T, TaskError> {
        codec::decode(bytes)
    }

    fn inputs_read_back(&self, bytes: &[u8]) -> Result<(), TaskError> {
        codec::decode::<In>(bytes).map(drop)
    }

    fn output_check(&self) -> OutputCheck {
        |bytes| codec::decode::<T>(bytes).map(drop)
    }

    fn output_encoder(&self) -> Option<OutputEncoder<T>> {
        Some(|out, buf| codec::encode_into(out, buf))
    }

    fn execute(self: Box<Self>, kept: Option<KeptOutput>) -> Execution<T> {
        let execution = (self.exec)(self.inputs);
        match kept {
            Some(kept) => execution.keeping_output(kept),
            None => execution,
        }
    }
}

/// A body whose output is converted (e.g. encoded) after it runs.
struct Mapped<T, U> {
    inner: Box<dyn Body<T>>,
    f: fn(T) -> Result<U, TaskError>,
}

impl<T: 'static, U: 'static> Body<U> for Mapped<T, U> {
    fn input_hash(&self) -> InputHash {
        self.inner.input_hash()
    }

    fn duplicate(&self) -> Result<Box<dyn Body<U>>, TaskError> {
        Ok(Box::new(Mapped {
            inner: self.inner.duplicate()?,
            f: self.f,
        }))
    }

    fn cache_inputs(&self) -> Result<Vec<u8>, TaskError> {
        self.inner.cache_inputs()
    }

    fn output_type(&self) -> &'static str {
        self.inner.output_type()
    }

    fn encode_inputs(&self) -> Result<Vec<u8>, TaskError> {
        self.inner.encode_inputs()
    }

    fn decode_output(&self, bytes: &[u8]) -> Result<U, TaskError> {
        self.inner.decode_output(bytes).and_then(self.f)
    }

    fn inputs_read_back(&self, bytes: &[u8]) -> Result<(), TaskError> {
        self.inner.inputs_read_back(bytes)
    }

    // The stored bytes are the inner output's.
    fn output_check(&self) -> OutputCheck {
        self.inner.output_check()
    }

    fn execute(self: Box<Self>, kept: Option<KeptOutput>) -> Execution<U> {
        self.inner.execute(kept).map(self.f)
    }

    fn output_encoder(&self) -> Option<OutputEncoder<U>> {
        None
    }
}

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

    /// Runs the call to its end, blocking this thread: for sync code (a
    /// sync `#[task]`, `fn main`, a plain thread).
    ///
    /// # Errors
    ///
    /// The task's error; or [`ErrorKind::Runtime`](flyte_core::ErrorKind::Runtime)
    /// when called on a thread that runs async tasks, where blocking could
    /// deadlock: `.await` there instead.
    pub fn wait(self) -> Result<T, TaskError> {
        wait::block_on(self.into_future()).and_then(|r| r)
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

/// The future of an awaited [`TaskCall`].
///
/// # Cancel safety
///
/// Dropping it cancels the action and everything it started.
#[must_use = "futures do nothing unless polled"]
pub struct CallFuture<T>(BoxFuture<T>);

impl<T> Future for CallFuture<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for CallFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallFuture")
    }
}

impl<T: Send + 'static> IntoFuture for TaskCall<T> {
    type Output = Result<T, TaskError>;
    type IntoFuture = CallFuture<T>;

    fn into_future(self) -> CallFuture<T> {
        CallFuture(Box::pin(async move {
            match Scope::current() {
                Some(parent) => run_action(self, Place::Direct(parent)).await,
                // Awaited outside any run: an ephemeral run of its own.
                None => {
                    let run = RunShared::new(None);
                    let result = run_action(self, Place::Root(Arc::clone(&run))).await;
                    // Cached outputs reach the disk before the caller goes on.
                    run.durability.close(&run.id, None).await;
                    result
                }
            }
        }))
    }
}
