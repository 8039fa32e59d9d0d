//! `map`: one task over many inputs, with bounded concurrency.

use crate::execution::fan_out::{FanOut, IterSource, Source, StreamSource};
use crate::execution::wait;
use crate::state::tree::FanOutKind;
use crate::task::call::TaskCall;
use flyte_core::{ErrorKind, TaskError};
use futures_core::Stream;
use futures_util::StreamExt;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Runs `f` over every item of `items`, as a fan-out of actions.
///
/// `f` is a task (`process_item`) or a closure that returns a task call
/// (`|x| scale(x, factor)`, to bind extra arguments). Items are read lazily,
/// as slots free up: memory grows with the concurrency, not the input.
///
/// Awaiting it is **fail-fast**: the first error (first in time) is returned
/// with its item index, every item in flight is cancelled (with its
/// children) and no further input is read. Results come back in input order.
/// See [`Map::collect_errors`], [`Map::as_completed`] and
/// [`Map::min_success_ratio`] for the other forms.
///
/// How items run: a sync task runs on a blocking thread. An async task is
/// polled by the map's own task while it is quick (no spawn, no thread hop:
/// the common case of I/O-bound items, and why a map costs less than a
/// hand-written `JoinSet` loop); once an item spends more than 100 µs of CPU
/// in one poll, it moves to a tokio task of its own and the map spawns its
/// later items, so CPU-heavy async items run in parallel across workers.
///
/// # Examples
///
/// ```
/// use flyte::prelude::*;
///
/// #[task]
/// fn process_item(x: i64) -> i64 {
///     x * 2
/// }
///
/// #[task]
/// fn scale(x: i64, factor: i64) -> i64 {
///     x * factor
/// }
///
/// #[task]
/// async fn main_task(n: i64) -> Result<(Vec<i64>, Vec<i64>), TaskError> {
///     let doubled = flyte::map(process_item, 0..n).concurrency(64).await?;
///     let factor = 10;
///     let scaled = flyte::map(move |x| scale(x, factor), 0..n).await?; // bind extra arguments
///     Ok((doubled, scaled))
/// }
///
/// let (doubled, scaled) = flyte::run(main_task(4))?;
/// assert_eq!(doubled, [0, 2, 4, 6]);
/// assert_eq!(scaled, [0, 10, 20, 30]);
/// # Ok::<(), TaskError>(())
/// ```
///
/// # Errors
///
/// The first item error, with [`TaskError::index`] set.
///
/// # Cancel safety
///
/// Dropping the future cancels every item in flight.
pub fn map<F, I, T>(f: F, items: I) -> Map<IterSource<I::IntoIter>, F>
where
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
    F: FnMut(I::Item) -> TaskCall<T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    Map::new(IterSource(Box::new(items.into_iter())), f, FanOutKind::Map)
}

/// [`map`] over an async `Stream` of inputs, polled as slots free up.
///
/// # Examples
///
/// ```
/// use flyte::prelude::*;
///
/// #[task]
/// async fn fetch(url: String) -> usize {
///     url.len()
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), TaskError> {
/// let urls = tokio_stream::iter(vec!["a".to_owned(), "bb".to_owned()]);
/// let sizes = flyte::map_stream(fetch, urls).concurrency(100).await?;
/// assert_eq!(sizes, [1, 2]);
/// # Ok(()) }
/// ```
pub fn map_stream<F, S, T>(f: F, items: S) -> Map<StreamSource<S>, F>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
    F: FnMut(S::Item) -> TaskCall<T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    Map::new(StreamSource(Box::pin(items)), f, FanOutKind::Map)
}

/// A `map` not yet started; see [`map`]. Await it, `.wait()` it, or turn
/// it into another form.
#[must_use = "a map does nothing until it is awaited or waited on"]
pub struct Map<Src, F> {
    source: Src,
    f: F,
    concurrency: usize,
    stagger: Option<Duration>,
    kind: FanOutKind,
}

