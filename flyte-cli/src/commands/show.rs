//! `flyte show RUN`: the run's header, error, tree and failures grouped by
//! cause; `--failed` for the failing actions, `--action` for one action,
//! `--io` for the inputs and outputs as JSON.

use crate::args::{Format, ShowArgs};
use crate::error::{CliError, Exit};
use crate::output::{self, print_json, print_list, Table};
use crate::refs::{resolve, MIN_PREFIX};
use crate::Ctx;
use flyte_core::backend::RunStore;
use flyte_core::record::{ActionStatus, RunRecord};
use flyte_core::store::RunKey;
use flyte_core::ActionId;
use flyte_report::{
    action_detail, action_label, fan_out_counts, fan_out_label, Digest, Figures, Row, TreeItem,
    TreeNode,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write;
use std::ops::ControlFlow;
use std::time::Duration;

/// Items shown under a fan-out before "… N more".
const ITEMS_SHOWN: usize = 10;
/// Children shown under an action before "… N more".
const CHILDREN_SHOWN: usize = 50;

pub(crate) fn show(ctx: &Ctx, args: &ShowArgs) -> Result<Exit, CliError> {
    if args.io {
        ctx.needs_tasks("`show --io`")?;
    }
    let store = ctx.store()?;
    let (key, run) = resolve(store.as_ref(), &args.run.run)?;
    let digest = flyte_report::digest(store.as_ref(), key, run)?;
    let format = args.format.format;
    if let Some(reference) = &args.action {
        let row = find_action(&digest, reference)?;
        return show_action(store.as_ref(), key, &digest, row, args.io, format);
    }
    if args.failed {
        return show_failed(&digest, format);
    }
    let io = if args.io {
        Some(run_io(store.as_ref(), key, &digest)?)
    } else {
        None
    };
    if format != Format::Table {
        let mut doc = digest.summary_json();
        if let Some(io) = io {
            doc["io"] = io;
        }
        print_json(&doc, format)?;
        return Ok(Exit::Ok);
    }
    let mut text = String::new();
    header(&mut text, &digest, output::color());
    tree(&mut text, &digest);
    failures(&mut text, &digest);
    if let Some(io) = io {
        let _ = writeln!(
            text,
            "\ninputs  {}",
            output::printable(&io["inputs"].to_string())
        );
        let _ = writeln!(
            text,
            "output  {}",
            output::printable(&io["output"].to_string())
        );
    }
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(Exit::Ok)
}

fn header(out: &mut String, d: &Digest, color: bool) {
    let run = &d.run;
    let _ = write!(out, "run       {}", run.id);
    if let Some(name) = &run.name {
        let _ = write!(out, "  (name {})", output::printable(name));
    }
    let _ = writeln!(out, "  {}", output::status(run.status.as_str(), color));
    let _ = writeln!(out, "task      {}", output::printable(&run.root_task));
    let took = output::run_duration(run).map_or_else(|| "-".into(), output::duration);
    let _ = writeln!(
        out,
        "started   {} UTC   took {took}   execution{} {}",
        output::when(run.started_at),
        if run.executions == 1 { "" } else { "s" },
        run.executions
    );
    let _ = writeln!(out, "actions   {}", counts(&d.totals()));
    if run.lost_actions > 0 {
        let _ = writeln!(
            out,
            "record    incomplete: {} action records could not be written",
            run.lost_actions
        );
    }
    if let Some(e) = &run.error {
        let _ = writeln!(
            out,
            "error     [{}] {}",
            e.kind().as_str(),
            output::printable(e.message())
        );
    }
}

/// `1,003: ✓ 990 ✗ 3 · cancelled 10`.
fn counts(f: &Figures) -> String {
    let line = fan_out_counts(f);
    match line.split_once(" items: ") {
        Some((n, rest)) => format!("{n}: {rest}"),
        None => line,
    }
}

fn tree(out: &mut String, d: &Digest) {
    let nodes = d.tree_nodes();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut tops = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        match node.parent {
            Some(p) => children[p].push(i),
            None => tops.push(i),
        }
    }
    let start = |i: &usize| match nodes[*i].item {
        TreeItem::Action(r) => d.rows[r].start_us / 1_000,
        TreeItem::FanOut(f) => flyte_report::digest::millis(d.fan_outs[f].record.started_at),
    };
    let order = |i: &usize| match nodes[*i].item {
        // Items in input order; anything else by start.
        TreeItem::Action(r) => d.rows[r]
            .item
            .map_or((start(i), 0), |(_, index)| (0, index)),
        TreeItem::FanOut(_) => (start(i), 0),
    };
    for list in &mut children {
        list.sort_by_key(order);
    }
    tops.sort_by_key(start);
    let _ = writeln!(out, "\ntree");
    for top in tops {
        node_lines(out, d, &nodes, &children, top, "", "");
    }
    if d.tree_left_out > 0 {
        let _ = writeln!(
            out,
            "({} more actions not in the tree; the counts include them)",
            d.tree_left_out
        );
    }
}

