//! [`Cache`]: whether a task's outputs are reused across runs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether a task's outputs are kept and reused, as in Flyte's `cache=`.
///
/// Set it on an environment with [`TaskEnvironment::cache`](crate::TaskEnvironment::cache)
/// or on one task with `#[task(cache = "auto")]`; the task's setting wins.
/// Without either, caching is off.
///
/// A cached output is found again by a key made of the task's name, its
/// version (derived from its code, or `cache_version = "..."`), its output
/// type and the canonical encoding of its inputs (less those named in
/// `cache_ignore = [...]`).
///
/// # Examples
///
/// ```
/// use flyte_core::{Cache, TaskEnvironment};
///
/// static ENV: TaskEnvironment = TaskEnvironment::new("etl").cache(Cache::Auto);
/// assert_eq!(ENV.cache_setting(), Some(Cache::Auto));
/// assert_eq!("override".parse::<Cache>(), Ok(Cache::Override));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Cache {
    /// Reuse a stored output when the key matches; store new outputs.
    Auto,
    /// Always run, and store the output over any stored one.
    Override,
    /// Never read or write the cache.
    Disable,
}

impl Cache {
    /// The word used in `#[task(cache = "...")]`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Cache::Auto => "auto",
            Cache::Override => "override",
            Cache::Disable => "disable",
        }
    }

    /// Whether outputs are written to the cache.
    pub const fn writes(self) -> bool {
        matches!(self, Cache::Auto | Cache::Override)
    }
}

impl fmt::Display for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not a [`Cache`] setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cache setting {0:?}: use \"auto\", \"override\" or \"disable\"")]
pub struct UnknownCache(pub String);

impl std::str::FromStr for Cache {
    type Err = UnknownCache;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Cache::Auto),
            "override" => Ok(Cache::Override),
            "disable" => Ok(Cache::Disable),
            other => Err(UnknownCache(other.to_owned())),
        }
    }
}
