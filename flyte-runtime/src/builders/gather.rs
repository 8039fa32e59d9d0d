//! `gather`: run calls of different tasks side by side, like `asyncio.gather`.

use crate::builders::map::{Map, MapFuture};
use crate::execution::fan_out::IterSource;
use crate::execution::wait;
use crate::state::tree::FanOutKind;
use crate::task::call::{AnyBox, TaskCall};
use flyte_core::TaskError;
use std::fmt;
use std::future::IntoFuture;

/// What `gather` accepts: a tuple of up to 12 task calls, or a `Vec` of
/// calls with one output type.
pub trait Gatherable: Send + 'static {
    /// The outputs: a tuple of outputs, or a `Vec`.
    type Output: Send + 'static;
    /// Each outcome: a tuple of `Result`s, or a `Vec` of them.
    type Settled: Send + 'static;
    #[doc(hidden)]
    type Item: Send + 'static;

    #[doc(hidden)]
    fn into_calls(self) -> Vec<TaskCall<Self::Item>>;
    #[doc(hidden)]
    fn assemble(items: Vec<Self::Item>) -> Self::Output;
    #[doc(hidden)]
    fn assemble_settled(items: Vec<Result<Self::Item, TaskError>>) -> Self::Settled;
}

impl<T: Send + 'static> Gatherable for Vec<TaskCall<T>> {
    type Output = Vec<T>;
    type Settled = Vec<Result<T, TaskError>>;
    type Item = T;

    fn into_calls(self) -> Vec<TaskCall<T>> {
        self
    }
    fn assemble(items: Vec<T>) -> Vec<T> {
        items
    }
    fn assemble_settled(items: Vec<Result<T, TaskError>>) -> Self::Settled {
        items
    }
}

/// Takes the next erased output back as a `T`.
fn unerase<T: 'static>(items: &mut impl Iterator<Item = AnyBox>) -> T {
    // Cannot fail: position i of the tuple was erased from a TaskCall of
    // exactly this output type, and every position yields one output.
    *items
        .next()
        .and_then(|b| b.downcast::<T>().ok())
        .expect("gather: outputs match their calls one for one")
}

fn unerase_settled<T: 'static>(
    items: &mut impl Iterator<Item = Result<AnyBox, TaskError>>,
) -> Result<T, TaskError> {
    match items.next() {
        Some(Ok(b)) => Ok(unerase(&mut std::iter::once(b))),
        Some(Err(e)) => Err(e),
        None => Err(TaskError::cancelled()),
    }
}

macro_rules! gather_tuple {
    ($($T:ident $v:ident),+) => {
        impl<$($T: Send + 'static),+> Gatherable for ($(TaskCall<$T>,)+) {
            type Output = ($($T,)+);
            type Settled = ($(Result<$T, TaskError>,)+);
            type Item = AnyBox;

            fn into_calls(self) -> Vec<TaskCall<AnyBox>> {
                let ($($v,)+) = self;
                vec![$($v.erase()),+]
            }
            fn assemble(items: Vec<AnyBox>) -> Self::Output {
                let mut items = items.into_iter();
                ($(unerase::<$T>(&mut items),)+)
            }
            fn assemble_settled(items: Vec<Result<AnyBox, TaskError>>) -> Self::Settled {
                let mut items = items.into_iter();
                ($(unerase_settled::<$T>(&mut items),)+)
            }
        }
    };
}

gather_tuple!(A a);
gather_tuple!(A a, B b);
gather_tuple!(A a, B b, C c);
gather_tuple!(A a, B b, C c, D d);
gather_tuple!(A a, B b, C c, D d, E e);
gather_tuple!(A a, B b, C c, D d, E e, F f);
gather_tuple!(A a, B b, C c, D d, E e, F f, G g);
gather_tuple!(A a, B b, C c, D d, E e, F f, G g, H h);
gather_tuple!(A a, B b, C c, D d, E e, F f, G g, H h, I i);
gather_tuple!(A a, B b, C c, D d, E e, F f, G g, H h, I i, J j);
gather_tuple!(A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k);
gather_tuple!(A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k, L l);

