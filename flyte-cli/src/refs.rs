//! Run references: a full id, a unique id prefix (4 characters or more), a
//! run name, `last`, `last-failed`.

use crate::error::CliError;
use flyte_core::record::{RunRecord, RunStatus};
use flyte_core::store::{RunFilter, RunKey, RunRef, RunStore};

/// The shortest id prefix accepted.
pub(crate) const MIN_PREFIX: usize = 4;

/// The run `reference` names in `store`.
pub(crate) fn resolve(
    store: &dyn RunStore,
    reference: &str,
) -> Result<(RunKey, RunRecord), CliError> {
    let newest = |filter: RunFilter, what: &str| -> Result<(RunKey, RunRecord), CliError> {
        let run = store
            .list_runs(&filter.page(0, 1))?
            .into_iter()
            .next()
            .ok_or_else(|| {
                CliError::not_found(format!(
                    "there is no {what} in the store at {}",
                    store.location()
                ))
                .hint("list the runs with `flyte runs`")
            })?;
        by_id(store, &run.id)
    };
    match reference {
        "last" => return newest(RunFilter::all(), "run"),
        "last-failed" => return newest(RunFilter::all().status(RunStatus::Failed), "failed run"),
        _ => {}
    }
    if let Some(found) = store.find_run(RunRef::Id(reference))? {
        return Ok(found);
    }
    if let Some(found) = store.find_run(RunRef::Name(reference))? {
        return Ok(found);
    }
    let not_found = || {
        CliError::not_found(format!(
            "no run {reference:?} in the store at {}: it is no run id, id prefix or run name",
            store.location()
        ))
        .hint("list the runs with `flyte runs` (or `flyte runs --name NAME`)")
    };
    if reference.len() < MIN_PREFIX {
        return Err(not_found().hint(format!(
            "an id prefix needs {MIN_PREFIX} characters or more; list the runs with `flyte runs`"
        )));
    }
    let candidates: Vec<RunRecord> = store
        .list_runs(&RunFilter::all())?
        .into_iter()
        .filter(|r| {
            r.id.starts_with(reference)
                || r.id
                    .strip_prefix('r')
                    .is_some_and(|id| id.starts_with(reference))
        })
        .collect();
    match candidates.as_slice() {
        [] => Err(not_found()),
        [one] => by_id(store, &one.id),
        many => {
            let list: Vec<String> = many
                .iter()
                .take(10)
                .map(|r| format!("{} ({}, {})", r.id, r.root_task, r.status.as_str()))
                .collect();
            Err(CliError::usage(format!(
                "{reference:?} is the start of {} run ids: {}{}",
                many.len(),
                list.join(", "),
                if many.len() > 10 { ", ..." } else { "" }
            ))
            .hint("give more characters of the id"))
        }
    }
}

fn by_id(store: &dyn RunStore, id: &str) -> Result<(RunKey, RunRecord), CliError> {
    store
        .find_run(RunRef::Id(id))?
        .ok_or_else(|| CliError::not_found(format!("run {id} vanished from the store while read")))
}
