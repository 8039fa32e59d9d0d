//! A run digested for people: per-task and per-fan-out figures, failures
//! grouped by cause, the actions worth showing in a tree, and (on request)
//! the timing of every action for a timeline.
//!
//! The store is read batch by batch, never with outputs. An action is kept
//! as a compact row (about 80 bytes); a resumed action that ran again has
//! several records and its latest one counts.

use flyte_core::backend::RunStore;
use flyte_core::record::{
    from_micros, micros, ActionRecord, ActionStatus, FanOutKind, FanOutRecord, Origin, RunRecord,
};
use flyte_core::store::{RunKey, StoreError};
use flyte_core::{ActionId, IdMap, IdSet, TaskError};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many actions a digest keeps for the tree at most; beyond it the tree
/// says how many it left out (the figures still count every action).
pub const MAX_TREE_ACTIONS: usize = 20_000;

/// The wall time below which a fan-out's achieved concurrency is not
/// computed (see [`FanOutDigest::achieved_concurrency`]): a fan-out's own
/// times are kept to the millisecond.
pub const MIN_TIMED_MS: i64 = 5;

/// One action, compactly.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its id.
    pub id: ActionId,
    /// The action that called it.
    pub parent: Option<ActionId>,
    /// Its fan-out (an index into [`Digest::fan_outs`]) and its place in it.
    pub item: Option<(u32, u64)>,
    /// An index into [`Digest::task_names`].
    pub task: u32,
    /// How it ended.
    pub status: ActionStatus,
    /// Where its output came from.
    pub origin: Origin,
    /// Attempts made.
    pub attempts: u32,
    /// When it was queued, in microseconds since the Unix epoch.
    pub queued_us: i64,
    /// When it began to execute (its end, when it never began), in
    /// microseconds since the epoch.
    pub start_us: i64,
    /// End (the start while still running), in microseconds since the epoch.
    pub end_us: i64,
    /// An index into [`Digest::errors`], plus one (0: no error).
    pub error: u32,
}

impl Row {
    /// How long it executed, in microseconds.
    pub fn duration_us(&self) -> i64 {
        (self.end_us - self.start_us).max(0)
    }

    /// How long it executed, in whole milliseconds.
    pub fn duration_ms(&self) -> i64 {
        self.duration_us() / 1_000
    }

    /// How long it waited before it began (for a slot, a rate window, a
    /// worker), in microseconds.
    pub fn waited_us(&self) -> i64 {
        (self.start_us - self.queued_us).max(0)
    }
}

/// Figures over a set of actions: a task's, or a fan-out's items'.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Actions.
    pub actions: u64,
    /// That succeeded (including cached and replayed).
    pub succeeded: u64,
    /// That failed.
    pub failed: u64,
    /// That were cancelled.
    pub cancelled: u64,
    /// Still running when read.
    pub running: u64,
    /// Whose output came from the cache.
    pub cached: u64,
    /// Whose output was replayed by the latest execution of a resumed run
    /// (counted by the fan-outs that replayed them: a replayed action keeps
    /// the record of the execution that ran it).
    pub replayed: u64,
    /// That needed more than one attempt.
    pub retried: u64,
    /// Median execution time of the actions that ran, in microseconds
    /// (from when the first attempt began: waits for slots are not in it).
    pub p50_us: i64,
    /// 95th percentile, in microseconds.
    pub p95_us: i64,
    /// Longest, in microseconds.
    pub max_us: i64,
    /// Sum of the execution times of the actions that ran, in microseconds.
    pub busy_us: i64,
    /// Median wait before an action began (for its slot, a rate window, a
    /// worker), in microseconds.
    pub wait_p50_us: i64,
}

/// One task's figures.
#[derive(Debug, Clone)]
pub struct TaskFigures {
    /// The task.
    pub task: String,
    /// Its figures.
    pub figures: Figures,
}

/// One fan-out with its items' figures.
#[derive(Debug, Clone)]
pub struct FanOutDigest {
    /// As stored.
    pub record: FanOutRecord,
    /// Over its items.
    pub figures: Figures,
    /// Items executing at once on average over the fan-out's life (the
    /// items' execution time over the fan-out's wall time; waits are not
    /// in it). `None` when the fan-out lasted under [`MIN_TIMED_MS`].
    pub achieved_concurrency: Option<f64>,
    /// Still going when read (or its process died before it ended): its
    /// items ended but its own record is not written, so its record is
    /// made from them (times and counts) and its kind and bound are not
    /// known.
    pub going: bool,
}

