//! The type-erased body of a call: a task's inputs with the function that
//! runs it, behind one type per output ([`Body`]). The execution machinery
//! runs, hashes, encodes and decodes calls through it without knowing their
//! input types.

use flyte_core::sync::lock;
use flyte_core::{codec, InputHash, TaskError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

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

pub(crate) struct Inputs<In, T> {
    pub(crate) inputs: In,
    pub(crate) exec: fn(In) -> Execution<T>,
    pub(crate) cache_key: fn(&In) -> Result<Vec<u8>, TaskError>,
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
pub(crate) struct Mapped<T, U> {
    pub(crate) inner: Box<dyn Body<T>>,
    pub(crate) f: fn(T) -> Result<U, TaskError>,
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
