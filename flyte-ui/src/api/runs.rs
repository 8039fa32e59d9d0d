//! Reading runs: the list, one run, its summary, timeline, tree, actions,
//! one action and its logs.

use super::{ApiError, AppState, Shared};
use crate::timeline::{self, Window};
use axum::extract::{Path, Query, State};
use axum::Json;
use flyte_core::record::{micros, RunRecord, RunStatus};
use flyte_core::store::{RunFilter, RunKey};
use flyte_report::json::{rfc3339, run_json, since};
use serde::Deserialize;
use serde_json::{json, Value};
use std::ops::ControlFlow;
use std::time::SystemTime;

/// Runs a page shows when it does not say.
const DEFAULT_LIMIT: usize = 50;
/// Runs or actions a page may ask for at most.
const MAX_LIMIT: usize = 1_000;

/// `GET /runs`: filters, search and a page.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    task: Option<String>,
    name: Option<String>,
    /// `2h` (that long ago) or an RFC 3339 time.
    since: Option<String>,
    /// An id prefix, or part of a name.
    q: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

pub(crate) async fn list(
    State(state): State<Shared>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut filter = RunFilter::all();
    if let Some(word) = query.status.as_deref().filter(|w| !w.is_empty()) {
        let status = RunStatus::from_word(word).ok_or_else(|| {
            ApiError::bad_request(format!("unknown status {word:?}"))
                .hint("use one of: running, succeeded, failed, cancelled, killed")
        })?;
        filter = filter.status(status);
    }
    if let Some(task) = query.task.filter(|t| !t.is_empty()) {
        filter = filter.task(task);
    }
    if let Some(name) = query.name.filter(|n| !n.is_empty()) {
        filter = filter.name(name);
    }
    if let Some(since) = query.since.as_deref().filter(|s| !s.is_empty()) {
        filter = filter.since(parse_since(since)?);
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let offset = query.offset;
    let search = query
        .q
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty());
    state
        .blocking(move |state| {
            let reader = state.store.reader()?;
            // Without a search the store pages; a search reads the
            // filtered runs and pages what matches.
            let (page, total) = match &search {
                None => {
                    let total = reader.list_runs(&filter)?.len();
                    let page = reader.list_runs(&filter.page(offset, limit))?;
                    (page, total)
                }
                Some(q) => {
                    let matching: Vec<RunRecord> = reader
                        .list_runs(&filter)?
                        .into_iter()
                        .filter(|run| matches_search(run, q))
                        .collect();
                    let total = matching.len();
                    (
                        matching.into_iter().skip(offset).take(limit).collect(),
                        total,
                    )
                }
            };
            Ok(Json(json!({
                "runs": page.iter().map(run_json).collect::<Vec<_>>(),
                "total": total, "offset": offset, "limit": limit,
            })))
        })
        .await
}

/// An id prefix (with or without its `r`), or part of the name.
fn matches_search(run: &RunRecord, q: &str) -> bool {
    let lower = q.to_lowercase();
    run.id.starts_with(q)
        || run.id.strip_prefix('r').is_some_and(|id| id.starts_with(q))
        || run
            .name
            .as_deref()
            .is_some_and(|name| name.to_lowercase().contains(&lower))
}

fn parse_since(text: &str) -> Result<SystemTime, ApiError> {
    since(text).ok_or_else(|| {
        ApiError::bad_request(format!("since={text:?} is neither a duration nor a time"))
            .hint("give a duration back (90m, 2h, 3d) or a time (2026-12-01T09:00:00Z)")
    })
}

/// A run as the API shows it: its record, how far it got, what its display
/// published, and what may be done with it here.
pub(crate) fn run_view(state: &AppState, key: RunKey, run: &RunRecord) -> Result<Value, ApiError> {
    let mut view = run_json(run);
    view["ended_actions"] = json!(state.store.reader()?.ended_actions(key)?);
    let progress = match state.store.as_operations() {
        Some(ops) => ops.published_progress(key)?,
        None => None,
    };
    view["progress"] = progress.map_or(
        Value::Null,
        |(at, lines)| json!({"at": rfc3339(at), "lines": lines}),
    );
    let going = run.status == RunStatus::Running;
    let starts = state.runner.is_some();
    view["can"] = json!({
        "abort": going && state.store.as_operations().is_some(),
        "resume": !going && run.status != RunStatus::Succeeded && starts,
        "rerun": !going && starts,
    });
    Ok(view)
}

pub(crate) async fn one(
    State(state): State<Shared>,
    Path(reference): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .blocking(move |state| {
            let (key, run) = state.find(&reference)?;
            Ok(Json(run_view(state, key, &run)?))
        })
        .await
}