impl<Src, F> fmt::Debug for Map<Src, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("concurrency", &self.concurrency)
            .field("stagger", &self.stagger)
            .finish_non_exhaustive()
    }
}

impl<Src, F, T> Map<Src, F>
where
    Src: Source,
    F: FnMut(Src::Item) -> TaskCall<T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(source: Src, f: F, kind: FanOutKind) -> Self {
        Map {
            source,
            f,
            concurrency: 0,
            stagger: None,
            kind,
        }
    }

    /// At most `n` items run at once; `0` (the default) means unbounded.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Starts items at least `gap` apart (fastcore's `pause`), e.g. to be
    /// gentle with a service. Combines with `concurrency`.
    pub fn stagger(mut self, gap: Duration) -> Self {
        self.stagger = Some(gap);
        self
    }

    /// Settle instead of failing fast: every item runs, and each outcome
    /// comes back in input order.
    ///
    /// # Examples
    ///
    /// ```
    /// use flyte::prelude::*;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("odd")]
    /// struct Odd;
    ///
    /// #[task]
    /// fn even(x: u8) -> Result<u8, Odd> {
    ///     if x % 2 == 0 { Ok(x) } else { Err(Odd) }
    /// }
    ///
    /// let all = flyte::map(even, 0..4).collect_errors().wait();
    /// assert!(all[0].is_ok() && all[2].is_ok());
    /// assert_eq!(all[1].as_ref().unwrap_err().index(), Some(1));
    /// ```
    pub fn collect_errors(self) -> MapSettled<Src, F> {
        MapSettled(self)
    }

    /// Results as they complete: a stream of `(index, Result)`. Input is
    /// still read lazily, so an endless input works. No item is cancelled
    /// because another failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use flyte::prelude::*;
    /// use futures_util::StreamExt;
    ///
    /// #[task]
    /// async fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// # #[tokio::main] async fn main() {
    /// // An endless input: only what is consumed is read.
    /// let mut done = flyte::map(square, 0..).concurrency(8).as_completed().take(10);
    /// while let Some((index, result)) = done.next().await {
    ///     assert_eq!(result.unwrap(), (index * index) as u64);
    /// }
    /// # }
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the stream cancels every item in flight.
    pub fn as_completed(self) -> AsCompleted<T> {
        AsCompleted(Box::pin(self.into_fan_out()))
    }

    /// Settle every item, and succeed when at least `ratio` of them (0.0 to
    /// 1.0) succeeded: failed items are `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flyte::prelude::*;
    ///
    /// #[task]
    /// fn check(x: u8) -> Result<u8, std::io::Error> {
    ///     if x == 3 { Err(std::io::Error::other("bad")) } else { Ok(x) }
    /// }
    ///
    /// let out = flyte::map(check, 0..5).min_success_ratio(0.8).wait()?;
    /// assert_eq!(out, [Some(0), Some(1), Some(2), None, Some(4)]);
    /// let err = flyte::map(check, 0..5).min_success_ratio(0.9).wait().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::TooFewSuccesses);
    /// # Ok::<(), TaskError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TooFewSuccesses`] when fewer succeed (its message quotes
    /// the first failure); [`ErrorKind::Config`] when `ratio` is not in 0.0..=1.0.
    pub fn min_success_ratio(self, ratio: f64) -> MapRatio<Src, F> {
        MapRatio { map: self, ratio }
    }

    /// Runs the map to its end, blocking this thread (for sync code).
    ///
    /// # Errors
    ///
    /// As `.await`; or [`ErrorKind::Runtime`] on a thread that runs async tasks.
    pub fn wait(self) -> Result<Vec<T>, TaskError> {
        wait::block_on(self.into_future()).and_then(|r| r)
    }

    fn into_fan_out(self) -> FanOut<Src, F, T> {
        FanOut::new(
            self.source,
            self.f,
            self.concurrency,
            self.stagger,
            self.kind,
        )
    }
}

