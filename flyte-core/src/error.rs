//! [`TaskError`], the one error type of the framework, and its [`ErrorKind`].

use serde::{Deserialize, Serialize};
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// What kind of failure a [`TaskError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The task returned an error of its own (`Err(e)`).
    User,
    /// The task panicked; the panic was caught and the process goes on.
    Panic,
    /// An attempt ran past its time limit.
    Timeout,
    /// The action was cancelled: a sibling failed (fail-fast), the caller
    /// dropped the future, or the run was stopped.
    Cancelled,
    /// Input given by name or by bytes did not fit the task's parameters, or
    /// a value could not be encoded or decoded.
    Input,
    /// No task is registered under the name asked for.
    UnknownTask,
    /// The program is set up wrongly, e.g. two tasks share one name.
    Config,
    /// The call was made where it cannot run, e.g. `.wait()` on an async
    /// worker thread, or the runtime could not start.
    Runtime,
    /// A `map` with `min_success_ratio` had too few successful items.
    TooFewSuccesses,
    /// The run store under `FLYTE_HOME` could not be opened, read or
    /// written, or a run to resume was not found in it.
    Store,
    /// In a fleet: no live worker could run the task (no worker has this
    /// task at this code version) within the time allowed.
    NoWorker,
    /// In a fleet: the workers running the action died, again and again
    /// (`flyte_core::queue::MAX_DEATHS` times): the task is taken to kill
    /// whoever runs it.
    WorkerLost,
}

