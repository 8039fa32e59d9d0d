//! A recorded run as OpenTelemetry spans, sent to a collector over
//! OTLP/HTTP (protobuf): `flyte export RUN --format otlp` (feature `otel`).
//!
//! Every id is derived from the run, the action and the attempt, so that
//! exporting a run twice sends the same spans again, never new ones: the
//! trace id from the run's id, a span id from the run's and the action's
//! ids (and the attempt's number for an attempt's span). Each action is a
//! span under the action that called it (a map's items under the action
//! that ran the map), named after its task, from when its first attempt
//! began to when its last ended; an action that needed more than one
//! attempt has a child span per attempt, so the backoff shows between
//! them.

use flyte_core::record::{micros, AttemptTimes};
use flyte_core::ActionId;
use flyte_report::digest::{Digest, Row};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use std::collections::HashMap;

/// Spans sent in one request at most (a request stays well under the
/// 4 MiB many collectors accept).
pub(crate) const SPANS_PER_REQUEST: usize = 2_000;

/// The trace id of run `run_id`.
pub(crate) fn trace_id(run_id: &str) -> Vec<u8> {
    derived(&[b"flyte trace", run_id.as_bytes()], 16)
}

/// The span id of action `action` of run `run_id`; of its attempt
/// `attempt` (counted from 1) when given.
pub(crate) fn span_id(run_id: &str, action: ActionId, attempt: Option<u32>) -> Vec<u8> {
    let action = action.0.to_le_bytes();
    match attempt {
        None => derived(&[b"flyte span", run_id.as_bytes(), &action], 8),
        Some(n) => derived(
            &[
                b"flyte attempt",
                run_id.as_bytes(),
                &action,
                &n.to_le_bytes(),
            ],
            8,
        ),
    }
}

/// `len` bytes of a hash of `parts` (each length-prefixed, so that no two
/// lists of parts hash alike); never all zero (an invalid id in OTLP).
fn derived(parts: &[&[u8]], len: usize) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let mut id = hasher.finalize().as_bytes()[..len].to_vec();
    if id.iter().all(|&b| b == 0) {
        id[len - 1] = 1;
    }
    id
}

fn nanos(us: i64) -> u64 {
    u64::try_from(us).unwrap_or(0).saturating_mul(1_000)
}

fn text(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// The spans of a digested run: one per action, and one per attempt of the
/// actions in `attempts` (those that needed more than one).
pub(crate) fn spans(d: &Digest, attempts: &HashMap<ActionId, Vec<AttemptTimes>>) -> Vec<Span> {
    let run_id = d.run.id.as_str();
    let trace = trace_id(run_id);
    let mut spans = Vec::with_capacity(d.rows.len());
    for row in &d.rows {
        let id = span_id(run_id, row.id, None);
        let mut attributes = vec![
            text("flyte.run.id", run_id),
            text("flyte.action.id", row.id.to_string()),
            text("flyte.task", d.task(row)),
            text("flyte.status", row.status.as_str()),
            text("flyte.origin", format!("{:?}", row.origin).to_lowercase()),
            int("flyte.attempts", i64::from(row.attempts)),
            int("flyte.waited_us", row.waited_us()),
        ];
        if let Some(name) = &d.run.name {
            attributes.push(text("flyte.run.name", name.clone()));
        }
        if let Some((f, index)) = row.item {
            attributes.push(text(
                "flyte.fan_out.id",
                d.fan_outs[f as usize].record.id.to_string(),
            ));
            attributes.push(int(
                "flyte.item.index",
                i64::try_from(index).unwrap_or(i64::MAX),
            ));
        }
        spans.push(Span {
            trace_id: trace.clone(),
            span_id: id.clone(),
            parent_span_id: row
                .parent
                .map(|p| span_id(run_id, p, None))
                .unwrap_or_default(),
            name: d.task(row).to_owned(),
            kind: span::SpanKind::Internal as i32,
            start_time_unix_nano: nanos(row.start_us),
            end_time_unix_nano: nanos(row.end_us),
            attributes,
            status: Some(status_of(d, row)),
            ..Span::default()
        });
        for (n, attempt) in attempts.get(&row.id).into_iter().flatten().enumerate() {
            let number = u32::try_from(n + 1).unwrap_or(u32::MAX);
            spans.push(Span {
                trace_id: trace.clone(),
                span_id: span_id(run_id, row.id, Some(number)),
                parent_span_id: id.clone(),
                name: format!("{} attempt {number}", d.task(row)),
                kind: span::SpanKind::Internal as i32,
                start_time_unix_nano: nanos(micros(attempt.started_at)),
                end_time_unix_nano: nanos(micros(attempt.ended_at)),
                attributes: vec![
                    text("flyte.run.id", run_id),
                    text("flyte.action.id", row.id.to_string()),
                    int("flyte.attempt", i64::from(number)),
                ],
                ..Span::default()
            });
        }
    }
    spans
}

fn status_of(d: &Digest, row: &Row) -> Status {
    match d.error(row) {
        Some(e) if row.status == flyte_core::record::ActionStatus::Failed => Status {
            message: format!("[{}] {}", e.kind().as_str(), e.message()),
            code: status::StatusCode::Error as i32,
        },
        _ if row.status == flyte_core::record::ActionStatus::Succeeded => Status {
            message: String::new(),
            code: status::StatusCode::Ok as i32,
        },
        _ => Status::default(),
    }
}

/// `spans` as requests of at most [`SPANS_PER_REQUEST`] spans, each with
/// the resource (`service.name`: `OTEL_SERVICE_NAME`, else `flyte`) and
/// the instrumentation scope.
pub(crate) fn requests(spans: Vec<Span>, service: &str) -> Vec<ExportTraceServiceRequest> {
    let mut spans = spans.into_iter().peekable();
    let mut out = Vec::new();
    while spans.peek().is_some() {
        let chunk: Vec<Span> = spans.by_ref().take(SPANS_PER_REQUEST).collect();
        out.push(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![text("service.name", service)],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "flyte".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..InstrumentationScope::default()
                    }),
                    spans: chunk,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        });
    }
    out
}

/// The URL spans go to: `endpoint` as given when it names the traces
/// path, else with `/v1/traces` added (as the OTLP exporters do with
/// `OTEL_EXPORTER_OTLP_ENDPOINT`).
pub(crate) fn traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    if trimmed.ends_with("/v1/traces") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    }
}

/// `OTEL_EXPORTER_OTLP_HEADERS` (`key=value,key2=value2`, values
/// percent-encoded), sent with every request; never shown.
pub(crate) fn headers_from_env() -> Vec<(String, String)> {
    std::env::var("OTEL_EXPORTER_OTLP_HEADERS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().replace("%20", " ")))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_derived_and_distinct() {
        let a = ActionId(7);
        assert_eq!(trace_id("r1").len(), 16);
        assert_eq!(span_id("r1", a, None).len(), 8);
        assert_eq!(
            trace_id("r1"),
            trace_id("r1"),
            "the same run, the same trace"
        );
        assert_ne!(trace_id("r1"), trace_id("r2"));
        assert_eq!(span_id("r1", a, None), span_id("r1", a, None));
        assert_ne!(span_id("r1", a, None), span_id("r2", a, None));
        assert_ne!(span_id("r1", a, None), span_id("r1", ActionId(8), None));
        assert_ne!(span_id("r1", a, None), span_id("r1", a, Some(1)));
        assert_ne!(span_id("r1", a, Some(1)), span_id("r1", a, Some(2)));
    }

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
