//! A run's timeline for a page, aggregated on the server: per site (see
//! [`crate::sites`]: the items of one task's fan-outs from one caller,
//! however many times the caller ran) and per time bucket, how many actions executed and how
//! many waited on average, and how many ended and failed. A run of a
//! million actions is a few kilobytes here; a page never gets its rows.

use crate::sites::Sites;
use flyte_core::record::{micros, ActionStatus};
use flyte_report::digest::Digest;
use serde_json::{json, Value};
use std::time::SystemTime;

/// Buckets when the page does not say.
pub(crate) const DEFAULT_BUCKETS: usize = 400;
/// Buckets at most.
pub(crate) const MAX_BUCKETS: usize = 2_000;
/// Sites drawn apart at most; the rest are one "other" site.
const MAX_SITES: usize = 12;

/// The window and its resolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// From, in microseconds since the epoch (default: the run's start).
    pub(crate) from_us: Option<i64>,
    /// To (default: its end, or now).
    pub(crate) to_us: Option<i64>,
    /// Buckets across it.
    pub(crate) buckets: usize,
}

/// One site's series.
struct Series {
    label: String,
    task: String,
    kind: &'static str,
    actions: u64,
    busy_us: i64,
    /// Microseconds executed in each bucket (a partial bucket at each end).
    executing: Vec<f64>,
    waiting: Vec<f64>,
    /// Whole buckets covered, as a difference array (added up at the end).
    executing_full: Vec<i64>,
    waiting_full: Vec<i64>,
    ended: Vec<u32>,
    failed: Vec<u32>,
}

impl Series {
    fn new(label: String, task: String, kind: &'static str, n: usize) -> Self {
        Series {
            label,
            task,
            kind,
            actions: 0,
            busy_us: 0,
            executing: vec![0.0; n],
            waiting: vec![0.0; n],
            executing_full: vec![0; n + 1],
            waiting_full: vec![0; n + 1],
            ended: vec![0; n],
            failed: vec![0; n],
        }
    }
}

/// The timeline of `digest` in `window`, as JSON for the run page.
pub(crate) fn timeline(
    digest: &Digest,
    grouping: &Sites,
    window: Window,
    now: SystemTime,
) -> Value {
    let now_us = micros(now);
    let run_start = micros(digest.run.started_at);
    // A run's own times are kept to the millisecond, its actions' to the
    // microsecond: the last actions may end just after the run's end.
    let last_end = digest
        .rows
        .iter()
        .map(|r| r.end_us)
        .max()
        .unwrap_or(run_start);
    let run_end = digest.run.ended_at.map_or(now_us, micros).max(last_end);
    let from = window.from_us.unwrap_or(run_start);
    let to = window.to_us.unwrap_or(run_end).max(from + 1);
    let n = window.buckets.clamp(1, MAX_BUCKETS);
    let width = ((to - from) as f64 / n as f64).max(1.0);
    let going = digest.run.ended_at.is_none();

    let mut sites: Vec<Series> = grouping
        .sites
        .iter()
        .map(|site| Series::new(site.label.clone(), site.task.clone(), site.kind, n))
        .collect();
    for (i, row) in digest.rows.iter().enumerate() {
        let series = &mut sites[grouping.of_row[i]];
        series.actions += 1;
        // An action still running has no end yet: it runs until now.
        let end = if row.status == ActionStatus::Running && going {
            now_us
        } else {
            row.end_us
        };
        let executed = Span {
            start: row.start_us,
            end,
        };
        series.busy_us += executed.len();
        spread(
            executed,
            from,
            width,
            n,
            &mut series.executing,
            &mut series.executing_full,
        );
        spread(
            Span {
                start: row.queued_us,
                end: row.start_us,
            },
            from,
            width,
            n,
            &mut series.waiting,
            &mut series.waiting_full,
        );
        if row.status != ActionStatus::Running {
            if let Some(b) = bucket(row.end_us, from, width, n) {
                series.ended[b] += 1;
                if row.status == ActionStatus::Failed {
                    series.failed[b] += 1;
                }
            }
        }
    }
    let sites = fold_small(sites, n);
    let mut max_executing = 0.0f64;
    let sites: Vec<Value> = sites
        .into_iter()
        .map(|s| {
            let executing = concurrency(&s.executing, &s.executing_full, width);
            let waiting = concurrency(&s.waiting, &s.waiting_full, width);
            max_executing = executing.iter().copied().fold(max_executing, f64::max);
            json!({
                "label": s.label, "task": s.task, "kind": s.kind, "actions": s.actions,
                "busy_ms": s.busy_us as f64 / 1_000.0,
                "executing": executing, "waiting": waiting,
                "ended": s.ended, "failed": s.failed,
            })
        })
        .collect();
    json!({
        "from_us": from, "to_us": to, "bucket_us": width, "buckets": n,
        "run_start_us": run_start, "run_end_us": run_end,
        "max_executing": max_executing, "sites": sites,
    })
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: i64,
    end: i64,
}

