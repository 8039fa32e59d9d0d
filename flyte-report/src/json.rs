//! A run digested, as JSON: the one shape of `flyte show -o json` (and the
//! run in `flyte runs -o json`), which the HTML report's page data also
//! starts from, so that the two cannot drift apart.

use crate::digest::{Digest, Figures};
use flyte_core::record::RunRecord;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

/// `2026-12-03T12:45:05.123Z`: a time in JSON (RFC 3339, UTC, to the
/// millisecond, as runs and actions are timed).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// How long a run took (or has run so far).
pub fn run_duration(run: &RunRecord) -> Option<Duration> {
    run.ended_at?.duration_since(run.started_at).ok()
}

/// A run as JSON: the documented, stable shape of `runs -o json`.
pub fn run_json(run: &RunRecord) -> Value {
    json!({
        "id": run.id,
        "name": run.name,
        "task": run.root_task,
        "status": run.status.as_str(),
        "error": run.error.as_ref().map(|e| json!({"kind": e.kind().as_str(), "message": e.message()})),
        "started_at": rfc3339(run.started_at),
        "ended_at": run.ended_at.map(rfc3339),
        "duration_ms": run_duration(run).map(|d| d.as_millis() as u64),
        "executions": run.executions,
        "lost_actions": run.lost_actions,
    })
}

impl Digest {
    /// The run, its totals, its tasks, its fan-outs and its failures by
    /// cause: the shape of `show -o json`.
    pub fn summary_json(&self) -> Value {
        json!({
            "run": run_json(&self.run),
            "totals": Figures::to_json(&self.totals()),
            "tasks": self.tasks.iter().map(|t| {
                let mut v = Figures::to_json(&t.figures);
                v["task"] = json!(t.task);
                v
            }).collect::<Vec<_>>(),
            "fan_outs": self.fan_outs.iter().map(|f| {
                let r = &f.record;
                let mut v = Figures::to_json(&f.figures);
                v["id"] = json!(r.id.to_string());
                v["parent"] = json!(r.parent.to_string());
                v["kind"] = json!(r.kind.as_str());
                v["task"] = json!(r.task);
                v["group"] = json!(r.group);
                v["concurrency"] = json!(r.concurrency);
                v["started"] = json!(r.started);
                v["started_at"] = json!(rfc3339(r.started_at));
                v["ended_at"] = json!(rfc3339(r.ended_at));
                v["duration_ms"] = json!(r.ended_at.duration_since(r.started_at).map_or(0, |d| d.as_millis() as u64));
                v["achieved_concurrency"] = json!(f.achieved_concurrency);
                v
            }).collect::<Vec<_>>(),
            "failures": self.failures.iter().map(|g| json!({
                "task": g.task, "kind": g.kind, "cause": g.cause, "message": g.message, "count": g.count,
                "example_action": g.example.to_string(),
            })).collect::<Vec<_>>(),
        })
    }
}