impl ErrorKind {
    /// A short lowercase name, e.g. `"user"`, `"timeout"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::User => "user",
            ErrorKind::Panic => "panic",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Input => "input",
            ErrorKind::UnknownTask => "unknown_task",
            ErrorKind::Config => "config",
            ErrorKind::Runtime => "runtime",
            ErrorKind::TooFewSuccesses => "too_few_successes",
            ErrorKind::Store => "store",
            ErrorKind::NoWorker => "no_worker",
            ErrorKind::WorkerLost => "worker_lost",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The in-process original behind a user error, reachable by `downcast_ref`.
#[derive(Clone)]
enum Original {
    Std(Arc<dyn std::error::Error + Send + Sync + 'static>),
    Anyhow(Arc<anyhow::Error>),
}

#[derive(Clone, Serialize, Deserialize)]
struct Inner {
    kind: ErrorKind,
    task: Option<String>,
    message: String,
    attempt: u32,
    max_attempts: u32,
    index: Option<usize>,
    /// False when the task marked the error final: no retry helps.
    #[serde(default = "retryable_by_default")]
    retryable: bool,
    #[serde(skip)]
    original: Option<Original>,
}

fn retryable_by_default() -> bool {
    true
}

/// A task failed: why, where and after how many attempts.
///
/// One type across the framework. It is serializable (it is stored with a run
/// and crosses process boundaries), so a task may return
/// `Vec<Result<T, TaskError>>`; the original error behind
/// [`downcast_ref`](TaskError::downcast_ref) lives in-process only and does
/// not survive serialization.
///
/// # Examples
///
/// ```
/// use flyte_core::{ErrorKind, TaskError};
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("bad input")]
/// struct BadInput;
///
/// let err = TaskError::user(BadInput)
///     .with_task("my_env.process_item")
///     .with_attempts(2, 3)
///     .with_index(3);
/// assert_eq!(err.kind(), ErrorKind::User);
/// assert_eq!(
///     err.to_string(),
///     "task my_env.process_item failed (item 3, attempt 2/3): bad input"
/// );
/// assert!(err.downcast_ref::<BadInput>().is_some());
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct TaskError {
    // Boxed so that `Result<T, TaskError>` stays one pointer wider than `T`.
    inner: Box<Inner>,
}

impl TaskError {
    /// An error of `kind` with `message`, not yet tied to a task.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        TaskError {
            inner: Box::new(Inner {
                kind,
                task: None,
                message: message.into(),
                attempt: 0,
                max_attempts: 0,
                index: None,
                retryable: true,
                original: None,
            }),
        }
    }

    /// A user error ([`ErrorKind::User`]) wrapping `err`, which stays
    /// reachable through [`downcast_ref`](TaskError::downcast_ref).
    pub fn user<E>(err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut out = TaskError::new(ErrorKind::User, error_chain(&err));
        out.inner.original = Some(Original::Std(Arc::new(err)));
        out
    }

    /// An error of `kind` caused by `err`: its message is `err`'s chain, and
    /// `err` stays its source and reachable through
    /// [`downcast_ref`](TaskError::downcast_ref).
    pub fn from_source<E>(kind: ErrorKind, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut out = TaskError::new(kind, error_chain(&err));
        out.inner.original = Some(Original::Std(Arc::new(err)));
        out
    }

    /// A user error ([`ErrorKind::User`]) from an [`anyhow::Error`]; the
    /// message carries its whole context chain.
    pub fn from_anyhow(err: anyhow::Error) -> Self {
        let mut out = TaskError::new(ErrorKind::User, format!("{err:#}"));
        out.inner.original = Some(Original::Anyhow(Arc::new(err)));
        out
    }

    /// A user error that must not be retried, whatever the task's retries
    /// (Flyte's `NonRecoverableError`): the task fails after this attempt.
    ///
    /// # Examples
    ///
    /// ```
    /// use flyte_core::TaskError;
    ///
    /// let err = TaskError::non_retryable(std::io::Error::other("account closed"));
    /// assert!(!err.is_retryable());
    /// ```
    pub fn non_retryable<E>(err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        TaskError::user(err).into_non_retryable()
    }

    /// This error, marked final: it is not retried.
    #[must_use]
    pub fn into_non_retryable(mut self) -> Self {
        self.inner.retryable = false;
        self
    }

    /// Whether a retry may help: false for errors marked with
    /// [`TaskError::non_retryable`] and for kinds that never retry
    /// (`Cancelled`, `Input`, `UnknownTask`, `Config`, `Runtime`,
    /// `TooFewSuccesses`). `User`, `Panic` and `Timeout` errors retry.
    pub fn is_retryable(&self) -> bool {
        self.inner.retryable
            && matches!(
                self.inner.kind,
                ErrorKind::User | ErrorKind::Panic | ErrorKind::Timeout
            )
    }

    /// A [`ErrorKind::Cancelled`] error.
    pub fn cancelled() -> Self {
        TaskError::new(ErrorKind::Cancelled, "cancelled")
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The failing task's name (`"<env>.<fn>"`), when the error came from a task.
    pub fn task(&self) -> Option<&str> {
        self.inner.task.as_deref()
    }

    /// What went wrong, without the task and attempt prefix of `Display`.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// How many attempts ran before this error was final (0 when no attempt
    /// ran, e.g. for an unknown task name).
    pub fn attempts(&self) -> u32 {
        self.inner.attempt
    }

    /// How many attempts the task was allowed (`retries + 1`).
    pub fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    /// The input index of the failed item, when it came from `map` or `gather`.
    pub fn index(&self) -> Option<usize> {
        self.inner.index
    }

    /// The original error the task returned, if it is an `E` and this error
    /// was not deserialized from elsewhere.
    pub fn downcast_ref<E>(&self) -> Option<&E>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        match self.inner.original.as_ref()? {
            Original::Std(err) => err.downcast_ref::<E>(),
            Original::Anyhow(err) => err.downcast_ref::<E>(),
        }
    }

    /// Sets the task name (kept if one is set already by a deeper task).
    #[must_use]
    pub fn with_task(mut self, task: impl Into<String>) -> Self {
        self.inner.task = Some(task.into());
        self
    }

    /// Sets the attempt count: `attempt` of `max_attempts`.
    #[must_use]
    pub fn with_attempts(mut self, attempt: u32, max_attempts: u32) -> Self {
        self.inner.attempt = attempt;
        self.inner.max_attempts = max_attempts;
        self
    }

    /// Sets the input index of a fan-out item.
    #[must_use]
    pub fn with_index(mut self, index: usize) -> Self {
        self.inner.index = Some(index);
        self
    }
}