/// Failures that share a cause: the same task, error kind and message but
/// for the numbers in it (an item's index, a value, an id).
#[derive(Debug, Clone)]
pub struct FailureGroup {
    /// The failing task.
    pub task: String,
    /// The error's kind, as a word.
    pub kind: &'static str,
    /// The message with its numbers written `N` (`N is a multiple of N`):
    /// messages that differ only in their numbers are one cause.
    pub cause: String,
    /// The message of one of them, as it is.
    pub message: String,
    /// How many actions failed so.
    pub count: u64,
    /// One of them.
    pub example: ActionId,
}

/// What [`digest`] found.
#[derive(Debug, Clone)]
pub struct Digest {
    /// The run.
    pub run: RunRecord,
    /// Every task that appears, in order of first appearance.
    pub task_names: Vec<String>,
    /// Every action, in the order they ended (latest record of each).
    pub rows: Vec<Row>,
    /// The errors the rows point to.
    pub errors: Vec<TaskError>,
    /// The run's fan-outs, in the order they first ended; a fan-out of a
    /// resumed run is its latest execution's record.
    pub fan_outs: Vec<FanOutDigest>,
    /// Figures per task, by task name.
    pub tasks: Vec<TaskFigures>,
    /// Failures grouped by cause, most frequent first. Only the leaves: a
    /// parent that failed because a child failed is not counted again.
    pub failures: Vec<FailureGroup>,
    /// The actions a tree shows: every action that is not a fan-out item,
    /// and the items that failed or called tasks themselves; indexes into
    /// `rows`, at most [`MAX_TREE_ACTIONS`].
    pub tree: Vec<usize>,
    /// Actions the tree left out beyond [`MAX_TREE_ACTIONS`].
    pub tree_left_out: u64,
}

/// Reads run `run` (key `key`) of `store` and digests it.
///
/// # Errors
///
/// When the store cannot be read (or is not a store tools can read).
pub fn digest(store: &dyn RunStore, key: RunKey, run: RunRecord) -> Result<Digest, StoreError> {
    let store = store.reader()?;
    // A resumed run stores its fan-outs once per execution, under the same
    // (deterministic) ids: the latest execution's record is the fan-out.
    let mut records: Vec<FanOutRecord> = Vec::new();
    let mut fan_out_index: IdMap<u32> = IdMap::default();
    for record in store.fan_outs(key)? {
        match fan_out_index.get(&record.id) {
            Some(&i) => records[i as usize] = record,
            None => {
                fan_out_index.insert(record.id, u32::try_from(records.len()).unwrap_or(u32::MAX));
                records.push(record);
            }
        }
    }
    let going = vec![false; records.len()];
    let mut builder = Builder {
        fan_out_index,
        records,
        going,
        ..Builder::default()
    };
    // The store reads and decodes batches on this thread while another
    // adds them up: a digest of a million actions takes the two about
    // equally. A few batches in flight bound the memory.
    let (batches, added) = std::sync::mpsc::sync_channel::<Vec<ActionRecord>>(4);
    let read = std::thread::scope(|scope| {
        let adder = scope.spawn(move || {
            for batch in added {
                for action in batch {
                    builder.add(action);
                }
            }
            builder
        });
        let read = store.actions(key, false, &mut |batch| match batches.send(batch) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        });
        drop(batches);
        let builder = adder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        read.map(|()| builder)
    });
    Ok(read?.finish(run))
}

#[derive(Default)]
struct Builder {
    fan_out_index: IdMap<u32>,
    /// The fan-outs: those recorded, then those still going (their items
    /// ended, their own record not written yet).
    records: Vec<FanOutRecord>,
    going: Vec<bool>,
    task_index: HashMap<String, u32>,
    task_names: Vec<String>,
    /// The task of the action added last (an index into `task_names`).
    last_task: u32,
    at: IdMap<usize>,
    rows: Vec<Row>,
    errors: Vec<TaskError>,
}

