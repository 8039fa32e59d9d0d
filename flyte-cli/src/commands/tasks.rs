//! `flyte tasks`: the tasks this binary links.

use crate::args::Format;
use crate::error::{CliError, Exit};
use crate::output::{print_list, Table};
use crate::Ctx;
use serde_json::json;

pub(crate) fn tasks(ctx: &Ctx, format: Format) -> Result<Exit, CliError> {
    ctx.needs_tasks("`tasks`")?;
    let registry = flyte_runtime::registry();
    let infos: Vec<_> = registry
        .names()
        .filter_map(|n| registry.task(n).ok())
        .collect();
    let items: Vec<_> = infos
        .iter()
        .map(|t| {
            json!({
                "name": t.name(),
                "env": t.env().name(),
                "params": t.params(),
                "version": t.version(),
                "async": t.is_async(),
                "location": t.location(),
            })
        })
        .collect();
    print_list(format, &items, || {
        let mut table = Table::new(vec!["TASK", "PARAMETERS", "KIND", "VERSION", "DEFINED AT"]);
        for t in &infos {
            table.row(vec![
                t.name().to_owned(),
                t.params().join(", "),
                if t.is_async() { "async" } else { "sync" }.to_owned(),
                t.version().chars().take(12).collect(),
                t.location(),
            ]);
        }
        table
    })?;
    Ok(Exit::Ok)
}
