//! The `#[task]` attribute of flyte. Use it through the `flyte` crate.

mod args;
mod ast;
mod expand;
mod valid;

use proc_macro::TokenStream;

/// Turns a function into a flyte task.
///
/// Calling the function then returns a `TaskCall` that runs the body when
/// awaited (`.await`) or waited on (`.wait()`); the task is listed in
/// `flyte::registry()` as `"<env>.<fn>"`. Parameters are taken by value and,
/// like the output, are `Serialize + DeserializeOwned + Send + 'static`; a
/// `Result<T, E>` output makes `E` a `TaskError` of kind `User`.
///
/// ```
/// use flyte::prelude::*;
///
/// #[task]
/// fn double(x: i64) -> i64 {
///     x * 2
/// }
///
/// #[task]
/// async fn total(items: Vec<i64>) -> Result<i64, TaskError> {
///     Ok(flyte::map(double, items).await?.iter().sum())
/// }
///
/// assert_eq!(flyte::run(total(vec![1, 2, 3]))?, 12);
/// assert_eq!(double(4).task_name(), "default.double");
/// # Ok::<(), TaskError>(())
/// ```
///
/// # Keys
///
/// Every key is optional and given at most once; the most specific setting
/// wins (a call's override, then the key, then the environment).
///
/// `env = STATIC`: the `static TaskEnvironment` the task belongs to (default
/// `"default"`); its name is the first part of the task's name.
///
/// ```
/// # use flyte::prelude::*;
/// static PARSING: TaskEnvironment = TaskEnvironment::new("parsing").retries(2);
///
/// #[task(env = PARSING)]
/// fn words(text: String) -> usize {
///     text.split_whitespace().count()
/// }
///
/// assert_eq!(words("a b".into()).task_name(), "parsing.words");
/// ```
///
/// `name = "..."`: replaces the part after the dot.
///
/// ```
/// # use flyte::prelude::*;
/// #[task(name = "word_count")]
/// fn words(text: String) -> usize {
///     text.split_whitespace().count()
/// }
///
/// assert_eq!(words("a b".into()).task_name(), "default.word_count");
/// ```
///
/// `retries = N`: attempts after the first, for `User`, `Panic` and
/// `Timeout` errors.
///
/// ```
/// # use flyte::prelude::*;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static TRIES: AtomicU32 = AtomicU32::new(0);
///
/// #[task(retries = 2, backoff = Backoff::none())]
/// fn flaky() -> Result<u32, TaskError> {
///     match TRIES.fetch_add(1, Ordering::SeqCst) {
///         0 | 1 => Err(TaskError::new(ErrorKind::User, "not yet")),
///         n => Ok(n),
///     }
/// }
///
/// assert_eq!(flaky().wait()?, 2);
/// # Ok::<(), TaskError>(())
/// ```
///
/// `timeout = "10s"`: the limit of each attempt (units `ms`, `s`, `m`, `h`;
/// `"0s"` means no limit).
///
/// ```
/// # use flyte::prelude::*;
/// #[task(timeout = "50ms")]
/// async fn slow() -> u8 {
///     tokio::time::sleep(std::time::Duration::from_secs(5)).await;
///     1
/// }
///
/// assert_eq!(slow().wait().unwrap_err().kind(), ErrorKind::Timeout);
/// ```
///
/// `backoff = <const Backoff>`: the wait between attempts (default:
/// exponential from 200 ms, factor 2, cap 30 s, jittered).
///
/// ```
/// # use flyte::prelude::*;
/// use std::time::Duration;
///
/// #[task(retries = 3, backoff = Backoff::exponential(Duration::from_millis(10)).jitter(false))]
/// fn fetch(page: u32) -> u32 {
///     page
/// }
/// # assert_eq!(fetch(1).wait()?, 1);
/// # Ok::<(), TaskError>(())
/// ```
///
/// `cache = "auto" | "override" | "disable"`: reuse a stored output when
/// the task's name, code version, output type and inputs match (`auto`),
/// always run and replace it (`override`), or neither (`disable`).
///
/// `cache_version = "..."`: the version in the cache key, instead of the
/// one derived from the function's tokens (so a reformatted or rewritten
/// body can keep its cached outputs, or a changed output type drop them).
///
/// `cache_ignore = [param, ...]`: parameters left out of the cache key.
///
/// ```
/// # use flyte::prelude::*;
/// #[task(cache = "auto", cache_version = "v2", cache_ignore = [verbose])]
/// fn embed(text: String, verbose: bool) -> Vec<u8> {
///     text.into_bytes()
/// }
///
/// # let home = std::env::temp_dir().join(format!("flyte-doc-task-cache-{}", std::process::id()));
/// let runner = flyte::Runner::new().home(&home);
/// runner.run(embed("hi".into(), false)).into_output()?;
/// // Another `verbose`, the same key: a hit.
/// let again = runner.run(embed("hi".into(), true));
/// assert_eq!(again.actions().origin, flyte::Origin::Cached);
/// # std::fs::remove_dir_all(&home).ok();
/// # Ok::<(), TaskError>(())
/// ```
///
/// Mistakes are compile errors on the offending token that say what to
/// write instead: references, generics, `self`, `const fn`, `impl Trait`
/// arguments, unknown or repeated keys, a bad timeout or environment name.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::task(attr.into(), item.into()).into()
}