/// Runs several task calls side by side, like `asyncio.gather`.
///
/// Give a tuple of calls to different tasks (up to 12), or a `Vec` of calls
/// with one output type. Awaiting is **fail-fast**: the first error (first
/// in time) is returned with its position (`index()`), the other calls still
/// running are cancelled. [`Gather::collect_errors`] settles every call.
/// Outputs come back in the order the calls were given.
///
/// # Examples
///
/// ```
/// use flyte::prelude::*;
///
/// #[task]
/// async fn update_user(id: u64) -> String {
///     format!("user-{id}")
/// }
///
/// #[task]
/// fn send_email(id: u64) -> bool {
///     id > 0
/// }
///
/// #[task]
/// async fn size(n: u64) -> u64 {
///     n * 10
/// }
///
/// #[task]
/// async fn main_task(id: u64) -> Result<(String, bool, Vec<u64>), TaskError> {
///     let (user, sent) = flyte::gather((update_user(id), send_email(id))).await?;
///     let calls: Vec<_> = (1..=3).map(size).collect();
///     let sizes = flyte::gather(calls).concurrency(8).await?;
///     Ok((user, sent, sizes))
/// }
///
/// let (user, sent, sizes) = flyte::run(main_task(7))?;
/// assert_eq!((user.as_str(), sent, sizes), ("user-7", true, vec![10, 20, 30]));
/// # Ok::<(), TaskError>(())
/// ```
///
/// # Errors
///
/// The first error to happen, with [`TaskError::index`] giving the call's
/// position.
///
/// # Cancel safety
///
/// Dropping the future cancels every call still running.
pub fn gather<G: Gatherable>(calls: G) -> Gather<G> {
    Gather {
        calls,
        concurrency: 0,
    }
}

/// A gather not yet started; see [`gather`].
#[must_use = "a gather does nothing until it is awaited or waited on"]
pub struct Gather<G> {
    calls: G,
    concurrency: usize,
}

impl<G> fmt::Debug for Gather<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gather")
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

type Identity<I> = fn(TaskCall<I>) -> TaskCall<I>;
type CallMap<I> = Map<IterSource<std::vec::IntoIter<TaskCall<I>>>, Identity<I>>;

/// A gather is a map of the identity over its calls.
fn as_map<I: Send + 'static>(calls: Vec<TaskCall<I>>, concurrency: usize) -> CallMap<I> {
    let identity: Identity<I> = |call| call;
    Map::new(
        IterSource(Box::new(calls.into_iter())),
        identity,
        FanOutKind::Gather,
    )
    .concurrency(concurrency)
}

impl<G: Gatherable> Gather<G> {
    /// At most `n` calls run at once; `0` (the default) means unbounded.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Settle instead of failing fast: every call runs, and each outcome
    /// comes back in place.
    pub fn collect_errors(self) -> GatherSettled<G> {
        GatherSettled(self)
    }

    /// Runs every call, blocking this thread (for sync code).
    ///
    /// # Errors
    ///
    /// As `.await`; or [`ErrorKind::Runtime`](flyte_core::ErrorKind::Runtime)
    /// on a thread that runs async tasks.
    pub fn wait(self) -> Result<G::Output, TaskError> {
        wait::block_on(self.into_future()).and_then(|r| r)
    }
}

impl<G: Gatherable> IntoFuture for Gather<G> {
    type Output = Result<G::Output, TaskError>;
    type IntoFuture = MapFuture<Result<G::Output, TaskError>>;

    fn into_future(self) -> Self::IntoFuture {
        let all = as_map(self.calls.into_calls(), self.concurrency).into_future();
        MapFuture::new(async move { all.await.map(G::assemble) })
    }
}

/// A gather that settles every call; see [`Gather::collect_errors`].
#[must_use = "a gather does nothing until it is awaited or waited on"]
#[derive(Debug)]
pub struct GatherSettled<G>(Gather<G>);

impl<G: Gatherable> GatherSettled<G> {
    /// At most `n` calls run at once; `0` means unbounded.
    pub fn concurrency(self, n: usize) -> Self {
        GatherSettled(self.0.concurrency(n))
    }

    /// Runs every call, blocking this thread (for sync code).
    ///
    /// Called on a thread that runs async tasks, every call's outcome is an
    /// [`ErrorKind::Runtime`](flyte_core::ErrorKind::Runtime) error and no
    /// call runs.
    pub fn wait(self) -> G::Settled {
        let calls = self.0.calls.into_calls();
        let count = calls.len();
        let settled = as_map(calls, self.0.concurrency).collect_errors();
        match wait::block_on(settled.into_future()) {
            Ok(items) => G::assemble_settled(items),
            Err(e) => G::assemble_settled((0..count).map(|_| Err(e.clone())).collect()),
        }
    }
}

impl<G: Gatherable> IntoFuture for GatherSettled<G> {
    type Output = G::Settled;
    type IntoFuture = MapFuture<G::Settled>;

    fn into_future(self) -> Self::IntoFuture {
        let settled = as_map(self.0.calls.into_calls(), self.0.concurrency)
            .collect_errors()
            .into_future();
        MapFuture::new(async move { G::assemble_settled(settled.await) })
    }
}
