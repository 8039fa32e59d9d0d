//! `group`: label the actions started inside a future.

use crate::context::Scope;
use std::future::{Future, IntoFuture};

/// Runs `fut` (any future, or a `map`/`gather`/task call), labelling every action it starts with the group `name`.
///
/// Groups nest: inside `group("a", group("b", ...))` actions are in group
/// `"a/b"`. The label shows in the action tree ([`ActionNode::group`]) and
/// in [`Context::group`]. Outside any run, `fut` runs unlabelled.
///
/// [`ActionNode::group`]: crate::ActionNode::group
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
/// # Cancel safety
///
/// Dropping the returned future drops `fut`.
pub fn group<F: IntoFuture>(name: impl AsRef<str>, fut: F) -> impl Future<Output = F::Output> {
    let name = name.as_ref().to_owned();
    let fut = fut.into_future();
    async move {
        match Scope::current() {
            Some(scope) => scope.with_group(&name).enter(fut).await,
            None => fut.await,
        }
    }
}