/// `err` and its sources, joined with `": "` as anyhow's `{:#}` does.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        match &inner.task {
            Some(task) => write!(f, "task {task} failed")?,
            None => write!(f, "{} error", inner.kind)?,
        }
        let show_attempts = inner.max_attempts > 1;
        match (inner.index, show_attempts) {
            (Some(i), true) => write!(
                f,
                " (item {i}, attempt {}/{})",
                inner.attempt, inner.max_attempts
            )?,
            (Some(i), false) => write!(f, " (item {i})")?,
            (None, true) => write!(f, " (attempt {}/{})", inner.attempt, inner.max_attempts)?,
            (None, false) => {}
        }
        write!(f, ": {}", inner.message)
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("TaskError")
            .field("kind", &inner.kind)
            .field("task", &inner.task)
            .field("message", &inner.message)
            .field("attempt", &inner.attempt)
            .field("max_attempts", &inner.max_attempts)
            .field("index", &inner.index)
            .field("retryable", &inner.retryable)
            .finish()
    }
}

impl std::error::Error for TaskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.inner.original.as_ref()? {
            Original::Std(err) => Some(&**err as &(dyn std::error::Error + 'static)),
            Original::Anyhow(err) => Some(err.as_ref().as_ref()),
        }
    }
}

/// Turns a panic payload into the message of an [`ErrorKind::Panic`] error.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Boom(u32);
    impl fmt::Display for Boom {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "boom {}", self.0)
        }
    }
    impl std::error::Error for Boom {}

    #[test]
    fn display_names_task_item_and_attempt() {
        let err = TaskError::user(Boom(1))
            .with_task("e.f")
            .with_attempts(2, 3)
            .with_index(3);
        assert_eq!(
            err.to_string(),
            "task e.f failed (item 3, attempt 2/3): boom 1"
        );
        let single = TaskError::user(Boom(1))
            .with_task("e.f")
            .with_attempts(1, 1);
        assert_eq!(single.to_string(), "task e.f failed: boom 1");
        let untied = TaskError::new(ErrorKind::UnknownTask, "no task named x");
        assert_eq!(untied.to_string(), "unknown_task error: no task named x");
    }

    #[test]
    fn downcast_reaches_std_and_anyhow_originals() {
        let err = TaskError::user(Boom(7));
        assert_eq!(err.downcast_ref::<Boom>(), Some(&Boom(7)));
        assert!(err.downcast_ref::<std::io::Error>().is_none());

        let err = TaskError::from_anyhow(anyhow::Error::new(Boom(8)).context("while loading"));
        assert_eq!(err.downcast_ref::<Boom>(), Some(&Boom(8)));
        assert_eq!(err.message(), "while loading: boom 8");
    }

    #[test]
    fn serde_round_trip_keeps_fields_but_not_the_original() {
        let err = TaskError::user(Boom(2))
            .with_task("e.f")
            .with_attempts(1, 2)
            .with_index(9);
        let json = serde_json::to_string(&err).unwrap();
        let back: TaskError = serde_json::from_str(&json).unwrap();
        assert_eq!(back.kind(), ErrorKind::User);
        assert_eq!(back.task(), Some("e.f"));
        assert_eq!(back.index(), Some(9));
        assert_eq!(back.attempts(), 1);
        assert_eq!(back.to_string(), err.to_string());
        assert!(back.downcast_ref::<Boom>().is_none());
        let final_error = TaskError::non_retryable(Boom(1));
        let back: TaskError =
            serde_json::from_str(&serde_json::to_string(&final_error).unwrap()).unwrap();
        assert!(!back.is_retryable());
        assert!(!TaskError::cancelled().is_retryable());
    }

    #[test]
    fn message_includes_source_chain() {
        let io = std::io::Error::other(Boom(3));
        let err = TaskError::user(io);
        assert_eq!(err.message(), "boom 3");
        assert!(std::error::Error::source(&err).is_some());
    }
}
