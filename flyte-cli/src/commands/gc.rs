//! `flyte gc`: deletes ended runs older than a cutoff, keeping the newest.

use crate::args::GcArgs;
use crate::error::{CliError, Exit};
use crate::output;
use crate::Ctx;
use flyte_core::record::{RunRecord, RunStatus};
use flyte_core::store::{RunFilter, RunKey, RunRef};
use std::time::SystemTime;

pub(crate) fn gc(ctx: &Ctx, args: &GcArgs) -> Result<Exit, CliError> {
    // A dry run only reads: a store it may not write (read-only media, a
    // directory of another user) is listed all the same.
    let store = if args.dry_run {
        ctx.store()?
    } else {
        ctx.writable_store()?
    };
    let cutoff = SystemTime::now()
        .checked_sub(args.older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let old: Vec<RunRecord> = store
        .reader()?
        .list_runs(&RunFilter::all())?
        .into_iter()
        .skip(args.keep)
        .filter(|r| r.status != RunStatus::Running && r.started_at < cutoff)
        .collect();
    for run in &old {
        println!(
            "{}  {}  {}  {}",
            run.id,
            run.root_task,
            run.status.as_str(),
            output::when(run.started_at)
        );
    }
    if args.dry_run {
        eprintln!(
            "would delete {} runs; nothing deleted (--dry-run)",
            old.len()
        );
        return Ok(Exit::Ok);
    }
    let mut keys: Vec<RunKey> = Vec::with_capacity(old.len());
    for run in &old {
        if let Some((key, _)) = store.run_log().find_run(RunRef::Id(&run.id))? {
            keys.push(key);
        }
    }
    let deleted = store.operations()?.delete_runs(&keys)?;
    if args.vacuum {
        store.operations()?.compact()?;
    }
    eprintln!(
        "deleted {deleted} runs started before {} UTC{}",
        output::when(cutoff),
        if args.vacuum {
            "; the file was compacted"
        } else {
            " (their space is reused by later runs; --vacuum gives it back to the system)"
        }
    );
    Ok(Exit::Ok)
}
