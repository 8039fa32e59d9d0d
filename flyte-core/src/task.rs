//! [`TaskDef`]: the static description of one `#[task]` function.

use crate::backoff::Backoff;
use crate::cache::Cache;
use crate::env::TaskEnvironment;
use std::sync::OnceLock;
use std::time::Duration;

/// The static description of a task, made by `#[task]` for each function.
///
/// Users read it through the registry; the macro builds it with
/// [`TaskDef::new`].
#[derive(Debug)]
pub struct TaskDef {
    env: &'static TaskEnvironment,
    fn_name: &'static str,
    name_override: Option<&'static str>,
    params: &'static [&'static str],
    retries: Option<u32>,
    timeout: Option<Duration>,
    backoff: Option<Backoff>,
    version: &'static str,
    is_async: bool,
    file: &'static str,
    line: u32,
    cache: Option<Cache>,
    cache_version: Option<&'static str>,
    full_name: OnceLock<String>,
}

impl TaskDef {
    /// Describes a task. Called by the code `#[task]` generates.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)] // mirrors the attribute's keys one for one
    pub const fn new(
        env: &'static TaskEnvironment,
        fn_name: &'static str,
        name_override: Option<&'static str>,
        params: &'static [&'static str],
        retries: Option<u32>,
        timeout: Option<Duration>,
        backoff: Option<Backoff>,
        version: &'static str,
        is_async: bool,
        file: &'static str,
        line: u32,
    ) -> Self {
        TaskDef {
            env,
            fn_name,
            name_override,
            params,
            retries,
            timeout,
            backoff,
            version,
            is_async,
            file,
            line,
            cache: None,
            cache_version: None,
            full_name: OnceLock::new(),
        }
    }

    /// The task's own cache setting and version, from
    /// `#[task(cache = ..., cache_version = ...)]`. Called by the code
    /// `#[task]` generates.
    #[doc(hidden)]
    #[must_use]
    pub const fn with_cache(mut self, cache: Option<Cache>, version: Option<&'static str>) -> Self {
        self.cache = cache;
        self.cache_version = version;
        self
    }

    /// The task's name, `"<env>.<fn>"` (or `"<env>.<name>"` with `name = ...`).
    #[inline] // read several times per action: keep it a load and a branch
    pub fn name(&self) -> &str {
        self.full_name.get_or_init(|| {
            format!(
                "{}.{}",
                self.env.name(),
                self.name_override.unwrap_or(self.fn_name)
            )
        })
    }

    /// The environment the task is bound to.
    pub fn env(&self) -> &'static TaskEnvironment {
        self.env
    }

    /// The Rust function's name.
    pub fn fn_name(&self) -> &'static str {
        self.fn_name
    }

    /// The parameter names, in order.
    pub fn params(&self) -> &'static [&'static str] {
        self.params
    }

    /// The code version, derived at compile time from the function's
    /// signature and body as tokens: formatting, comments and docs do not
    /// change it; any change to the code does. 32 hex digits.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// Whether the task is an `async fn` (otherwise it runs on a blocking thread).
    pub fn is_async(&self) -> bool {
        self.is_async
    }

    /// Where the task is declared, as `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// Retries in force for a call: the call's override, else the task's,
    /// else the environment's, else none.
    pub fn retries_for(&self, call_override: Option<u32>) -> u32 {
        call_override
            .or(self.retries)
            .or(self.env.retries_setting())
            .unwrap_or(0)
    }

    /// The backoff in force for a call, most specific first, else
    /// [`Backoff::DEFAULT`].
    pub fn backoff_for(&self, call_override: Option<Backoff>) -> Backoff {
        call_override
            .or(self.backoff)
            .or(self.env.backoff_setting())
            .unwrap_or(Backoff::DEFAULT)
    }

    /// The cache setting in force for a call: the call's override, else the
    /// task's, else the environment's, else [`Cache::Disable`].
    pub fn cache_for(&self, call_override: Option<Cache>) -> Cache {
        call_override
            .or(self.cache)
            .or(self.env.cache_setting())
            .unwrap_or(Cache::Disable)
    }

    /// The version cached outputs are filed under: `cache_version = "..."`
    /// when given, else the [code version](TaskDef::version).
    pub fn cache_version(&self) -> &'static str {
        self.cache_version.unwrap_or(self.version)
    }

    /// The per-attempt time limit in force for a call, most specific first.
    ///
    /// A zero limit means no limit, as `concurrency(0)` means no bound: the
    /// most specific setting still wins, so `.timeout(Duration::ZERO)` on a
    /// call lifts the task's or environment's limit for that call.
    pub fn timeout_for(&self, call_override: Option<Duration>) -> Option<Duration> {
        call_override
            .or(self.timeout)
            .or(self.env.timeout_setting())
            .filter(|limit| !limit.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ENV: TaskEnvironment = TaskEnvironment::new("env").retries(1);

    #[test]
    fn names_and_most_specific_policy_win() {
        let def = TaskDef::new(
            &ENV,
            "f",
            None,
            &["x"],
            Some(4),
            None,
            None,
            "v1",
            false,
            "f.rs",
            3,
        );
        assert_eq!(def.name(), "env.f");
        assert_eq!(def.retries_for(None), 4);
        assert_eq!(def.retries_for(Some(0)), 0);
        assert_eq!(def.timeout_for(None), None);
        assert_eq!(def.location(), "f.rs:3");
        assert_eq!(def.version(), "v1");
        // Every other setting left to the environment.
        let bare = |env: &'static TaskEnvironment, name_override| {
            TaskDef::new(
                env,
                "f",
                name_override,
                &[],
                None,
                None,
                None,
                "v1",
                true,
                "f.rs",
                1,
            )
        };
        let renamed = bare(&ENV, Some("g"));
        assert_eq!(renamed.name(), "env.g");
        assert_eq!(renamed.retries_for(None), 1);
        assert_eq!(renamed.backoff_for(None), Backoff::DEFAULT);
        assert_eq!(renamed.cache_for(None), Cache::Disable);
        assert_eq!(renamed.cache_version(), "v1");
        static CACHED: TaskEnvironment = TaskEnvironment::new("cached").cache(Cache::Auto);
        let cached = |cache, version| bare(&CACHED, None).with_cache(cache, version);
        let pinned = cached(None, Some("v2"));
        assert_eq!(pinned.cache_for(None), Cache::Auto);
        assert_eq!(pinned.cache_version(), "v2");
        let off = cached(Some(Cache::Disable), None);
        assert_eq!(off.cache_for(None), Cache::Disable);
        assert_eq!(off.cache_for(Some(Cache::Override)), Cache::Override);
        let fixed = Backoff::fixed(Duration::from_millis(1));
        assert_eq!(renamed.backoff_for(Some(fixed)), fixed);
    }
}
