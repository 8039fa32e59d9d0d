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
/// `flyte::registry()` as `"<env>.<fn>"`.
///
/// Keys: `env = STATIC` (a `static TaskEnvironment`; default `"default"`),
/// `name = "..."` (replaces the part after the dot), `retries = N`,
/// `timeout = "10s"` (units `ms`, `s`, `m`, `h`), `backoff = <const Backoff>`
/// (e.g. `Backoff::exponential(Duration::from_millis(50)).jitter(false)`).
///
/// See the `flyte` crate for examples.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::task(attr.into(), item.into()).into()
}
