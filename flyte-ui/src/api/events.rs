//! `GET /runs/{run}/events`: a run as it changes, as Server-Sent Events.
//!
//! The store is the one source: five times a second the stream reads the
//! run's record, its ended actions, what its display published and its new
//! log lines (each a cheap read), and sends what changed:
//!
//! | event | data |
//! | --- | --- |
//! | `run` | the run as `GET /runs/{run}` shows it, when its state, ended actions or progress changed |
//! | `logs` | the new log lines, oldest first |
//! | `end` | the run as it ended; the stream then closes |
//!
//! A page therefore lags the store by at most a fifth of a second plus the
//! time to read; it reads the summary and timeline again when `run` says
//! more actions ended.

use super::runs::{log_json, run_view};
use super::{ApiError, AppState, Shared};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use flyte_core::record::RunStatus;
use flyte_core::store::{RunKey, RunRef};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How often the store is read for a stream.
const EVERY: Duration = Duration::from_millis(200);

/// Log lines sent at most per read (a flood is sent over several).
const LOG_BATCH: usize = 1_000;

/// Where a stream is.
struct Cursor {
    state: Arc<AppState>,
    id: String,
    key: RunKey,
    /// The last `run` event sent.
    last: Option<Value>,
    log_after: u64,
    first: bool,
    done: bool,
}

pub(crate) async fn stream(
    State(state): State<Shared>,
    Path(reference): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let (key, run) = state.blocking(move |state| state.find(&reference)).await?;
    let cursor = Cursor {
        state,
        id: run.id,
        key,
        last: None,
        log_after: 0,
        first: true,
        done: false,
    };
    let events = stream::unfold(cursor, |mut cursor| async move {
        if cursor.done {
            return None;
        }
        if !cursor.first {
            tokio::time::sleep(EVERY).await;
        }
        cursor.first = false;
        let (cursor, events) = read(cursor).await;
        Some((stream::iter(events.into_iter().map(Ok)), cursor))
    })
    .flatten();
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One read of the store: the events it makes.
async fn read(mut cursor: Cursor) -> (Cursor, Vec<Event>) {
    let state = Arc::clone(&cursor.state);
    let (id, key, after) = (cursor.id.clone(), cursor.key, cursor.log_after);
    let read = state
        .blocking(move |state| {
            let (_, run) = state
                .store
                .run_log()
                .find_run(RunRef::Id(&id))?
                .ok_or_else(|| {
                    ApiError::not_found("unknown_run", format!("run {id} left the store"))
                })?;
            let view = run_view(state, key, &run)?;
            let logs = match state.store.as_operations() {
                Some(ops) => ops.logs(key, after, LOG_BATCH)?,
                None => Vec::new(),
            };
            Ok((run.status, view, logs))
        })
        .await;
    let mut events = Vec::new();
    match read {
        Ok((status, view, logs)) => {
            if let Some(last) = logs.last() {
                cursor.log_after = last.seq;
                let lines: Vec<Value> = logs.iter().map(log_json).collect();
                events.push(event("logs", &Value::Array(lines)));
            }
            let ended = status != RunStatus::Running;
            if cursor.last.as_ref() != Some(&view) {
                events.push(event("run", &view));
                cursor.last = Some(view.clone());
            }
            // The end is sent once its last log lines are.
            if ended && logs.len() < LOG_BATCH {
                events.push(event("end", &view));
                cursor.done = true;
            }
        }
        Err(e) => {
            let body = serde_json::json!({"message": e.message()});
            events.push(event("error", &body));
            cursor.done = true;
        }
    }
    (cursor, events)
}

fn event(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}
