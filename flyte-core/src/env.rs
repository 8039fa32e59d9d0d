//! [`TaskEnvironment`]: the settings a group of tasks shares.

use crate::backoff::Backoff;
use crate::cache::Cache;
use std::fmt;
use std::time::Duration;

/// The largest environment concurrency that limits anything: tokio's
/// semaphore holds at most this many permits, and no run has this many
/// tasks at once. [`TaskEnvironment::concurrency`] treats larger values as
/// unbounded.
pub const MAX_CONCURRENCY: usize = usize::MAX >> 4;

/// The settings a group of tasks shares: a name and default policies.
///
/// Declare one as a `static` with the `const` builders, then bind tasks to it
/// with `#[task(env = MY_ENV)]`. A task's name is `"<env>.<fn>"`.
///
/// # Examples
///
/// ```
/// use flyte_core::TaskEnvironment;
/// use std::time::Duration;
///
/// static ENV: TaskEnvironment = TaskEnvironment::new("my_env")
///     .retries(2)
///     .timeout(Duration::from_secs(30));
///
/// assert_eq!(ENV.name(), "my_env");
/// assert_eq!(ENV.retries_setting(), Some(2));
///
/// // Policies for a service that allows 4 calls at once and 50 a second:
/// use flyte_core::Backoff;
/// static SERVICE: TaskEnvironment = TaskEnvironment::new("service")
///     .retries(3)
///     .backoff(Backoff::exponential(Duration::from_millis(50)).cap(Duration::from_secs(2)))
///     .concurrency(4)
///     .rate_limit(50, Duration::from_secs(1));
/// assert_eq!(SERVICE.concurrency_setting(), Some(4));
/// ```
///
/// A bad name in a `static` does not compile:
///
/// ```compile_fail
/// use flyte_core::TaskEnvironment;
/// static BAD: TaskEnvironment = TaskEnvironment::new("My Env");
/// ```
///
/// # Panics
///
/// [`TaskEnvironment::new`] panics when the name breaks the naming rule; in a
/// `static` or `const` that panic is a compile error. To check a name built
/// at run time, use [`TaskEnvironment::try_new`], which never panics.
#[derive(Clone, Copy, PartialEq)]
pub struct TaskEnvironment {
    name: &'static str,
    retries: Option<u32>,
    timeout: Option<Duration>,
    backoff: Option<Backoff>,
    concurrency: Option<usize>,
    rate_limit: Option<RateLimit>,
    cache: Option<Cache>,
}

/// At most `count` task starts in any window of length `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Starts allowed per window.
    pub count: u32,
    /// The window's length.
    pub per: Duration,
}

/// The environment of tasks declared without `env = ...`.
pub static DEFAULT_ENV: TaskEnvironment = TaskEnvironment::new("default");

/// Why an environment name was refused by [`TaskEnvironment::try_new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid environment name {name:?}: use lowercase letters and digits, \
     in words joined by single `_` or `-` (e.g. \"my_env\")"
)]
#[non_exhaustive]
pub struct InvalidEnvName {
    /// The refused name.
    pub name: &'static str,
}

impl TaskEnvironment {
    /// An environment named `name`, with no retries and no timeout.
    ///
    /// Names follow Flyte: `^[a-z0-9]+([_-][a-z0-9]+)*$`.
    ///
    /// # Panics
    ///
    /// When `name` breaks that rule. In a `static` this is a compile error.
    #[must_use]
    pub const fn new(name: &'static str) -> Self {
        match Self::try_new(name) {
            Ok(env) => env,
            Err(_) => panic!(
                "invalid TaskEnvironment name: use lowercase letters and digits, \
                 in words joined by single `_` or `-` (e.g. \"my_env\")"
            ),
        }
    }

    /// An environment named `name`, or an error saying why the name is bad.
    ///
    /// # Errors
    ///
    /// [`InvalidEnvName`] when `name` does not match `^[a-z0-9]+([_-][a-z0-9]+)*$`.
    pub const fn try_new(name: &'static str) -> Result<Self, InvalidEnvName> {
        if !is_valid_env_name(name) {
            return Err(InvalidEnvName { name });
        }
        Ok(Self {
            name,
            retries: None,
            timeout: None,
            backoff: None,
            concurrency: None,
            rate_limit: None,
            cache: None,
        })
    }

    /// Retries for every task of this environment (`n` retries = `n + 1`
    /// attempts), unless the task or the call says otherwise.
    #[must_use]
    pub const fn retries(mut self, n: u32) -> Self {
        self.retries = Some(n);
        self
    }