impl<Src, F, T> IntoFuture for Map<Src, F>
where
    Src: Source,
    F: FnMut(Src::Item) -> TaskCall<T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    type Output = Result<Vec<T>, TaskError>;
    type IntoFuture = MapFuture<Result<Vec<T>, TaskError>>;

    fn into_future(self) -> Self::IntoFuture {
        let mut fan_out = self.into_fan_out();
        MapFuture(Box::pin(async move {
            let mut slots: Vec<Option<T>> = Vec::new();
            while let Some((index, result)) = fan_out.next().await {
                match result {
                    Ok(value) => put(&mut slots, index, value),
                    Err(e) => {
                        fan_out.cancel_all().await;
                        return Err(e);
                    }
                }
            }
            complete(slots, fan_out.launched())
        }))
    }
}

/// The outputs in input order, if every launched item returned one.
fn complete<T>(mut slots: Vec<Option<T>>, launched: usize) -> Result<Vec<T>, TaskError> {
    slots.resize_with(launched, || None);
    slots
        .into_iter()
        .collect::<Option<Vec<T>>>()
        .ok_or_else(|| {
            TaskError::new(
                ErrorKind::Cancelled,
                "map items stopped before finishing (is the tokio runtime shutting down?)",
            )
        })
}

fn put<T>(slots: &mut Vec<Option<T>>, index: usize, value: T) {
    if slots.len() <= index {
        slots.resize_with(index + 1, || None);
    }
    slots[index] = Some(value);
}

/// Settles every item in input order; an item that never returned (the
/// runtime shut down under it) is a `Cancelled` error in its place.
async fn settle<Src, F, T>(mut fan_out: FanOut<Src, F, T>) -> Vec<Result<T, TaskError>>
where
    Src: Source,
    F: FnMut(Src::Item) -> TaskCall<T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    let mut slots: Vec<Option<Result<T, TaskError>>> = Vec::new();
    while let Some((index, result)) = fan_out.next().await {
        put(&mut slots, index, result);
    }
    slots.resize_with(fan_out.launched(), || None);
    slots
        .into_iter()
        .map(|slot| slot.unwrap_or_else(|| Err(TaskError::cancelled())))
        .collect()
}

/// The future of an awaited map (or gather).
///
/// # Cancel safety
///
/// Dropping it cancels every item in flight.
#[must_use = "futures do nothing unless polled"]
pub struct MapFuture<T>(BoxFuture<T>);

impl<T> MapFuture<T> {
    pub(crate) fn new(fut: impl Future<Output = T> + Send + 'static) -> Self {
        MapFuture(Box::pin(fut))
    }
}

impl<T> Future for MapFuture<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.0.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for MapFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MapFuture")
    }
}

/// A map that settles every item; see [`Map::collect_errors`].
#[must_use = "a map does nothing until it is awaited or waited on"]
#[derive(Debug)]
pub struct MapSettled<Src, F>(Map<Src, F>);

impl<Src, F, T> MapSettled<Src, F>
where
    Src: Source,
    F: FnMut(Src::Item) -> TaskCall<T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    /// At most `n` items run at once; `0` means unbounded.
    pub fn concurrency(self, n: usize) -> Self {
        MapSettled(self.0.concurrency(n))
    }

    /// Starts items at least `gap` apart.
    pub fn stagger(self, gap: Duration) -> Self {
        MapSettled(self.0.stagger(gap))
    }

    /// Runs every item, blocking this thread (for sync code).
    ///
    /// Called on a thread that runs async tasks it cannot run: the result
    /// is then a single [`ErrorKind::Runtime`] error.
    pub fn wait(self) -> Vec<Result<T, TaskError>> {
        wait::block_on(self.into_future()).unwrap_or_else(|e| vec![Err(e)])
    }
}

impl<Src, F, T> IntoFuture for MapSettled<Src, F>
where
    Src: Source,
    F: FnMut(Src::Item) -> TaskCall<T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    type Output = Vec<Result<T, TaskError>>;
    type IntoFuture = MapFuture<Vec<Result<T, TaskError>>>;

    fn into_future(self) -> Self::IntoFuture {
        let fan_out = self.0.into_fan_out();
        MapFuture(Box::pin(settle(fan_out)))
    }
}

