//! `flyte cache ls|clear`: the task cache, by task, age and staleness.

use crate::args::{CacheCommand, CacheFilterArgs};
use crate::error::{CliError, Exit};
use crate::output::{self, print_list, Table};
use crate::Ctx;
use flyte_core::store::CacheInfo;
use serde_json::json;
use std::time::SystemTime;

pub(crate) fn cache(ctx: &Ctx, command: CacheCommand) -> Result<Exit, CliError> {
    match command {
        CacheCommand::Ls(args) => {
            let entries = selected(ctx, &args.filter)?;
            let items: Vec<_> = entries.iter().map(entry_json).collect();
            print_list(args.format.format, &items, || {
                let mut table =
                    Table::new(vec!["KEY", "TASK", "VERSION", "TYPE", "BYTES", "FILED"]);
                for e in &entries {
                    table.row(vec![
                        hex(&e.key)[..16].to_owned(),
                        e.task.clone(),
                        e.version.chars().take(12).collect(),
                        e.output_type.clone(),
                        e.size.to_string(),
                        output::when(e.created_at),
                    ]);
                }
                table
            })?;
            if entries.is_empty() {
                eprintln!("no cache entries match");
            }
            Ok(Exit::Ok)
        }
        CacheCommand::Clear(args) => {
            let entries = selected(ctx, &args.filter)?;
            let bytes: u64 = entries.iter().map(|e| e.size).sum();
            if args.dry_run {
                for e in &entries {
                    println!("{}  {}", hex(&e.key), crate::output::printable(&e.task));
                }
                eprintln!(
                    "would remove {} cache entries ({bytes} bytes); nothing removed (--dry-run)",
                    entries.len()
                );
                return Ok(Exit::Ok);
            }
            let keys: Vec<[u8; 32]> = entries.iter().map(|e| e.key).collect();
            let removed = ctx.writable_store()?.cache()?.remove(&keys)?;
            eprintln!("removed {removed} cache entries ({bytes} bytes)");
            Ok(Exit::Ok)
        }
    }
}

/// The entries `filter` selects, oldest first.
fn selected(ctx: &Ctx, filter: &CacheFilterArgs) -> Result<Vec<CacheInfo>, CliError> {
    if filter.stale {
        ctx.needs_tasks("`cache --stale`")?;
    }
    let store = ctx.store()?;
    let cutoff = filter.older_than.map(|d| {
        SystemTime::now()
            .checked_sub(d)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    });
    let registry = flyte_runtime::registry();
    Ok(store
        .cache()?
        .entries()?
        .into_iter()
        .filter(|e| filter.task.as_ref().is_none_or(|t| &e.task == t))
        .filter(|e| cutoff.is_none_or(|c| e.created_at < c))
        .filter(|e| {
            !filter.stale
                || registry
                    .task(&e.task)
                    .map_or(true, |t| t.cache_version() != e.version)
        })
        .collect())
}

fn entry_json(e: &CacheInfo) -> serde_json::Value {
    json!({
        "key": hex(&e.key),
        "task": e.task,
        "version": e.version,
        "output_type": e.output_type,
        "bytes": e.size,
        "created_at": output::rfc3339(e.created_at),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