impl Builder {
    fn add(&mut self, action: ActionRecord) {
        let item = action
            .item
            .map(|(fan_out, index)| (self.fan_out_of(fan_out, &action), index));
        // Actions of one task come in runs (a map's items): the last task
        // seen is compared before any hashing.
        let last = self.task_names.get(self.last_task as usize);
        let task = if last.is_some_and(|name| *name == action.task) {
            self.last_task
        } else {
            match self.task_index.get(&action.task) {
                Some(&i) => i,
                None => {
                    let i = u32::try_from(self.task_names.len()).unwrap_or(u32::MAX);
                    self.task_index.insert(action.task.clone(), i);
                    self.task_names.push(action.task);
                    i
                }
            }
        };
        self.last_task = task;
        let error = match action.error {
            Some(e) => {
                self.errors.push(e);
                u32::try_from(self.errors.len()).unwrap_or(u32::MAX)
            }
            None => 0,
        };
        let start_us = micros(action.started_at);
        let row = Row {
            id: action.id,
            parent: action.parent,
            item,
            task,
            status: action.status,
            origin: action.origin,
            attempts: action.attempts,
            queued_us: micros(action.queued_at).min(start_us),
            start_us,
            end_us: action.ended_at.map_or(start_us, micros),
            error,
        };
        match self.at.get(&row.id) {
            Some(&i) => self.rows[i] = row,
            None => {
                self.at.insert(row.id, self.rows.len());
                self.rows.push(row);
            }
        }
    }

    /// The index of fan-out `id`, which item `action` belongs to: its
    /// record's, or a fan-out still going, made from its items as they
    /// come (its kind and bound are not known until it ends).
    fn fan_out_of(&mut self, id: ActionId, action: &ActionRecord) -> u32 {
        if let Some(&f) = self.fan_out_index.get(&id) {
            return f;
        }
        let f = u32::try_from(self.records.len()).unwrap_or(u32::MAX);
        let mut record = FanOutRecord::new(
            id,
            action.parent.unwrap_or(ActionId(0)),
            FanOutKind::Map,
            action.queued_at,
            action.ended_at.unwrap_or(action.started_at),
        );
        record.task = Some(action.task.clone());
        record.group.clone_from(&action.group);
        self.records.push(record);
        self.going.push(true);
        self.fan_out_index.insert(id, f);
        f
    }

    fn finish(self, run: RunRecord) -> Digest {
        let (records, going) = (self.records, self.going);
        let rows = self.rows;
        let mut per_task: Vec<Vec<&Row>> = vec![Vec::new(); self.task_names.len()];
        let mut per_fan_out: Vec<Vec<&Row>> = vec![Vec::new(); records.len()];
        let mut parents = IdSet::default();
        let mut failed_parents = IdSet::default();
        for row in &rows {
            per_task[row.task as usize].push(row);
            if let Some((f, _)) = row.item {
                per_fan_out[f as usize].push(row);
            }
            if let Some(parent) = row.parent {
                parents.insert(parent);
                if row.status == ActionStatus::Failed {
                    failed_parents.insert(parent);
                }
            }
        }
        let mut tasks: Vec<TaskFigures> = self
            .task_names
            .iter()
            .zip(&per_task)
            .map(|(task, rows)| TaskFigures {
                task: task.clone(),
                figures: figures(rows),
            })
            .collect();
        // A replayed action keeps its first record in the store; how many
        // were replayed is known from the fan-outs that replayed them.
        for record in &records {
            let Some(task) = &record.task else { continue };
            if let Some(&t) = self.task_index.get(task) {
                tasks[t as usize].figures.replayed += record.replayed;
            }
        }
        let fan_outs = records
            .into_iter()
            .zip(&per_fan_out)
            .zip(going)
            .map(|((mut record, rows), going)| {
                let mut figures = figures(rows);
                if going {
                    fill_going(&mut record, rows, &figures, &self.task_names);
                }
                figures.replayed = record.replayed;
                let wall = record
                    .ended_at
                    .duration_since(record.started_at)
                    .unwrap_or(Duration::ZERO);
                // The fan-out's own times are kept to the millisecond, its
                // items' to the microsecond: the items' span (from the
                // first queued to the last ended) is the truer wall when
                // it is the longer, so a short fan-out is not shown
                // running more at once than it could.
                let first = rows.iter().map(|r| r.queued_us.min(r.start_us)).min();
                let last = rows.iter().map(|r| r.end_us).max();
                let span_us = first.zip(last).map_or(0, |(a, b)| (b - a).max(0));
                let wall_us = (wall.as_micros() as i64).max(span_us);
                let achieved_concurrency = (wall.as_millis() >= MIN_TIMED_MS as u128)
                    .then(|| figures.busy_us as f64 / wall_us as f64);
                FanOutDigest {
                    record,
                    figures,
                    achieved_concurrency,
                    going,
                }
            })
            .collect();

        let mut groups: HashMap<(u32, &'static str, String), FailureGroup> = HashMap::new();
        for row in &rows {
            if row.status != ActionStatus::Failed
                || row.error == 0
                || failed_parents.contains(&row.id)
            {
                continue;
            }
            let e = &self.errors[row.error as usize - 1];
            let kind = e.kind().as_str();
            let cause = cause_of(e.message());
            groups
                .entry((row.task, kind, cause.clone()))
                .or_insert_with(|| FailureGroup {
                    task: self.task_names[row.task as usize].clone(),
                    kind,
                    cause,
                    message: e.message().to_owned(),
                    count: 0,
                    example: row.id,
                })
                .count += 1;
        }
        let mut failures: Vec<FailureGroup> = groups.into_values().collect();
        failures.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.task.cmp(&b.task)));