impl Span {
    fn len(self) -> i64 {
        (self.end - self.start).max(0)
    }
}

/// The bucket of time `t`; the window's end belongs to its last bucket.
fn bucket(t: i64, from: i64, width: f64, n: usize) -> Option<usize> {
    let b = ((t - from) as f64 / width).floor();
    if b >= 0.0 && (b as usize) < n {
        Some(b as usize)
    } else if b as usize == n && (t - from) as f64 <= width * n as f64 {
        Some(n - 1)
    } else {
        None
    }
}

/// Adds `span`'s time to the buckets it covers: its partial first and last
/// buckets directly, the whole ones between as a difference (O(1) a span,
/// however long).
fn spread(span: Span, from: i64, width: f64, n: usize, partial: &mut [f64], full: &mut [i64]) {
    let start = (span.start - from) as f64;
    let end = (span.end - from) as f64;
    let limit = width * n as f64;
    let (start, end) = (start.max(0.0), end.min(limit));
    if end <= start {
        return;
    }
    let first = (start / width).floor() as usize;
    let last = ((end / width).ceil() as usize).saturating_sub(1).min(n - 1);
    if first == last {
        partial[first] += end - start;
        return;
    }
    partial[first] += (first + 1) as f64 * width - start;
    partial[last] += end - last as f64 * width;
    if first + 1 < last {
        full[first + 1] += 1;
        full[last] -= 1;
    }
}

/// Time per bucket as the average number of actions at once.
fn concurrency(partial: &[f64], full: &[i64], width: f64) -> Vec<f64> {
    let mut whole = 0i64;
    partial
        .iter()
        .enumerate()
        .map(|(b, &p)| {
            whole += full[b];
            let at_once = (p / width) + whole as f64;
            (at_once * 100.0).round() / 100.0
        })
        .collect()
}

/// The busiest sites apart, the others summed into one.
fn fold_small(mut sites: Vec<Series>, n: usize) -> Vec<Series> {
    if sites.len() <= MAX_SITES {
        return sites;
    }
    sites.sort_by_key(|s| std::cmp::Reverse(s.busy_us));
    let rest = sites.split_off(MAX_SITES - 1);
    let mut other = Series::new(
        format!("{} other sites", rest.len()),
        String::new(),
        "other",
        n,
    );
    for s in rest {
        other.actions += s.actions;
        other.busy_us += s.busy_us;
        for b in 0..n {
            other.executing[b] += s.executing[b];
            other.waiting[b] += s.waiting[b];
            other.ended[b] += s.ended[b];
            other.failed[b] += s.failed[b];
        }
        for b in 0..=n {
            other.executing_full[b] += s.executing_full[b];
            other.waiting_full[b] += s.waiting_full[b];
        }
    }
    sites.push(other);
    sites
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread_one(start: i64, end: i64, width: f64, n: usize) -> Vec<f64> {
        let mut partial = vec![0.0; n];
        let mut full = vec![0; n + 1];
        spread(Span { start, end }, 0, width, n, &mut partial, &mut full);
        concurrency(&partial, &full, width)
    }

    #[test]
    fn a_span_fills_the_buckets_it_covers() {
        assert_eq!(spread_one(0, 100, 10.0, 10), vec![1.0; 10]);
        assert_eq!(
            spread_one(5, 25, 10.0, 4),
            vec![0.5, 1.0, 0.5, 0.0],
            "half the first bucket, all the second, half the third"
        );
        assert_eq!(spread_one(12, 14, 10.0, 3), vec![0.0, 0.2, 0.0]);
        assert_eq!(
            spread_one(-50, 500, 10.0, 3),
            vec![1.0, 1.0, 1.0],
            "clipped"
        );
        assert_eq!(spread_one(40, 30, 10.0, 3), vec![0.0; 3], "empty");
    }

    #[test]
    fn spans_add_up_to_their_concurrency() {
        let (width, n) = (10.0, 5);
        let mut partial = vec![0.0; n];
        let mut full = vec![0; n + 1];
        for _ in 0..4 {
            spread(
                Span { start: 0, end: 50 },
                0,
                width,
                n,
                &mut partial,
                &mut full,
            );
        }
        spread(
            Span { start: 20, end: 30 },
            0,
            width,
            n,
            &mut partial,
            &mut full,
        );
        assert_eq!(
            concurrency(&partial, &full, width),
            vec![4.0, 4.0, 5.0, 4.0, 4.0]
        );
    }
}
