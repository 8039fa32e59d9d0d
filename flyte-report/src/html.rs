//! The report page: the template with the run's data inlined as JSON.
//!
//! Everything from the store is data. It goes into a JSON script element
//! with `<`, `>`, `&` and the line separators escaped, so no stored text can
//! close the element, and the page sets it with `textContent` only.

use crate::columns::timeline;
use crate::digest::{millis, Digest, FanOutDigest, Figures, Row, TreeItem};
use flyte_core::record::{ActionStatus, Origin};
use serde_json::{json, Value};
use std::io::Write;

const TEMPLATE: &str = include_str!("page.html");
const SLOT: &str = "__FLYTE_DATA__";

/// Writes the page of `digest` to `out`. `store` names where it was read.
pub(crate) fn write_page(digest: &Digest, store: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let data = page_data(digest, store)?;
    let json = escape_for_script(&serde_json::to_string(&data).map_err(std::io::Error::other)?);
    let (head, tail) = TEMPLATE
        .split_once(SLOT)
        .expect("the template has its data slot");
    out.write_all(head.as_bytes())?;
    out.write_all(json.as_bytes())?;
    out.write_all(tail.as_bytes())?;
    out.flush()
}

/// JSON that is safe inside a `<script>` element.
pub(crate) fn escape_for_script(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            // Outside strings JSON has none of these; inside, the escapes read the same.
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

fn page_data(d: &Digest, store: &str) -> std::io::Result<Value> {
    let run = &d.run;
    Ok(json!({
        "flyte_version": env!("CARGO_PKG_VERSION"),
        "generated_at": millis(std::time::SystemTime::now()),
        "store": store,
        "run": {
            "id": run.id,
            "name": run.name,
            "task": run.root_task,
            "status": run.status.as_str(),
            "error": run.error.as_ref().map(|e| json!({"kind": e.kind().as_str(), "message": e.message()})),
            "started_at": millis(run.started_at),
            "ended_at": run.ended_at.map(millis),
            "executions": run.executions,
            "lost_actions": run.lost_actions,
        },
        "totals": crate::digest::Figures::to_json(&d.totals()),
        "tasks": d.tasks.iter().map(|t| {
            let mut v = crate::digest::Figures::to_json(&t.figures);
            v["task"] = json!(t.task);
            v
        }).collect::<Vec<_>>(),
        "fan_outs": d.fan_outs.iter().map(|f| {
            let r = &f.record;
            let mut v = crate::digest::Figures::to_json(&f.figures);
            v["kind"] = json!(r.kind.as_str());
            v["task"] = json!(r.task);
            v["group"] = json!(r.group);
            v["concurrency"] = json!(r.concurrency);
            v["started"] = json!(r.started);
            v["started_at"] = json!(millis(r.started_at));
            v["ended_at"] = json!(millis(r.ended_at));
            v["achieved"] = json!(f.achieved_concurrency);
            v
        }).collect::<Vec<_>>(),
        "failures": d.failures.iter().map(|g| json!({
            "task": g.task, "kind": g.kind, "cause": g.cause, "message": g.message, "count": g.count,
            "example": g.example.to_string(),
        })).collect::<Vec<_>>(),
        "tree": tree_json(d),
        "task_names": d.task_names,
        "timeline": timeline(d)?,
    }))
}

/// The tree's nodes, each naming its parent node (-1: top).
fn tree_json(d: &Digest) -> Value {
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

/// `#3 env.task` for an item, `env.task` otherwise.
pub fn action_label(d: &Digest, row: &Row) -> String {
    match row.item {
        Some((_, i)) => format!("#{i} {}", d.task(row)),
        None => d.task(row).to_owned(),
    }
}

/// `12 ms · 3 attempts · cached`.
pub fn action_detail(row: &Row) -> String {
    let mut detail = format!("{} ms", row.duration_ms());
    if row.attempts > 1 {
        detail.push_str(&format!(" · {} attempts", row.attempts));
    }
    match row.origin {
        Origin::Cached => detail.push_str(" · cached"),
        Origin::Replayed => detail.push_str(" · replayed"),
        _ => {}
    }
    detail
}

/// `map env.task`, or `gather (several tasks)`.
pub fn fan_out_label(f: &FanOutDigest) -> String {
    let r = &f.record;
    format!(
        "{} {}",
        r.kind.as_str(),
        r.task.as_deref().unwrap_or("(several tasks)")
    )
}

/// `100 items: ✓ 98 ✗ 2 · cached 5`, for a fan-out's line.
pub fn fan_out_counts(f: &Figures) -> String {
    let mut s = format!("{} items: ✓ {} ✗ {}", f.actions, f.succeeded, f.failed);
    for (n, word) in [
        (f.cancelled, "cancelled"),
        (f.running, "running"),
        (f.cached, "cached"),
        (f.replayed, "replayed"),
        (f.retried, "retried"),
    ] {
        if n > 0 {
            s.push_str(&format!(" · {word} {n}"));
        }
    }
    s
}

/// `succeeded`, `failed`, `cancelled` or `running`.
pub fn status_word(s: ActionStatus) -> &'static str {
    s.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_cannot_close_the_script_element() {
        let json =
            serde_json::to_string(&json!({"m": "</script><img src=x onerror=alert(1)>&\u{2028}"}))
                .unwrap();
        let safe = escape_for_script(&json);
        assert!(!safe.contains('<') && !safe.contains('>') && !safe.contains('&'));
        let back: Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["m"], "</script><img src=x onerror=alert(1)>&\u{2028}");
    }
}