        let mut tree = Vec::new();
        let mut tree_left_out = 0;
        for (i, row) in rows.iter().enumerate() {
            let shown = row.item.is_none()
                || row.status == ActionStatus::Failed
                || parents.contains(&row.id);
            if !shown {
                continue;
            }
            if tree.len() < MAX_TREE_ACTIONS {
                tree.push(i);
            } else {
                tree_left_out += 1;
            }
        }
        Digest {
            run,
            task_names: self.task_names,
            rows,
            errors: self.errors,
            fan_outs,
            tasks,
            failures,
            tree,
            tree_left_out,
        }
    }
}

/// `message` with each run of digits (and hex of 8 or more) as `N`.
fn cause_of(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let token_end = message[i..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(message.len(), |n| i + n);
        let token = &message[i..token_end];
        let at_word_start = i == 0 || !message[..i].ends_with(|c: char| c.is_ascii_alphanumeric());
        let hex_id = at_word_start
            && token.len() >= 8
            && token.chars().all(|c| c.is_ascii_hexdigit())
            && token.chars().any(|c| c.is_ascii_digit());
        if c.is_ascii_digit() || hex_id {
            let end = if hex_id {
                token_end
            } else {
                message[i..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(message.len(), |n| i + n)
            };
            out.push('N');
            while chars.peek().is_some_and(|&(j, _)| j < end) {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The figures of `rows` (a task's, a fan-out's, or any set a tool
/// groups them in).
pub fn figures(rows: &[&Row]) -> Figures {
    let mut f = Figures::default();
    let mut durations = Vec::new();
    let mut waits = Vec::new();
    for row in rows {
        f.actions += 1;
        match row.status {
            ActionStatus::Succeeded => f.succeeded += 1,
            ActionStatus::Failed => f.failed += 1,
            ActionStatus::Cancelled => f.cancelled += 1,
            _ => f.running += 1,
        }
        match row.origin {
            Origin::Cached => f.cached += 1,
            Origin::Replayed => {} // counted from the fan-outs (see `Figures::replayed`)
            _ => {
                durations.push(row.duration_us());
                waits.push(row.waited_us());
            }
        }
        if row.attempts > 1 {
            f.retried += 1;
        }
    }
    f.busy_us = durations.iter().sum();
    f.max_us = durations.iter().copied().max().unwrap_or(0);
    f.p50_us = percentile(&mut durations, 50);
    f.p95_us = percentile(&mut durations, 95);
    f.wait_p50_us = percentile(&mut waits, 50);
    f
}

/// The `p`th percentile of `values` (nearest rank); 0 when empty. Selects
/// rather than sorts (linear: a million actions' figures are asked for
/// per task, per fan-out and per site), leaving `values` reordered.
fn percentile(values: &mut [i64], p: usize) -> i64 {
    if values.is_empty() {
        return 0;
    }
    let rank = (values.len() * p).div_ceil(100).max(1);
    *values.select_nth_unstable(rank - 1).1
}

/// A fan-out still going, as far as its ended items tell: their span,
/// their counts, their task when they share one.
fn fill_going(record: &mut FanOutRecord, rows: &[&Row], figures: &Figures, task_names: &[String]) {
    if let Some(first) = rows.iter().map(|r| r.queued_us).min() {
        record.started_at = from_micros(first);
    }
    if let Some(last) = rows.iter().map(|r| r.end_us).max() {
        record.ended_at = from_micros(last);
    }
    let mut tasks = rows.iter().map(|r| r.task);
    let first = tasks.next();
    record.task = match first {
        Some(t) if tasks.all(|other| other == t) => Some(task_names[t as usize].clone()),
        _ => None,
    };
    record.started = figures.actions;
    record.succeeded = figures.succeeded;
    record.failed = figures.failed;
    record.cancelled = figures.cancelled;
    record.cached = figures.cached;
}

/// Milliseconds since the Unix epoch.
pub fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Microseconds as milliseconds, for JSON and people (0.412 ms).
pub fn us_to_ms(us: i64) -> f64 {
    us as f64 / 1_000.0
}

impl Figures {
    /// The figures as JSON, durations in milliseconds (fractions of one
    /// for what took less).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "actions": self.actions, "succeeded": self.succeeded, "failed": self.failed,
            "cancelled": self.cancelled, "running": self.running, "cached": self.cached,
            "replayed": self.replayed, "retried": self.retried,
            "p50_ms": us_to_ms(self.p50_us), "p95_ms": us_to_ms(self.p95_us),
            "max_ms": us_to_ms(self.max_us), "busy_ms": us_to_ms(self.busy_us),
            "wait_p50_ms": us_to_ms(self.wait_p50_us),
        })
    }
}

impl Digest {
    /// The error of `row`, if it has one.
    pub fn error(&self, row: &Row) -> Option<&TaskError> {
        (row.error > 0).then(|| &self.errors[row.error as usize - 1])
    }

    /// The task name of `row`.
    pub fn task(&self, row: &Row) -> &str {
        &self.task_names[row.task as usize]
    }

    /// Counts over every action of the run.
    pub fn totals(&self) -> Figures {
        let rows: Vec<&Row> = self.rows.iter().collect();
        let mut totals = figures(&rows);
        totals.replayed = self.fan_outs.iter().map(|f| f.record.replayed).sum();
        totals
    }
}

/// What one node of a run's tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeItem {
    /// An action: an index into [`Digest::rows`].
    Action(usize),
    /// A fan-out: an index into [`Digest::fan_outs`].
    FanOut(usize),
}

/// One node of a run's tree.
#[derive(Debug, Clone, Copy)]
pub struct TreeNode {
    /// What it is.
    pub item: TreeItem,
    /// Its parent node (an index into the same list); `None` at the top.
    pub parent: Option<usize>,
}

impl Digest {
    /// The run's tree: the kept actions (latest ended first, so the root
    /// comes first), then the fan-outs. An item hangs under its fan-out, a
    /// fan-out under the action that made it, any other action under its
    /// parent; a node whose parent was left out is at the top.
    pub fn tree_nodes(&self) -> Vec<TreeNode> {
        let mut nodes = Vec::with_capacity(self.tree.len() + self.fan_outs.len());
        let mut action_node = HashMap::new();
        for &i in self.tree.iter().rev() {
            action_node.insert(self.rows[i].id, nodes.len());
            nodes.push(TreeNode {
                item: TreeItem::Action(i),
                parent: None,
            });
        }
        let fan_out_base = nodes.len();
        for (f, fan_out) in self.fan_outs.iter().enumerate() {
            nodes.push(TreeNode {
                item: TreeItem::FanOut(f),
                parent: action_node.get(&fan_out.record.parent).copied(),
            });
        }
        for node in &mut nodes[..fan_out_base] {
            let TreeItem::Action(i) = node.item else {
                continue;
            };
            let row = &self.rows[i];
            node.parent = match row.item {
                Some((f, _)) => Some(fan_out_base + f as usize),
                None => row.parent.and_then(|p| action_node.get(&p).copied()),
            };
        }
        nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_ignore_numbers_and_ids() {
        assert_eq!(cause_of("14 is a multiple of 14"), "N is a multiple of N");
        assert_eq!(
            cause_of("item 3: timed out after 2.5s"),
            "item N: timed out after N.Ns"
        );
        assert_eq!(cause_of("row deadbeef42 not found"), "row N not found");
        assert_eq!(cause_of("http2 failed"), "httpN failed");
        assert_eq!(cause_of("no numbers"), "no numbers");
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut v: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut v, 50), 50);
        assert_eq!(percentile(&mut v, 95), 95, "after another selection");
        assert_eq!(percentile(&mut [7], 95), 7);
        assert_eq!(percentile(&mut [], 50), 0);
        let mut shuffled = vec![30, 10, 50, 20, 40];
        assert_eq!(percentile(&mut shuffled, 50), 30);
    }
}