fn node_lines(
    out: &mut String,
    d: &Digest,
    nodes: &[TreeNode],
    children: &[Vec<usize>],
    node: usize,
    first: &str,
    rest: &str,
) {
    match nodes[node].item {
        TreeItem::Action(r) => {
            let row = &d.rows[r];
            let _ = writeln!(
                out,
                "{first}{} {}  {}",
                mark(row.status),
                output::printable(&action_label(d, row)),
                output::printable(&action_detail(row))
            );
            if let Some(e) = d.error(row) {
                if children[node].is_empty() {
                    let _ = writeln!(
                        out,
                        "{rest}    [{}] {}",
                        e.kind().as_str(),
                        one_line(e.message())
                    );
                }
            }
        }
        TreeItem::FanOut(f) => {
            let f = &d.fan_outs[f];
            let r = &f.record;
            let wall = r
                .ended_at
                .duration_since(r.started_at)
                .unwrap_or(Duration::ZERO);
            let concurrency = r.concurrency.map_or("unbounded".into(), |c| c.to_string());
            let _ = writeln!(
                out,
                "{first}{}  {}  ({}, concurrency {concurrency}{})",
                output::printable(&fan_out_label(f)),
                fan_out_counts(&f.figures),
                output::duration(wall),
                f.achieved_concurrency
                    .map_or(String::new(), |a| format!(", achieved {a:.1}"))
            );
        }
    }
    let kids = &children[node];
    let limit = match nodes[node].item {
        TreeItem::FanOut(_) => ITEMS_SHOWN,
        TreeItem::Action(_) => CHILDREN_SHOWN,
    };
    let shown = kids.len().min(limit);
    for (i, &kid) in kids[..shown].iter().enumerate() {
        let last = i + 1 == shown && kids.len() <= limit;
        let (branch, indent) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        node_lines(
            out,
            d,
            nodes,
            children,
            kid,
            &format!("{rest}{branch}"),
            &format!("{rest}{indent}"),
        );
    }
    if kids.len() > limit {
        let _ = writeln!(
            out,
            "{rest}└─ … {} more (see them with --failed, or in `flyte report`)",
            kids.len() - limit
        );
    }
}

fn mark(status: ActionStatus) -> &'static str {
    match status {
        ActionStatus::Succeeded => "✓",
        ActionStatus::Failed => "✗",
        ActionStatus::Cancelled => "⊘",
        _ => "…",
    }
}

/// A message on one line, its control characters shown as escapes.
fn one_line(message: &str) -> String {
    output::printable(&message.replace('\n', " ⏎ ")).into_owned()
}

fn failures(out: &mut String, d: &Digest) {
    if d.failures.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nfailures, by cause");
    for g in &d.failures {
        let _ = writeln!(
            out,
            "  {:>6}×  {}  [{}] {}\n          e.g. {} (--action {})",
            g.count,
            output::printable(&g.task),
            output::printable(g.kind),
            one_line(&g.cause),
            one_line(&g.message),
            &g.example.to_string()[..12]
        );
    }
}

