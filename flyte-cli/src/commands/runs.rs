//! `flyte runs`: the runs in the store, newest first.

use crate::args::RunsArgs;
use crate::error::{CliError, Exit};
use crate::output::{self, print_list, Table};
use crate::Ctx;
use flyte_core::record::RunStatus;
use flyte_core::store::RunFilter;
use std::time::SystemTime;

pub(crate) fn runs(ctx: &Ctx, args: &RunsArgs) -> Result<Exit, CliError> {
    let store = ctx.store()?;
    let mut filter = RunFilter::all().page(0, args.limit);
    if let Some(word) = &args.status {
        let status = RunStatus::from_word(word).ok_or_else(|| {
            CliError::usage(format!("unknown status {word:?}"))
                .hint("use one of: running, succeeded, failed, cancelled, killed")
        })?;
        filter = filter.status(status);
    }
    if let Some(task) = &args.task {
        filter = filter.task(task.clone());
    }
    if let Some(name) = &args.name {
        filter = filter.name(name.clone());
    }
    if let Some(since) = &args.since {
        filter = filter.since(parse_since(since)?);
    }
    let runs = store.reader()?.list_runs(&filter)?;
    if runs.is_empty() {
        eprintln!("no runs match in the store at {}", store.location());
    }
    let color = output::color();
    let items: Vec<_> = runs.iter().map(output::run_json).collect();
    print_list(args.format.format, &items, || {
        let mut table = Table::new(vec!["RUN", "NAME", "TASK", "STATUS", "STARTED", "TOOK"]);
        for run in &runs {
            table.row(vec![
                run.id.clone(),
                run.name
                    .as_deref()
                    .map_or_else(|| "-".into(), |n| output::printable(n).into_owned()),
                output::printable(&run.root_task).into_owned(),
                output::status(output::run_status(run.status), color),
                output::when(run.started_at),
                output::run_duration(run).map_or_else(|| "-".into(), output::duration),
            ]);
        }
        table
    })?;
    Ok(Exit::Ok)
}

/// `2h` (that long ago) or an RFC 3339 time.
fn parse_since(text: &str) -> Result<SystemTime, CliError> {
    flyte_report::json::since(text).ok_or_else(|| {
        CliError::usage(format!("--since {text:?} is neither a duration nor a time"))
            .hint("write a duration back (`90m`, `2h`, `3d`) or a time (`2026-12-01T09:00:00Z`)")
    })
}
