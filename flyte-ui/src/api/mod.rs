//! The HTTP API, under `/api/v1`: JSON in and out, the same data the pages
//! show (they are built on it).
//!
//! | method and path | does |
//! | --- | --- |
//! | `GET /api/v1/runs?status=&task=&name=&since=&q=&offset=&limit=` | runs, newest first, with the total that match |
//! | `GET /api/v1/runs/{run}` | one run (by id or name), its ended actions so far and its published progress |
//! | `GET /api/v1/runs/{run}/summary` | totals, per task, per fan-out, failures by cause (as `flyte show -o json`) |
//! | `GET /api/v1/runs/{run}/timeline?buckets=&from_us=&to_us=` | executing and waiting actions per fan-out site and time bucket |
//! | `GET /api/v1/runs/{run}/tree` | the run's tree (as `flyte show`) |
//! | `GET /api/v1/runs/{run}/actions?offset=&limit=` | its actions, in the order they ended, paged |
//! | `GET /api/v1/runs/{run}/actions/{action}` | one action: attempts, error, output (and the run's inputs for the root) as JSON |
//! | `GET /api/v1/runs/{run}/logs?after=&limit=` | what its tasks logged |
//! | `GET /api/v1/runs/{run}/events` | a stream (Server-Sent Events) of the run as it changes, its progress and its logs |
//! | `POST /api/v1/runs` `{"task", "inputs", "name"?, "idempotency_key"?}` | starts a run (201; 200 with the same run for a used key) |
//! | `POST /api/v1/runs/{run}/abort` | asks the run's process to cancel it (202) |
//! | `POST /api/v1/runs/{run}/resume` / `rerun` | executes a run again, replaying what succeeded / anew (202) |
//! | `GET /api/v1/tasks` | the tasks this server can start, with their parameters |
//!
//! Errors are `{"error": {"code", "message", "hint"}}` with the status that
//! says what went wrong: 400 a bad query, 401 no token, 403 another origin
//! or host, 404 an unknown run, action or task, 409 a run in the wrong
//! state or a used name, 415 a body that is not JSON, 422 inputs that do
//! not fit the task's parameters (naming the parameter), 501 a server that
//! links no tasks, 500 a store that failed.

mod events;
mod operate;
mod runs;

use crate::digests::{Digests, Viewed};
use crate::security::{self, Access};
use crate::{pages, Ui};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flyte_core::backend::RunStore;
use flyte_core::record::RunRecord;
use flyte_core::store::{RunKey, RunRef, StoreError};
use flyte_runtime::Runner;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// An answer that is an error: its status, a stable code, what went wrong
/// and what to do.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    hint: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// Its status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unsupported { .. } => {
                ApiError::new(StatusCode::NOT_IMPLEMENTED, "unsupported", e.to_string())
            }
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }});
        (self.status, Json(body)).into_response()
    }
}

/// What every handler is given.
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn RunStore>,
    /// Starts runs; `None` in a binary without the tasks.
    pub(crate) runner: Option<Runner>,
    /// Digests of runs, kept while their runs do not change.
    pub(crate) digests: Digests,
    /// One start at a time: a second start with the same key sees the
    /// first one's run.
    pub(crate) starting: tokio::sync::Mutex<()>,
}

pub(crate) type Shared = Arc<AppState>;

impl AppState {
    /// Runs `read` on the store off the async threads (store calls block).
    pub(crate) async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || read(&state))
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("a request's work failed: {e}"),
                )
            })?
    }

    /// The run `reference` names, digested (see [`Digests`]).
    pub(crate) fn viewed(&self, reference: &str) -> Result<Arc<Viewed>, ApiError> {
        let (key, run) = self.find(reference)?;
        Ok(self.digests.get(self.store.as_ref(), key, run)?)
    }

    /// The run `reference` names: its id, or its name.
    pub(crate) fn find(&self, reference: &str) -> Result<(RunKey, RunRecord), ApiError> {
        let log = self.store.run_log();
        if let Some(found) = log.find_run(RunRef::Id(reference))? {
            return Ok(found);
        }
        if let Some(found) = log.find_run(RunRef::Name(reference))? {
            return Ok(found);
        }
        Err(ApiError::not_found(
            "unknown_run",
            format!("no run {reference:?} in the store: it is no run id or run name"),
        )
        .hint("list the runs with GET /api/v1/runs"))
    }
}

/// How often the newest ended runs are digested ahead of requests.
const WARM_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Digests the newest ended runs now and then, for as long as the server's
/// runtime lives (see [`Digests::warm`]).
pub(crate) async fn keep_warm(state: Shared) {
    loop {
        let warmed = state
            .blocking(|state| Ok(state.digests.warm(state.store.as_ref())?))
            .await;
        if let Err(e) = warmed {
            tracing::debug!(
                "the UI could not digest the newest runs ahead: {}",
                e.message()
            );
        }
        tokio::time::sleep(WARM_EVERY).await;
    }
}

/// The whole app: pages, API and the guard in front of both; and its state
/// (for [`keep_warm`]).
pub(crate) fn app(ui: Ui, addr: SocketAddr) -> (Router, Shared) {
    let access = Arc::new(Access {
        token: ui.token.clone(),
        loopback: addr.ip().is_loopback(),
    });
    let state: Shared = Arc::new(AppState {
        store: ui.store,
        runner: ui.runner,
        digests: Digests::default(),
        starting: tokio::sync::Mutex::new(()),
    });
    let api = Router::new()
        .route("/runs", get(runs::list).post(operate::start))
        .route("/runs/{run}", get(runs::one))
        .route("/runs/{run}/summary", get(runs::summary))
        .route("/runs/{run}/timeline", get(runs::timeline))
        .route("/runs/{run}/tree", get(runs::tree))
        .route("/runs/{run}/actions", get(runs::actions))
        .route("/runs/{run}/actions/{action}", get(runs::action))
        .route("/runs/{run}/logs", get(runs::logs))
        .route("/runs/{run}/events", get(events::stream))
        .route("/runs/{run}/abort", post(operate::abort))
        .route("/runs/{run}/resume", post(operate::resume))
        .route("/runs/{run}/rerun", post(operate::rerun))
        .route("/tasks", get(operate::tasks))
        .fallback(|| async {
            ApiError::not_found("no_such_endpoint", "no such endpoint under /api/v1")
                .hint("see the endpoints in the README's HTTP API section")
        })
        .with_state(Arc::clone(&state));
    let router = Router::new()
        .nest("/api/v1", api)
        .merge(pages::routes())
        .layer(axum::middleware::from_fn_with_state(
            access,
            security::guard,
        ));
    (router, state)
}