fn show_failed(d: &Digest, format: Format) -> Result<Exit, CliError> {
    let failed_parents: HashSet<ActionId> = d
        .rows
        .iter()
        .filter(|r| r.status == ActionStatus::Failed)
        .filter_map(|r| r.parent)
        .collect();
    let leaves: Vec<&Row> = d
        .rows
        .iter()
        .filter(|r| r.status == ActionStatus::Failed && !failed_parents.contains(&r.id))
        .collect();
    if leaves.is_empty() {
        eprintln!("no action of run {} failed", d.run.id);
    }
    let items: Vec<Value> = leaves.iter().map(|r| d.action_json(r)).collect();
    print_list(format, &items, || {
        let mut table = Table::new(vec!["ACTION", "TASK", "ITEM", "ATTEMPTS", "ERROR"]);
        for r in &leaves {
            table.row(vec![
                r.id.to_string()[..12].to_owned(),
                output::printable(d.task(r)).into_owned(),
                r.item.map_or("-".into(), |(_, i)| i.to_string()),
                r.attempts.to_string(),
                d.error(r).map_or(String::new(), |e| {
                    format!("[{}] {}", e.kind().as_str(), one_line(e.message()))
                }),
            ]);
        }
        table
    })?;
    Ok(Exit::Ok)
}

fn find_action<'d>(d: &'d Digest, reference: &str) -> Result<&'d Row, CliError> {
    let reference = reference.to_ascii_lowercase();
    if reference.len() < MIN_PREFIX {
        return Err(CliError::usage(format!(
            "--action {reference:?} is too short: give {MIN_PREFIX} characters or more of the action id"
        )));
    }
    let found: Vec<&Row> = d
        .rows
        .iter()
        .filter(|r| r.id.to_string().starts_with(&reference))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(
            CliError::not_found(format!("run {} has no action {reference:?}", d.run.id)).hint(
                "action ids are in `flyte show RUN --failed` and `flyte export RUN --format jsonl`",
            ),
        ),
        many => Err(CliError::usage(format!(
            "{reference:?} is the start of {} action ids: {}",
            many.len(),
            many.iter()
                .take(10)
                .map(|r| r.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .hint("give more characters of the action id")),
    }
}

fn show_action(
    store: &dyn RunStore,
    key: RunKey,
    d: &Digest,
    row: &Row,
    io: bool,
    format: Format,
) -> Result<Exit, CliError> {
    let mut doc = d.action_json(row);
    if io {
        doc["output"] = action_output(store, key, row.id, d.task(row))?;
        if row.parent.is_none() {
            doc["inputs"] = run_inputs(store, key, &d.run)?;
        }
    }
    if format != Format::Table {
        print_json(&doc, format)?;
        return Ok(Exit::Ok);
    }
    let mut text = String::new();
    for field in [
        "id",
        "task",
        "status",
        "origin",
        "attempts",
        "parent",
        "fan_out",
        "index",
        "started_at",
        "duration_ms",
        "inputs",
        "output",
    ] {
        match &doc[field] {
            Value::Null => {}
            Value::String(s) => {
                let _ = writeln!(text, "{field:<12}{}", output::printable(s));
            }
            other => {
                // JSON escapes C0 controls but keeps DEL, C1 and bidi
                // characters as they are.
                let _ = writeln!(text, "{field:<12}{}", output::printable(&other.to_string()));
            }
        }
    }
    if let Some(e) = d.error(row) {
        let _ = writeln!(
            text,
            "{:<12}[{}] {}",
            "error",
            e.kind().as_str(),
            output::printable(e.message())
        );
    }
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(Exit::Ok)
}

fn run_io(store: &dyn RunStore, key: RunKey, d: &Digest) -> Result<Value, CliError> {
    let root = d.rows.iter().find(|r| r.parent.is_none());
    let output = match root {
        Some(root) => action_output(store, key, root.id, d.task(root))?,
        None => Value::Null,
    };
    Ok(json!({ "inputs": run_inputs(store, key, &d.run)?, "output": output }))
}

fn run_inputs(store: &dyn RunStore, key: RunKey, run: &RunRecord) -> Result<Value, CliError> {
    match store.run_log().run_inputs(key)? {
        Some(bytes) => Ok(flyte_runtime::registry().inputs_json(&run.root_task, &bytes)?),
        None => Ok(Value::Null),
    }
}

/// The output of action `id` as JSON (`null` when it has none).
fn action_output(
    store: &dyn RunStore,
    key: RunKey,
    id: ActionId,
    task: &str,
) -> Result<Value, CliError> {
    let mut bytes = None;
    store.reader()?.actions(key, true, &mut |batch| {
        for action in batch {
            if action.id == id {
                bytes = action.output_bytes;
            }
        }
        ControlFlow::Continue(())
    })?;
    match bytes {
        Some(bytes) => Ok(flyte_runtime::registry().output_json(task, &bytes)?),
        None => Ok(Value::Null),
    }
}
