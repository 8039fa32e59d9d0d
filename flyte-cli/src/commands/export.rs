//! `flyte export RUN --format chrome-trace|jsonl|otlp`.
//!
//! Trace Event JSON puts each action on a row (`tid`) of its own while it
//! runs, so no two overlap on a row (what Perfetto needs of complete
//! events); JSON lines give the run, each fan-out and each action as one
//! object, with a `type` field; OTLP sends the run's spans to a collector
//! (see `crate::otlp`).

use crate::args::{ExportArgs, ExportFormat};
use crate::error::{CliError, Exit};
use crate::output;
use crate::refs::resolve;
use crate::Ctx;
use flyte_report::digest::us_to_ms;
use flyte_report::{status_word, Digest};
use serde_json::json;
use std::io::{BufWriter, Write};

pub(crate) fn export(ctx: &Ctx, args: &ExportArgs) -> Result<Exit, CliError> {
    let store = ctx.store()?;
    let (key, run) = resolve(store.as_ref(), &args.run.run)?;
    let digest = flyte_report::digest(store.as_ref(), key, run)?;
    if args.format == ExportFormat::Otlp {
        return otlp(store.as_ref(), key, &digest, &args.endpoint);
    }
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(std::fs::File::create(path).map_err(
            |e| CliError::usage(format!("cannot create {}: {e}", path.display())),
        )?)),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    match args.format {
        ExportFormat::ChromeTrace => chrome_trace(&digest, &mut out)?,
        ExportFormat::Jsonl => jsonl(&digest, &mut out)?,
        ExportFormat::Otlp => unreachable!("sent above"),
    }
    out.flush()?;
    Ok(Exit::Ok)
}

fn chrome_trace(d: &Digest, out: &mut dyn Write) -> std::io::Result<()> {
    let (placed, _) = flyte_report::lanes::by_start(&d.rows);
    let t0 = placed.first().map_or(0, |(r, _)| r.queued_us);
    write!(out, "{{\"displayTimeUnit\":\"ms\",\"otherData\":")?;
    serde_json::to_writer(
        &mut *out,
        &json!({"run": d.run.id, "task": d.run.root_task, "status": d.run.status.as_str()}),
    )?;
    write!(out, ",\"traceEvents\":[")?;
    let meta = json!({"name": "process_name", "ph": "M", "pid": 1, "args": {"name": format!("flyte run {}", d.run.id)}});
    serde_json::to_writer(&mut *out, &meta)?;
    for (row, lane) in placed {
        let mut args = json!({
            "flyte.action_id": row.id.to_string(),
            "flyte.status": status_word(row.status),
            "flyte.attempts": row.attempts,
            "flyte.waited_us": row.waited_us(),
        });
        if let Some((_, index)) = row.item {
            args["flyte.item_index"] = json!(index);
        }
        if let Some(e) = d.error(row) {
            args["flyte.error"] = json!(e.message());
        }
        let event = json!({
            "name": d.task(row),
            "cat": "flyte",
            "ph": "X",
            "ts": row.start_us - t0,
            "dur": row.duration_us(),
            "pid": 1,
            "tid": lane,
            "args": args,
        });
        out.write_all(b",\n")?;
        serde_json::to_writer(&mut *out, &event)?;
    }
    writeln!(out, "]}}")
}

fn jsonl(d: &Digest, out: &mut dyn Write) -> std::io::Result<()> {
    let mut run = output::run_json(&d.run);
    run["type"] = json!("run");
    serde_json::to_writer(&mut *out, &run)?;
    writeln!(out)?;
    for f in &d.fan_outs {
        let r = &f.record;
        let line = json!({
            "type": "fan_out",
            "id": r.id.to_string(),
            "parent": r.parent.to_string(),
            "kind": r.kind.as_str(),
            "task": r.task,
            "group": r.group,
            "concurrency": r.concurrency,
            "started": r.started, "succeeded": r.succeeded, "failed": r.failed,
            "cancelled": r.cancelled, "cached": r.cached, "replayed": r.replayed,
            "started_at": output::rfc3339(r.started_at),
            "ended_at": output::rfc3339(r.ended_at),
        });
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
    }
    for row in &d.rows {
        let line = json!({
            "type": "action",
            "id": row.id.to_string(),
            "parent": row.parent.map(|p| p.to_string()),
            "fan_out": row.item.map(|(f, _)| d.fan_outs[f as usize].record.id.to_string()),
            "index": row.item.map(|(_, i)| i),
            "task": d.task(row),
            "status": status_word(row.status),
            "origin": format!("{:?}", row.origin).to_lowercase(),
            "attempts": row.attempts,
            "queued_ms": us_to_ms(row.queued_us),
            "start_ms": us_to_ms(row.start_us),
            "end_ms": us_to_ms(row.end_us),
            "error": d.error(row).map(|e| json!({"kind": e.kind().as_str(), "message": e.message()})),
        });
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
    }
    Ok(())
}

/// Sends the run's spans to the collector at `endpoint`.
#[cfg(feature = "otel")]
fn otlp(
    store: &dyn flyte_core::backend::RunStore,
    key: flyte_core::store::RunKey,
    digest: &Digest,
    endpoint: &str,
) -> Result<Exit, CliError> {
    use prost::Message;
    // The attempts of the actions that needed more than one (the latest
    // record of each).
    let mut attempts = std::collections::HashMap::new();
    store.reader()?.actions(key, false, &mut |batch| {
        for action in batch {
            if action.attempt_times.len() > 1 {
                attempts.insert(action.id, action.attempt_times);
            } else {
                attempts.remove(&action.id);
            }
        }
        std::ops::ControlFlow::Continue(())
    })?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "flyte".into());
    let spans = crate::otlp::spans(digest, &attempts);
    let count = spans.len();
    let url = crate::otlp::traces_url(endpoint);
    let shown = flyte_core::redact::url(&url);
    let headers = crate::otlp::headers_from_env();
    for request in crate::otlp::requests(spans, &service) {
        let body = request.encode_to_vec();
        let mut post = ureq::post(&url).header("Content-Type", "application/x-protobuf");
        for (name, value) in &headers {
            post = post.header(name.as_str(), value.as_str());
        }
        post.send(&body[..]).map_err(|e| {
            let why = match e {
                ureq::Error::StatusCode(code) => format!("the collector answered HTTP {code}"),
                other => flyte_core::redact::url(&other.to_string()),
            };
            CliError::new(Exit::Store, format!("cannot send spans to {shown}: {why}"))
                .hint("check --endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT) names a collector's OTLP/HTTP port (4318 by default), and OTEL_EXPORTER_OTLP_HEADERS its credentials")
        })?;
    }
    eprintln!(
        "sent {count} spans of run {} to {shown} (trace {})",
        digest.run.id,
        crate::otlp::trace_id(&digest.run.id)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    Ok(Exit::Ok)
}

/// Without the `otel` feature: says how to get it.
#[cfg(not(feature = "otel"))]
fn otlp(
    _: &dyn flyte_core::backend::RunStore,
    _: flyte_core::store::RunKey,
    _: &Digest,
    _: &str,
) -> Result<Exit, CliError> {
    Err(CliError::usage(
        "this binary was built without OpenTelemetry, so it cannot export as otlp",
    )
    .hint("build it with flyte's `otel` feature: flyte = { ..., features = [\"cli\", \"otel\"] }"))
}