    /// A time limit for each attempt of every task of this environment,
    /// unless the task or the call says otherwise.
    #[must_use]
    pub const fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// The wait between attempts for every task of this environment,
    /// unless the task or the call says otherwise (default [`Backoff::DEFAULT`]).
    #[must_use]
    pub const fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// At most `n` tasks of this environment run at once across a run
    /// (`0` means unbounded, and so does any `n` above
    /// [`MAX_CONCURRENCY`], a count no run can reach). A task waiting on its
    /// own children does not hold its slot, so parents and children in one
    /// environment never deadlock, even with `n = 1`.
    #[must_use]
    pub const fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = if n == 0 || n > MAX_CONCURRENCY {
            None
        } else {
            Some(n)
        };
        self
    }

    /// In any window of length `per`, at most `count` tasks of this
    /// environment start (every attempt is a start). A sliding window, not a
    /// token bucket: a burst never exceeds `count` within `per`.
    ///
    /// Any `count` and window are accepted: `rate_limit(1, Duration::MAX)`
    /// lets one task start, ever.
    ///
    /// # Panics
    ///
    /// When `count` is 0 or `per` is zero (a compile error in a `static`).
    #[must_use]
    pub const fn rate_limit(mut self, count: u32, per: Duration) -> Self {
        if count == 0 || per.is_zero() {
            panic!("TaskEnvironment::rate_limit needs a count above 0 and a non-zero window");
        }
        self.rate_limit = Some(RateLimit { count, per });
        self
    }

    /// Whether the outputs of this environment's tasks are cached (see
    /// [`Cache`]), unless a task says otherwise with `#[task(cache = ...)]`.
    #[must_use]
    pub const fn cache(mut self, cache: Cache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The environment's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The retries set on this environment, if any.
    pub const fn retries_setting(&self) -> Option<u32> {
        self.retries
    }

    /// The per-attempt time limit set on this environment, if any.
    pub const fn timeout_setting(&self) -> Option<Duration> {
        self.timeout
    }

    /// The backoff set on this environment, if any.
    pub const fn backoff_setting(&self) -> Option<Backoff> {
        self.backoff
    }

    /// The concurrency limit set on this environment, if any.
    pub const fn concurrency_setting(&self) -> Option<usize> {
        self.concurrency
    }

    /// The rate limit set on this environment, if any.
    pub const fn rate_limit_setting(&self) -> Option<RateLimit> {
        self.rate_limit
    }

    /// The cache setting of this environment, if any.
    pub const fn cache_setting(&self) -> Option<Cache> {
        self.cache
    }
}

impl fmt::Debug for TaskEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskEnvironment")
            .field("name", &self.name)
            .field("retries", &self.retries)
            .field("timeout", &self.timeout)
            .field("backoff", &self.backoff)
            .field("concurrency", &self.concurrency)
            .field("rate_limit", &self.rate_limit)
            .field("cache", &self.cache)
            .finish()
    }
}

/// Whether `name` matches `^[a-z0-9]+([_-][a-z0-9]+)*$` (usable in `const`).
pub const fn is_valid_env_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let mut i = 0;
    let mut previous_was_separator = true; // the name may not start with one
    while i < bytes.len() {
        let b = bytes[i];
        let is_word = b.is_ascii_lowercase() || b.is_ascii_digit();
        let is_separator = b == b'_' || b == b'-';
        if is_separator {
            if previous_was_separator {
                return false;
            }
            previous_was_separator = true;
        } else if is_word {
            previous_was_separator = false;
        } else {
            return false;
        }
        i += 1;
    }
    !previous_was_separator
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_flyte_rule() {
        for good in ["a", "my_env", "my-env", "env2", "a_b-c", "0"] {
            assert!(is_valid_env_name(good), "{good} should be valid");
        }
        for bad in ["", "My", "a__b", "_a", "a_", "a b", "a.b", "-a", "é"] {
            assert!(!is_valid_env_name(bad), "{bad} should be invalid");
        }
    }

    #[test]
    fn try_new_reports_the_name() {
        let err = TaskEnvironment::try_new("Bad Name").unwrap_err();
        assert_eq!(err.name, "Bad Name");
        assert!(err.to_string().contains("\"Bad Name\""));
    }

    #[test]
    fn builders_set_policies() {
        const ENV: TaskEnvironment = TaskEnvironment::new("x")
            .retries(3)
            .timeout(Duration::from_millis(5));
        assert_eq!(ENV.retries_setting(), Some(3));
        assert_eq!(ENV.timeout_setting(), Some(Duration::from_millis(5)));
        assert_eq!(DEFAULT_ENV.name(), "default");
    }
}
