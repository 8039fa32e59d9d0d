//! `group`: label the actions started inside a future.

use crate::state::context::Scope;
use flyte_core::TaskError;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::task::futures::TaskLocalFuture;

/// Runs `fut` (any future, or a `map`/`gather`/task call), labelling every action it starts with the group `name`.
///
/// Groups nest: inside `group("a", group("b", ...))` actions are in group
/// `"a/b"`. The label shows in the action tree ([`ActionNode::group`]) and
/// in [`Context::group`]. Outside any run, `fut` runs unlabelled.
///
/// [`ActionNode::group`]: flyte_core::record::ActionRecord::group
/// [`Context::group`]: crate::Context::group
///
/// # Examples
///
/// ```
/// use flyte::prelude::*;
///
/// #[task]
/// fn clean(row: String) -> String {
///     row.trim().to_owned()
/// }
///
/// #[task]
/// async fn etl(rows: Vec<String>) -> Result<Vec<String>, TaskError> {
///     flyte::group("cleaning", flyte::map(clean, rows).concurrency(8)).await
/// }
///
/// let outcome = flyte::Runner::new().run(etl(vec![" a ".into()]));
/// assert_eq!(outcome.actions().fan_outs[0].group.as_deref(), Some("cleaning"));
/// assert_eq!(outcome.into_output()?, ["a"]);
/// # Ok::<(), TaskError>(())
/// ```
///
/// In sync code (a sync task, `fn main`), `.wait()` runs a group whose
/// output is a `Result<_, TaskError>` (a task call, a fail-fast `map` or
/// `gather`) to its end:
///
/// ```
/// use flyte::prelude::*;
///
/// #[task]
/// fn clean(row: String) -> String {
///     row.trim().to_owned()
/// }
///
/// #[task]
/// fn etl(rows: Vec<String>) -> Result<Vec<String>, TaskError> {
///     flyte::group("cleaning", flyte::map(clean, rows)).wait()
/// }
///
/// assert_eq!(flyte::run(etl(vec![" b ".into()]))?, ["b"]);
/// # Ok::<(), TaskError>(())
/// ```
///
/// # Cancel safety
///
/// Dropping the returned future drops `fut`.
pub fn group<F: IntoFuture>(name: impl AsRef<str>, fut: F) -> Group<F::IntoFuture> {
    Group {
        state: State::Start {
            name: name.as_ref().to_owned(),
            fut: Box::pin(fut.into_future()),
        },
    }
}

/// The future of [`group`]: the wrapped future, with its actions labelled.
///
/// # Cancel safety
///
/// Dropping it drops the wrapped future.
#[must_use = "futures do nothing unless polled"]
pub struct Group<F: Future> {
    state: State<F>,
}

enum State<F: Future> {
    /// Not polled yet: the run, and so the group's full name, is known at
    /// the first poll.
    Start {
        name: String,
        fut: Pin<Box<F>>,
    },
    /// Inside a run: labelled.
    Labelled(Pin<Box<TaskLocalFuture<Scope, Pin<Box<F>>>>>),
    /// Outside any run.
    Plain(Pin<Box<F>>),
    Done,
}

impl<F: Future> Future for Group<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut self.state;
        if let State::Start { .. } = this {
            let State::Start { name, fut } = std::mem::replace(this, State::Done) else {
                unreachable!("matched above")
            };
            *this = match Scope::current() {
                Some(scope) => State::Labelled(Box::pin(scope.with_group(&name).enter(fut))),
                None => State::Plain(fut),
            };
        }
        let polled = match this {
            State::Labelled(fut) => fut.as_mut().poll(cx),
            State::Plain(fut) => fut.as_mut().poll(cx),
            State::Start { .. } | State::Done => panic!("a flyte::group polled after it ended"),
        };
        if polled.is_ready() {
            *this = State::Done;
        }
        polled
    }
}

impl<T, F: Future<Output = Result<T, TaskError>>> Group<F> {
    /// Runs the group to its end, blocking this thread: for sync code.
    ///
    /// # Errors
    ///
    /// The wrapped future's error; or [`ErrorKind::Runtime`](flyte_core::ErrorKind::Runtime)
    /// when called on a thread that runs async tasks, where blocking could
    /// deadlock: `.await` there instead.
    pub fn wait(self) -> Result<T, TaskError> {
        crate::execution::wait::block_on(self).and_then(|r| r)
    }
}

impl<F: Future> fmt::Debug for Group<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Group")
    }
}
