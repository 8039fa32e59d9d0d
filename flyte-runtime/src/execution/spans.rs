//! Tracing spans, target `flyte`: a `run` and each `fan_out` at INFO, each
//! `action` at DEBUG, each `attempt` at TRACE. They nest as the work does:
//! a run holds its root action, an action its attempts, an attempt the
//! fan-outs and direct calls its body makes, a fan-out its items. Fields are named `flyte.*`,
//! plus `otel.name` and `otel.status_code` for OpenTelemetry exporters;
//! inputs and outputs are never recorded. Retries and cache hits are DEBUG
//! events.
//!
//! A span a subscriber does not want is never made: with no subscriber, or
//! one filtering at INFO, an action costs one check of a static callsite.

use crate::state::tree::{ActionStatus, FanOutKind};
use flyte_core::record::RunStatus;
use flyte_core::{ActionId, TaskError};
use tracing::field::Empty;
use tracing::span::Id;
use tracing::{Level, Span};

/// The target of every span and event flyte emits.
pub(crate) const TARGET: &str = "flyte";

/// The span of a run.
pub(crate) fn run(id: &str, name: Option<&str>, task: &str) -> Span {
    tracing::info_span!(
        target: TARGET,
        "run",
        flyte.run_id = id,
        flyte.run_name = name,
        flyte.task = task,
        flyte.status = Empty,
        otel.name = format_args!("run {task}"),
        otel.status_code = Empty,
    )
}

/// The span of one action (`index` for a `map`/`gather` item, `parent` its
/// fan-out's span), or `None` when no subscriber wants it. Without a
/// `parent`, the current span (the caller's attempt) is its parent.
#[inline] // once per action: with no subscriber, a check of the callsite's interest
pub(crate) fn action(
    id: ActionId,
    task: &str,
    index: Option<usize>,
    parent: Option<Id>,
) -> Option<Span> {
    macro_rules! action_span {
        ($($parent:tt)*) => {
            tracing::debug_span!(
                target: TARGET,
                $($parent)*
                "action",
                flyte.action_id = %id,
                flyte.task = task,
                flyte.index = index,
                flyte.status = Empty,
                flyte.attempts = Empty,
                flyte.error = Empty,
                otel.name = task,
                otel.status_code = Empty,
            )
        };
    }
    let span = match parent {
        Some(parent) => action_span!(parent: parent,),
        None => action_span!(),
    };
    (!span.is_disabled()).then_some(span)
}

/// The span of one attempt, or `None` when no subscriber wants it.
pub(crate) fn attempt(task: &str, attempt: u32) -> Option<Span> {
    let span = tracing::trace_span!(
        target: TARGET,
        "attempt",
        flyte.task = task,
        flyte.attempt = attempt,
        otel.name = format_args!("{task} attempt {attempt}"),
    );
    (!span.is_disabled()).then_some(span)
}

/// The span of one `map` or `gather`: under the current span (the attempt
/// that runs it) when there is one, else under `run` (when only INFO spans
/// are wanted, no attempt span is made).
pub(crate) fn fan_out(
    kind: FanOutKind,
    id: ActionId,
    concurrency: Option<u32>,
    run: Option<Id>,
) -> Span {
    macro_rules! fan_out_span {
        ($($parent:tt)*) => {
            tracing::info_span!(
                target: TARGET,
                $($parent)*
                "fan_out",
                flyte.kind = kind.as_str(),
                flyte.fan_out_id = %id,
                flyte.concurrency = concurrency,
                flyte.task = Empty,
                flyte.started = Empty,
                flyte.succeeded = Empty,
                flyte.failed = Empty,
                flyte.cancelled = Empty,
                otel.name = kind.as_str(),
                otel.status_code = Empty,
            )
        };
    }
    match run {
        Some(run) if Span::current().is_none() => fan_out_span!(parent: run,),
        _ => fan_out_span!(),
    }
}

/// Records how an action (or a run) ended on its span.
pub(crate) fn ended(span: &Span, status: ActionStatus, attempts: u32, error: Option<&TaskError>) {
    if span.is_disabled() {
        return;
    }
    span.record("flyte.status", ActionStatus::as_str(status));
    span.record("flyte.attempts", attempts);
    if let Some(error) = error {
        span.record("flyte.error", error.message());
    }
    span.record(
        "otel.status_code",
        otel_code(status == ActionStatus::Succeeded),
    );
}

/// Records how a run ended on its span.
pub(crate) fn run_ended(span: &Span, status: RunStatus) {
    span.record("flyte.status", status.as_str());
    span.record(
        "otel.status_code",
        otel_code(status == RunStatus::Succeeded),
    );
}

/// Records what a fan-out did on its span.
pub(crate) fn fan_out_ended(span: &Span, task: Option<&str>, counts: [u64; 4]) {
    if span.is_disabled() {
        return;
    }
    let [started, succeeded, failed, cancelled] = counts;
    span.record("flyte.task", task);
    span.record("flyte.started", started);
    span.record("flyte.succeeded", succeeded);
    span.record("flyte.failed", failed);
    span.record("flyte.cancelled", cancelled);
    span.record("otel.status_code", otel_code(failed == 0 && cancelled == 0));
}

/// An attempt failed and the task runs again after `wait`.
pub(crate) fn retrying(task: &str, attempt: u32, wait: std::time::Duration, error: &TaskError) {
    tracing::event!(
        target: TARGET,
        Level::DEBUG,
        flyte.task = task,
        flyte.attempt = attempt,
        flyte.wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        flyte.error = error.message(),
        "retrying"
    );
}

/// A cached task's output came from the cache.
pub(crate) fn cache_hit(task: &str) {
    tracing::event!(target: TARGET, Level::DEBUG, flyte.task = task, "cache hit");
}

/// OpenTelemetry's status code: `OK` for what succeeded, else `ERROR`.
fn otel_code(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "ERROR"
    }
}
