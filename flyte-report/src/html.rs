//! The report page: the template with the run's data inlined as JSON.
//!
//! Everything from the store is data. It goes into a JSON script element
//! with `<`, `>`, `&` and the line separators escaped, so no stored text can
//! close the element, and the page sets it with `textContent` only.

use crate::columns::timeline;
use crate::digest::{millis, Digest, FanOutDigest, Figures, Row};
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
    // The shape of `show -o json`, and what only the page needs.
    let mut data = d.summary_json();
    data["flyte_version"] = json!(env!("CARGO_PKG_VERSION"));
    data["generated_at"] = json!(millis(std::time::SystemTime::now()));
    data["store"] = json!(store);
    data["tree"] = d.tree_json();
    data["task_names"] = json!(d.task_names);
    data["timeline"] = json!(timeline(d)?);
    Ok(data)
}

/// `#3 env.task` for an item, `env.task` otherwise.
pub fn action_label(d: &Digest, row: &Row) -> String {
    match row.item {
        Some((_, i)) => format!("#{i} {}", d.task(row)),
        None => d.task(row).to_owned(),
    }
}

/// `12 ms (waited 40 ms) · 3 attempts · cached`.
pub fn action_detail(row: &Row) -> String {
    let mut detail = format!("{} ms", row.duration_ms());
    if row.waited_us() >= 1_000 {
        detail.push_str(&format!(" (waited {} ms)", row.waited_us() / 1_000));
    }
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

/// `map env.task`, `gather (several tasks)`, or `items of env.task (not
/// ended)` for a fan-out that has not ended (yet, or ever: its process died).
pub fn fan_out_label(f: &FanOutDigest) -> String {
    let r = &f.record;
    if f.going {
        return format!(
            "items of {} (not ended)",
            r.task.as_deref().unwrap_or("several tasks")
        );
    }
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
