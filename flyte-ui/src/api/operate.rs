//! Operating runs: the tasks there are, starting a run (once per
//! idempotency key), aborting, resuming and rerunning one.
//!
//! A start runs in this server's process, on a thread of its own, through
//! the runner the server was given; the answer comes as soon as the run is
//! in the store (its id known from its key beforehand), not when it ends.

use super::runs::run_view;
use super::{ApiError, AppState, Shared};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use flyte_core::record::RunStatus;
use flyte_core::store::RunRef;
use flyte_core::ErrorKind;
use flyte_runtime::{registry, Runner, TaskCall};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a start waits for its run to appear in the store.
const APPEAR_WITHIN: Duration = Duration::from_secs(10);

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

pub(crate) async fn tasks(State(state): State<Shared>) -> Result<Json<Value>, ApiError> {
    let registry = registry();
    let tasks: Vec<Value> = registry
        .names()
        .filter_map(|n| registry.task(n).ok())
        .map(|t| {
            json!({
                "name": t.name(), "env": t.env().name(), "params": t.params(),
                "version": t.version(), "async": t.is_async(),
            })
        })
        .collect();
    Ok(Json(
        json!({ "starts_runs": state.runner.is_some(), "tasks": tasks }),
    ))
}

/// `POST /runs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    task: String,
    #[serde(default)]
    inputs: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

pub(crate) async fn start(State(state): State<Shared>, body: Bytes) -> Answer {
    let body: StartBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("the body is not a start request: {e}")).hint(
            r#"send {"task": "env.fn", "inputs": {"param": value}, "name"?: "...", "idempotency_key"?: "..."}"#,
        )
    })?;
    let runner = runner(&state)?;
    // One start at a time here: a second request with the same key finds
    // the first one's run (across processes, the store's unique id does).
    let _one = state.starting.lock().await;
    state
        .blocking(move |state| {
            let call = call(&body.task, body.inputs.unwrap_or_else(|| json!({})))?;
            let key = body.idempotency_key.filter(|k| !k.is_empty());
            start_call(state, runner, call, body.name, key)
        })
        .await
}

/// The call of `task` with `inputs`, or why there is none.
fn call(task: &str, inputs: Value) -> Result<TaskCall<Value>, ApiError> {
    let registry = registry();
    registry.task(task).map_err(|e| {
        ApiError::not_found("unknown_task", e.message().to_owned())
            .hint("list the tasks with GET /api/v1/tasks")
    })?;
    if !inputs.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_inputs",
            format!("inputs must be a JSON object keyed by parameter name, not {inputs}"),
        ));
    }
    registry.call_json(task, inputs).map_err(|e| {
        let params = registry
            .task(task)
            .map(|t| t.params().join(", "))
            .unwrap_or_default();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_inputs",
            e.message().to_owned(),
        )
        .hint(format!("task {task} takes: {params}"))
    })
}

fn runner(state: &AppState) -> Result<Runner, ApiError> {
    state.runner.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "no_tasks",
            "this server links no tasks, so it cannot run any",
        )
        .hint("serve the UI from your own binary (`flyte::cli::main()`, `cargo run --bin flyte -- ui`) rather than `cargo flyte ui`")
    })
}

/// Starts `call` once for `key` (a fresh key when none is given) and
/// answers when its run is in the store.
fn start_call(
    state: &AppState,
    runner: Runner,
    call: TaskCall<Value>,
    name: Option<String>,
    key: Option<String>,
) -> Answer {
    let key = key.unwrap_or_else(fresh_key);
    let id = Runner::run_id_for_key(&key);
    let log = state.store.run_log();
    if let Some((run_key, run)) = log.find_run(RunRef::Id(&id))? {
        if run.root_action != call.root_id() {
            return Err(ApiError::conflict(
                "key_conflict",
                format!(
                    "idempotency key {key:?} started run {} of task {} with other inputs",
                    run.id, run.root_task
                ),
            )
            .hint("a key starts one call once: pick another key for another call"));
        }
        let mut view = run_view(state, run_key, &run)?;
        view["created"] = json!(false);
        return Ok((StatusCode::OK, Json(view)));
    }
    if let Some(name) = &name {
        if let Some((_, run)) = log.find_run(RunRef::Name(name))? {
            return Err(ApiError::conflict(
                "name_taken",
                format!("run {} already has the name {name:?}", run.id),
            )
            .hint(format!(
                "resume it with POST /api/v1/runs/{}/resume, or pick another name",
                run.id
            )));
        }
    }
    let mut runner = runner.idempotency_key(key);
    if let Some(name) = name {
        runner = runner.name(name);
    }
    let ended = in_background(move || {
        let outcome = runner.run(call);
        outcome.output().err().cloned()
    });
    let (run_key, run) = appeared(state, &id, &ended, |_| true)?;
    let mut view = run_view(state, run_key, &run)?;
    view["created"] = json!(true);
    Ok((StatusCode::CREATED, Json(view)))
}

