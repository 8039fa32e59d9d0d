//! A run digested, as JSON: the one shape of `flyte show -o json` (and the
//! run in `flyte runs -o json`), which the HTML report's page data also
//! starts from, so that the two cannot drift apart.

use crate::digest::{us_to_ms, Digest, Figures, Row, TreeItem};
use crate::html::{action_detail, action_label, fan_out_counts, fan_out_label, status_word};
use flyte_core::record::from_micros;
use flyte_core::record::RunRecord;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

/// `2026-12-03T12:45:05.123Z`: a time in JSON (RFC 3339, UTC, to the
/// millisecond, as runs and actions are timed).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A time as people give one to filter runs: a duration back from now
/// (`90m`, `2h`, `3d`) or a time (`2026-12-01T09:00:00Z`); `None` when it
/// is neither.
pub fn since(text: &str) -> Option<SystemTime> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return Some(
            SystemTime::now()
                .checked_sub(ago)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
    }
    humantime::parse_rfc3339_weak(text).ok()
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
                // A fan-out still going has no record yet: its kind and
                // bound are not known.
                v["going"] = json!(f.going);
                v["kind"] = if f.going { Value::Null } else { json!(r.kind.as_str()) };
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

    /// The tree's nodes, each naming its parent node (-1: top).
    pub fn tree_json(&self) -> Value {
        let d = self;
        let nodes: Vec<Value> = d
            .tree_nodes()
            .iter()
            .map(|node| {
                let parent = node.parent.map_or(-1, |p| p as i64);
                match node.item {
                    TreeItem::Action(i) => {
                        let row = &d.rows[i];
                        json!({
                            "kind": "action",
                            "parent": parent,
                            "label": action_label(d, row),
                            "status": status_word(row.status),
                            "detail": action_detail(row),
                            "error": d.error(row).map(|e| format!("[{}] {}", e.kind().as_str(), e.message())),
                            "id": row.id.to_string(),
                        })
                    }
                    TreeItem::FanOut(f) => {
                        let f = &d.fan_outs[f];
                        json!({
                            "kind": "fan_out",
                            "parent": parent,
                            "label": fan_out_label(f),
                            "detail": fan_out_counts(&f.figures),
                        })
                    }
                }
            })
            .collect();
        json!({ "nodes": nodes, "left_out": d.tree_left_out })
    }

    /// An action as JSON: the shape of `show --failed -o json` and `--action`.
    pub fn action_json(&self, row: &Row) -> Value {
        let d = self;
        json!({
            "id": row.id.to_string(),
            "parent": row.parent.map(|p| p.to_string()),
            "task": d.task(row),
            "fan_out": row.item.map(|(f, _)| d.fan_outs[f as usize].record.id.to_string()),
            "index": row.item.map(|(_, i)| i),
            "status": status_word(row.status),
            "origin": format!("{:?}", row.origin).to_lowercase(),
            "attempts": row.attempts,
            "queued_at": rfc3339(from_micros(row.queued_us)),
            "started_at": rfc3339(from_micros(row.start_us)),
            "duration_ms": us_to_ms(row.duration_us()),
            "waited_ms": us_to_ms(row.waited_us()),
            "error": d.error(row).map(|e| json!({"kind": e.kind().as_str(), "message": e.message()})),
        })
    }
}
