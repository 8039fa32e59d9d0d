//! Tracing spans, target `flyte`: a `run` and each `fan_out` at INFO, each
//! `action` at DEBUG, each `attempt` at TRACE. They nest as the work does:
//! a run holds its root action, an action its attempts, an attempt the
//! fan-outs and direct calls its body makes, a fan-out its items. Fields are named `flyte.*`,
//! plus `otel.name` and `otel.status_code` for OpenTelemetry exporters;
//! inputs and outputs are never recorded. Retries and cache hits are DEBUG
//! events.
//!
//! Spans are a listener on the run's sink ([`Spans`]), there only when, as
//! the run begins, a subscriber wants flyte's INFO spans: with no
//! subscriber, or one filtering them out, a run has no span listener and an
//! action pays nothing for spans. A span a subscriber does not want at its
//! level is never made (an action at DEBUG, an attempt at TRACE).

use crate::watch::sink::{
    ActionEnded, ActionStart, FanOutClosed, FanOutStart, Listener, Retry, RunStart,
};
use flyte_core::record::{ActionStatus, FanOutKind, Origin, RunStatus};
use flyte_core::store::{RunClosed, RunEnd, StoreFuture};
use flyte_core::ActionId;
use std::sync::Arc;
use tracing::field::Empty;
use tracing::span::Id;
use tracing::{Level, Span};

/// The target of every span and event flyte emits.
pub(crate) const TARGET: &str = "flyte";

/// The listener that makes spans.
#[derive(Debug)]
pub(crate) struct Spans;

impl Spans {
    /// The listener, when a subscriber wants flyte's spans now.
    pub(crate) fn wanted() -> Option<Arc<dyn Listener>> {
        tracing::enabled!(target: TARGET, Level::INFO).then(|| Arc::new(Spans) as Arc<dyn Listener>)
    }
}

impl Listener for Spans {
    fn hears_starts(&self) -> bool {
        true
    }

    fn run_started(&self, run: &RunStart<'_>) -> Option<Span> {
        let span = self::run(run.id, run.name, run.task);
        (!span.is_disabled()).then_some(span)
    }

    fn fan_out_started(&self, start: &FanOutStart<'_>) -> Option<Span> {
        let span = fan_out(
            start.kind,
            start.id,
            start.concurrency,
            start.run_span.clone(),
        );
        (!span.is_disabled()).then_some(span)
    }

    fn action_started(&self, start: &ActionStart<'_>) -> Option<Span> {
        action(start.id, start.task, start.index, start.parent_span.clone())
    }

    fn attempt_started(&self, task: &'static str, number: u32) -> Option<Span> {
        attempt(task, number)
    }

    fn retrying(&self, retry: &Retry<'_>) {
        tracing::event!(
            target: TARGET,
            Level::DEBUG,
            flyte.task = retry.task,
            flyte.attempt = retry.attempt,
            flyte.wait_ms = u64::try_from(retry.wait.as_millis()).unwrap_or(u64::MAX),
            flyte.error = retry.error.message(),
            "retrying"
        );
    }

    fn action(&self, ended: &ActionEnded<'_>) {
        let end = &ended.end;
        if end.origin == Origin::Cached {
            // Inside the action's span, when it has one.
            tracing::event!(target: TARGET, Level::DEBUG, flyte.task = end.task, "cache hit");
        }
        let Some(span) = ended.span else {
            return;
        };
        span.record("flyte.status", end.status.as_str());
        span.record("flyte.attempts", end.attempts);
        if let Some(error) = end.error {
            span.record("flyte.error", error.message());
        }
        span.record(
            "otel.status_code",
            otel_code(end.status == ActionStatus::Succeeded),
        );
    }

    fn fan_out_closed(&self, closed: &FanOutClosed<'_>) {
        let Some(span) = closed.span else {
            return;
        };
        let [started, succeeded, failed, cancelled] = closed.counts;
        span.record("flyte.task", closed.task);
        span.record("flyte.started", started);
        span.record("flyte.succeeded", succeeded);
        span.record("flyte.failed", failed);
        span.record("flyte.cancelled", cancelled);
        span.record("otel.status_code", otel_code(failed == 0 && cancelled == 0));
    }

    fn run(&self, end: RunEnd, span: Option<&Span>) -> StoreFuture<'_, Option<RunClosed>> {
        if let Some(span) = span {
            span.record("flyte.status", end.status.as_str());
            span.record(
                "otel.status_code",
                otel_code(end.status == RunStatus::Succeeded),
            );
        }
        Box::pin(std::future::ready(None))
    }
}

/// The span of a run.
fn run(id: &str, name: Option<&str>, task: &str) -> Span {
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
fn action(id: ActionId, task: &str, index: Option<usize>, parent: Option<Id>) -> Option<Span> {
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
fn attempt(task: &str, attempt: u32) -> Option<Span> {
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
fn fan_out(kind: FanOutKind, id: ActionId, concurrency: Option<u32>, run: Option<Id>) -> Span {
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

/// OpenTelemetry's status code: `OK` for what succeeded, else `ERROR`.
fn otel_code(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "ERROR"
    }
}