/// A map that succeeds when enough items succeed; see [`Map::min_success_ratio`].
#[must_use = "a map does nothing until it is awaited or waited on"]
#[derive(Debug)]
pub struct MapRatio<Src, F> {
    map: Map<Src, F>,
    ratio: f64,
}

impl<Src, F, T> MapRatio<Src, F>
where
    Src: Source,
    F: FnMut(Src::Item) -> TaskCall<T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    /// At most `n` items run at once; `0` means unbounded.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.map = self.map.concurrency(n);
        self
    }

    /// Starts items at least `gap` apart.
    pub fn stagger(mut self, gap: Duration) -> Self {
        self.map = self.map.stagger(gap);
        self
    }

    /// Runs every item, blocking this thread (for sync code).
    ///
    /// # Errors
    ///
    /// As `.await`; or [`ErrorKind::Runtime`] on a thread that runs async tasks.
    pub fn wait(self) -> Result<Vec<Option<T>>, TaskError> {
        wait::block_on(self.into_future()).and_then(|r| r)
    }
}

impl<Src, F, T> IntoFuture for MapRatio<Src, F>
where
    Src: Source,
    F: FnMut(Src::Item) -> TaskCall<T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    type Output = Result<Vec<Option<T>>, TaskError>;
    type IntoFuture = MapFuture<Result<Vec<Option<T>>, TaskError>>;

    fn into_future(self) -> Self::IntoFuture {
        let ratio = self.ratio;
        let fan_out = self.map.into_fan_out();
        MapFuture(Box::pin(async move {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(TaskError::new(
                    ErrorKind::Config,
                    format!(
                        "min_success_ratio({ratio}) is out of range: give a value from 0.0 to 1.0"
                    ),
                ));
            }
            let results = settle(fan_out).await;
            check_ratio(results, ratio)
        }))
    }
}

fn check_ratio<T>(
    results: Vec<Result<T, TaskError>>,
    ratio: f64,
) -> Result<Vec<Option<T>>, TaskError> {
    let total = results.len();
    let succeeded = results.iter().filter(|r| r.is_ok()).count();
    if total > 0 && (succeeded as f64) < ratio * total as f64 {
        let first = results.into_iter().find_map(Result::err);
        let cause = first.map_or(String::new(), |e| format!("; first failure: {e}"));
        return Err(TaskError::new(
            ErrorKind::TooFewSuccesses,
            format!(
                "only {succeeded} of {total} items succeeded, below min_success_ratio {ratio}{cause}"
            ),
        ));
    }
    Ok(results.into_iter().map(Result::ok).collect())
}

/// Results of a map as they complete; see [`Map::as_completed`].
///
/// # Cancel safety
///
/// Dropping the stream cancels every item in flight.
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<T>(Pin<Box<dyn Stream<Item = Completed<T>> + Send>>);

/// One finished item of a map: its input index and its outcome.
pub type Completed<T> = (usize, Result<T, TaskError>);

impl<T> Stream for AsCompleted<T> {
    type Item = (usize, Result<T, TaskError>);
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx)
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AsCompleted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_counts_successes() {
        assert_eq!(complete(vec![Some(1), Some(2)], 2).unwrap(), vec![1, 2]);
        let err = complete(vec![Some(1)], 2).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        let ok = check_ratio(vec![Ok(1), Err(TaskError::cancelled()), Ok(3), Ok(4)], 0.75).unwrap();
        assert_eq!(ok, vec![Some(1), None, Some(3), Some(4)]);
        let err = check_ratio(vec![Ok(1), Err(TaskError::cancelled())], 0.75).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooFewSuccesses);
        assert!(err.message().contains("only 1 of 2"), "{err}");
        assert!(check_ratio::<i32>(vec![], 1.0).unwrap().is_empty());
    }
}
