//! A run's actions by site, as the live progress shows them: the items of
//! every fan-out of one task called from one task (in one group) are one
//! site, however many times their caller ran (a map inside a map is one
//! line, not one per outer item); every other call of a task is a site of
//! its own kind. The run page's table and its timeline share the grouping.

use flyte_core::record::from_micros;
use flyte_core::IdMap;
use flyte_report::digest::{figures, Digest, Figures, Row};
use flyte_report::json::rfc3339;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// What makes a site.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// Items of a fan-out (and its kind: `map`, `gather`, or not known
    /// while it goes on), or plain calls.
    kind: &'static str,
    /// The task of the action that called them (an index into the
    /// digest's task names, then the root's); `None` for the root.
    caller: Option<u32>,
    task: u32,
    group: Option<String>,
}

/// One site.
#[derive(Debug)]
pub(crate) struct Site {
    /// `map demo.partition → demo.nap [group]`, or `demo.nested`.
    pub(crate) label: String,
    pub(crate) kind: &'static str,
    pub(crate) task: String,
    pub(crate) caller: Option<String>,
    pub(crate) group: Option<String>,
    /// Whether its actions are fan-out items.
    pub(crate) items: bool,
    /// The fan-outs it gathers.
    pub(crate) fan_outs: usize,
    /// Indexes into the digest's rows.
    pub(crate) rows: Vec<usize>,
}

/// The sites of a digest, and each row's.
#[derive(Debug)]
pub(crate) struct Sites {
    pub(crate) sites: Vec<Site>,
    /// The site of each row (an index into `sites`).
    pub(crate) of_row: Vec<usize>,
}

impl Sites {
    pub(crate) fn of(digest: &Digest) -> Sites {
        // The root's task is the run's, known before its action ends: a
        // going run's first sites are named after it too.
        let mut names = digest.task_names.clone();
        let root = match names.iter().position(|n| *n == digest.run.root_task) {
            Some(i) => i,
            None => {
                names.push(digest.run.root_task.clone());
                names.len() - 1
            }
        };
        let mut task_of: IdMap<u32> = digest.rows.iter().map(|r| (r.id, r.task)).collect();
        task_of.insert(digest.run.root_action, root as u32);
        let mut index: HashMap<Key, usize> = HashMap::new();
        let mut fan_outs: Vec<HashSet<u32>> = Vec::new();
        let mut sites: Vec<Site> = Vec::new();
        let mut of_row = Vec::with_capacity(digest.rows.len());
        let mut last: Option<(Key, usize)> = None;
        for (i, row) in digest.rows.iter().enumerate() {
            let (kind, group) = match row.item {
                Some((f, _)) => {
                    let fan_out = &digest.fan_outs[f as usize];
                    let kind = match fan_out.going {
                        // Its kind is known when it ends.
                        true => "items of",
                        false => fan_out.record.kind.as_str(),
                    };
                    (kind, fan_out.record.group.clone())
                }
                None => ("call", None),
            };
            let key = Key {
                kind,
                caller: row.parent.and_then(|p| task_of.get(&p).copied()),
                task: row.task,
                group,
            };
            // Rows of one site come in runs (a map's items): the last key
            // is compared before any hashing.
            let at = match &last {
                Some((last_key, at)) if *last_key == key => *at,
                _ => {
                    let at = *index.entry(key.clone()).or_insert_with(|| {
                        sites.push(site(&names, &key));
                        fan_outs.push(HashSet::new());
                        sites.len() - 1
                    });
                    last = Some((key, at));
                    at
                }
            };
            if let Some((f, _)) = row.item {
                fan_outs[at].insert(f);
            }
            sites[at].rows.push(i);
            of_row.push(at);
        }
        for (site, set) in sites.iter_mut().zip(fan_outs) {
            site.fan_outs = set.len();
        }
        Sites { sites, of_row }
    }
}

fn site(names: &[String], key: &Key) -> Site {
    let name = |t: u32| names[t as usize].clone();
    let task = name(key.task);
    let caller = key.caller.map(name);
    let items = key.kind != "call";
    let mut label = match (items, &caller) {
        (true, Some(caller)) => format!("{} {caller} → {task}", key.kind),
        (true, None) => format!("{} {task}", key.kind),
        (false, _) => task.clone(),
    };
    if let Some(group) = &key.group {
        label.push_str(&format!(" [{group}]"));
    }
    Site {
        label,
        kind: key.kind,
        task,
        caller,
        group: key.group.clone(),
        items,
        fan_outs: 0,
        rows: Vec::new(),
    }
}

/// The fan-out sites as JSON, for the run page's table: their figures
/// over all their items, and how many ran at once on average over the
/// span from the first queued to the last ended.
pub(crate) fn sites_json(digest: &Digest, sites: &Sites) -> Value {
    let list: Vec<Value> = sites
        .sites
        .iter()
        .filter(|s| s.items)
        .map(|s| {
            let rows: Vec<&Row> = s.rows.iter().map(|&i| &digest.rows[i]).collect();
            let f: Figures = figures(&rows);
            let first = rows.iter().map(|r| r.queued_us).min().unwrap_or(0);
            let last = rows.iter().map(|r| r.end_us).max().unwrap_or(0);
            let span = last - first;
            let mut v = f.to_json();
            v["label"] = json!(s.label);
            v["kind"] = json!(s.kind);
            v["task"] = json!(s.task);
            v["caller"] = json!(s.caller);
            v["group"] = json!(s.group);
            v["fan_outs"] = json!(s.fan_outs);
            v["first_queued_at"] = json!(rfc3339(from_micros(first)));
            v["last_ended_at"] = json!(rfc3339(from_micros(last)));
            v["achieved_concurrency"] = match span >= 5_000 {
                true => json!(f.busy_us as f64 / span as f64),
                false => Value::Null,
            };
            v
        })
        .collect();
    Value::Array(list)
}