pub(crate) async fn summary(
    State(state): State<Shared>,
    Path(reference): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .blocking(move |state| {
            let viewed = state.viewed(&reference)?;
            Ok(Json(viewed.summary().clone()))
        })
        .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct TimelineQuery {
    buckets: Option<usize>,
    from_us: Option<i64>,
    to_us: Option<i64>,
}

pub(crate) async fn timeline(
    State(state): State<Shared>,
    Path(reference): Path<String>,
    Query(query): Query<TimelineQuery>,
) -> Result<Json<Value>, ApiError> {
    if let (Some(from), Some(to)) = (query.from_us, query.to_us) {
        if to <= from {
            return Err(ApiError::bad_request(format!(
                "to_us ({to}) must be after from_us ({from})"
            )));
        }
    }
    let window = Window {
        from_us: query.from_us,
        to_us: query.to_us,
        buckets: query.buckets.unwrap_or(timeline::DEFAULT_BUCKETS),
    };
    state
        .blocking(move |state| {
            let viewed = state.viewed(&reference)?;
            Ok(Json(timeline::timeline(
                &viewed.digest,
                &viewed.sites,
                window,
                SystemTime::now(),
            )))
        })
        .await
}

pub(crate) async fn tree(
    State(state): State<Shared>,
    Path(reference): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .blocking(move |state| {
            let viewed = state.viewed(&reference)?;
            Ok(Json(viewed.digest.tree_json()))
        })
        .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

pub(crate) async fn actions(
    State(state): State<Shared>,
    Path(reference): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    state
        .blocking(move |state| {
            let viewed = state.viewed(&reference)?;
            let digest = &viewed.digest;
            let actions: Vec<Value> = digest
                .rows
                .iter()
                .skip(page.offset)
                .take(limit)
                .map(|row| digest.action_json(row))
                .collect();
            Ok(Json(json!({
                "actions": actions, "total": digest.rows.len(),
                "offset": page.offset, "limit": limit,
            })))
        })
        .await
}

pub(crate) async fn action(
    State(state): State<Shared>,
    Path((reference, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    state
        .blocking(move |state| {
            let (key, run) = state.find(&reference)?;
            let mut found = None;
            state.store.reader()?.actions(key, true, &mut |batch| {
                for record in batch {
                    if record.id.to_string() == action {
                        found = Some(record);
                    }
                }
                ControlFlow::Continue(())
            })?;
            let record = found.ok_or_else(|| {
                ApiError::not_found(
                    "unknown_action",
                    format!("run {} has no action {action:?}", run.id),
                )
                .hint("list its actions with GET /api/v1/runs/RUN/actions, or open its tree")
            })?;
            let registry = flyte_runtime::registry();
            let mut doc = json!({
                "id": record.id.to_string(),
                "parent": record.parent.map(|p| p.to_string()),
                "task": record.task,
                "group": record.group,
                "fan_out": record.item.map(|(f, _)| f.to_string()),
                "index": record.item.map(|(_, i)| i),
                "status": record.status.as_str(),
                "origin": format!("{:?}", record.origin).to_lowercase(),
                "attempts": record.attempts,
                "queued_at_us": micros(record.queued_at),
                "started_at_us": micros(record.started_at),
                "ended_at_us": record.ended_at.map(micros),
                "attempt_times": attempts(&record),
                "error": record.error.as_ref().map(|e| json!({"kind": e.kind().as_str(), "message": e.message()})),
                "output": Value::Null,
                "inputs": Value::Null,
            });
            // Values decode through the tasks this binary links; where it
            // links none (`cargo flyte ui`), say so instead.
            if let Some(bytes) = &record.output_bytes {
                match registry.output_json(&record.task, bytes) {
                    Ok(value) => doc["output"] = value,
                    Err(e) => doc["output_note"] = json!(format!("{} bytes not shown: {}", bytes.len(), e.message())),
                }
            }
            if record.parent.is_none() {
                if let Some(bytes) = state.store.run_log().run_inputs(key)? {
                    match registry.inputs_json(&run.root_task, &bytes) {
                        Ok(value) => doc["inputs"] = value,
                        Err(e) => doc["inputs_note"] = json!(format!("{} bytes not shown: {}", bytes.len(), e.message())),
                    }
                }
            } else {
                doc["inputs_note"] = json!("inputs are recorded for a run's root action only");
            }
            Ok(Json(doc))
        })
        .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

pub(crate) async fn logs(
    State(state): State<Shared>,
    Path(reference): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(500).clamp(1, MAX_LIMIT);
    state
        .blocking(move |state| {
            let (key, _) = state.find(&reference)?;
            let lines = state.store.operations()?.logs(key, query.after, limit)?;
            Ok(Json(
                json!({ "lines": lines.iter().map(log_json).collect::<Vec<_>>() }),
            ))
        })
        .await
}

/// Each attempt's start and end. A store keeps them for an action that
/// needed more than one; a single attempt's are the action's own (none
/// when it never began: cached, replayed, cancelled while it waited).
fn attempts(record: &flyte_core::record::ActionRecord) -> Vec<Value> {
    let span = |start, end: Option<SystemTime>| json!({"started_at_us": micros(start), "ended_at_us": end.map(micros)});
    if !record.attempt_times.is_empty() {
        return record
            .attempt_times
            .iter()
            .map(|a| span(a.started_at, Some(a.ended_at)))
            .collect();
    }
    let began = record.attempts > 0 && record.origin == flyte_core::record::Origin::Executed;
    match began {
        true => vec![span(record.started_at, record.ended_at)],
        false => Vec::new(),
    }
}

/// A log line as JSON.
pub(crate) fn log_json(line: &flyte_core::store::LogLine) -> Value {
    json!({
        "seq": line.seq,
        "action": line.action.map(|a| a.to_string()),
        "at": rfc3339(line.at),
        "level": line.level,
        "target": line.target,
        "message": line.message,
    })
}