/// A key no other start has: this process, now, and a counter.
fn fresh_key() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "ui-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `work` (a run to its end) on a thread of its own; its error, if it
/// ended in one, comes on the channel.
fn in_background(
    work: impl FnOnce() -> Option<flyte_core::TaskError> + Send + 'static,
) -> mpsc::Receiver<Option<flyte_core::TaskError>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx
}

/// Waits until run `id` is in the store and `ready` says it is under way,
/// or its thread ended without it.
fn appeared(
    state: &AppState,
    id: &str,
    ended: &mpsc::Receiver<Option<flyte_core::TaskError>>,
    ready: impl Fn(&flyte_core::record::RunRecord) -> bool,
) -> Result<(flyte_core::store::RunKey, flyte_core::record::RunRecord), ApiError> {
    let deadline = Instant::now() + APPEAR_WITHIN;
    loop {
        if let Some(found) = state.store.run_log().find_run(RunRef::Id(id))? {
            if ready(&found.1) {
                return Ok(found);
            }
        }
        if let Ok(error) = ended.try_recv() {
            // It ended: either it ran (and is in the store now), or it could
            // not begin.
            if let Some(found) = state.store.run_log().find_run(RunRef::Id(id))? {
                if ready(&found.1) {
                    return Ok(found);
                }
            }
            // A run refused as it opened (going on elsewhere, its name or
            // key taken by another call) is a conflict; anything else a
            // failure to start.
            return Err(match error {
                Some(e) if e.kind() == ErrorKind::Config => {
                    ApiError::conflict("conflict", e.message().to_owned())
                }
                Some(e) => ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "not_started",
                    e.message().to_owned(),
                ),
                None => ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "not_started",
                    "the run ended without being recorded",
                ),
            });
        }
        if Instant::now() > deadline {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "slow_start",
                format!("run {id} did not appear in the store within {APPEAR_WITHIN:?}"),
            )
            .hint(format!("it may still start: GET /api/v1/runs/{id}")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(crate) async fn abort(State(state): State<Shared>, Path(reference): Path<String>) -> Answer {
    state
        .blocking(move |state| {
            let (key, run) = state.find(&reference)?;
            if run.status != RunStatus::Running {
                return Err(not_running(&run));
            }
            state.store.operations()?.request_abort(key)?;
            let mut view = run_view(state, key, &run)?;
            view["abort_requested"] = json!(true);
            Ok((StatusCode::ACCEPTED, Json(view)))
        })
        .await
}

fn not_running(run: &flyte_core::record::RunRecord) -> ApiError {
    ApiError::conflict(
        "not_running",
        format!(
            "run {} is not running: it ended {}",
            run.id,
            run.status.as_str()
        ),
    )
}

pub(crate) async fn resume(State(state): State<Shared>, Path(reference): Path<String>) -> Answer {
    let runner = runner(&state)?;
    let _one = state.starting.lock().await;
    state
        .blocking(move |state| {
            let (_, run) = state.find(&reference)?;
            match run.status {
                RunStatus::Running => {
                    return Err(ApiError::conflict(
                        "run_busy",
                        format!("run {} is going on: it can be resumed once it ends", run.id),
                    ))
                }
                RunStatus::Succeeded => {
                    return Err(ApiError::conflict(
                        "succeeded",
                        format!("run {} succeeded: there is nothing to resume", run.id),
                    )
                    .hint(format!(
                        "run it anew with POST /api/v1/runs/{}/rerun",
                        run.id
                    )))
                }
                _ => {}
            }
            let id = run.id.clone();
            let executions = run.executions;
            let ended = in_background(move || {
                let outcome = runner.resume_json(&id);
                outcome.output().err().cloned()
            });
            let (key, now) = appeared(state, &run.id, &ended, |r| {
                r.executions > executions || r.status == RunStatus::Running
            })?;
            Ok((StatusCode::ACCEPTED, Json(run_view(state, key, &now)?)))
        })
        .await
}

pub(crate) async fn rerun(State(state): State<Shared>, Path(reference): Path<String>) -> Answer {
    let runner = runner(&state)?;
    let _one = state.starting.lock().await;
    state
        .blocking(move |state| {
            let (key, run) = state.find(&reference)?;
            let bytes = state.store.run_log().run_inputs(key)?.ok_or_else(|| {
                ApiError::conflict(
                    "no_inputs",
                    format!(
                        "run {} was stored without its inputs (they did not encode)",
                        run.id
                    ),
                )
                .hint("start the task anew with POST /api/v1/runs")
            })?;
            let inputs = registry()
                .inputs_json(&run.root_task, &bytes)
                .map_err(|e| {
                    let code = if e.kind() == ErrorKind::UnknownTask {
                        "unknown_task"
                    } else {
                        "bad_inputs"
                    };
                    ApiError::new(StatusCode::CONFLICT, code, e.message().to_owned())
                })?;
            let call = call(&run.root_task, inputs)?;
            start_call(state, runner, call, None, None)
        })
        .await
}
