//! Run references: a full id, a unique id prefix (4 characters or more), a
//! run name, `last`, `last-failed`.

use crate::error::CliError;
use flyte_core::backend::RunStore;
use flyte_core::record::{RunRecord, RunStatus};
use flyte_core::store::{RunFilter, RunKey, RunRef};

/// The shortest id prefix accepted.
pub(crate) const MIN_PREFIX: usize = 4;

/// The run `reference` names in `store`.
pub(crate) fn resolve(
    store: &dyn RunStore,
    reference: &str,
) -> Result<(RunKey, RunRecord), CliError> {
    let newest = |filter: RunFilter, what: &str| -> Result<(RunKey, RunRecord), CliError> {
        let run = store
            .reader()?
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
    if let Some(found) = store.run_log().find_run(RunRef::Id(reference))? {
        return Ok(found);
    }
    if let Some(found) = store.run_log().find_run(RunRef::Name(reference))? {
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
        .reader()?
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
        .run_log()
        .find_run(RunRef::Id(id))?
        .ok_or_else(|| CliError::not_found(format!("run {id} vanished from the store while read")))
}

/// Run `id` as the store has it now (a command that watches a run reads it
/// again and again).
///
/// # Errors
///
/// When the store cannot be read, or the run is no longer in it.
pub(crate) fn reread(store: &dyn RunStore, id: &str) -> Result<RunRecord, CliError> {
    let (_, run) = store
        .run_log()
        .find_run(RunRef::Id(id))?
        .ok_or_else(|| CliError::not_found(format!("run {id} vanished from the store")))?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Exit;
    use flyte_core::store::{NewRun, RunEnd};
    use flyte_core::ActionId;

    fn store_with(ids: &[(&str, Option<&str>)]) -> (tempfile::TempDir, flyte_sqlite::Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = flyte_sqlite::Store::open(dir.path()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for (id, name) in ids {
            let key = store
                .run_log()
                .begin_run(&NewRun {
                    id,
                    name: *name,
                    root_task: "env.task",
                    root_action: ActionId(1),
                    inputs: None,
                })
                .unwrap();
            let end = RunEnd {
                status: if id.ends_with('f') {
                    RunStatus::Failed
                } else {
                    RunStatus::Succeeded
                },
                error: None,
            };
            let closed = runtime.block_on(store.run_log().end_run(key, end));
            assert!(closed.error.is_none());
        }
        (dir, store)
    }

    #[test]
    fn ids_prefixes_names_and_last_resolve() {
        let (_dir, store) = store_with(&[
            ("rabcd00000000000000001", None),
            ("rabce0000000000000000f", Some("nightly")),
            ("rffff00000000000000002", None),
        ]);
        let id = |r: &str| resolve(&store, r).map(|(_, run)| run.id);
        assert_eq!(
            id("rabcd00000000000000001").unwrap(),
            "rabcd00000000000000001"
        );
        assert_eq!(id("rabcd").unwrap(), "rabcd00000000000000001");
        assert_eq!(
            id("abce").unwrap(),
            "rabce0000000000000000f",
            "the leading r may be left out"
        );
        assert_eq!(id("nightly").unwrap(), "rabce0000000000000000f");
        assert_eq!(id("last").unwrap(), "rffff00000000000000002");
        assert_eq!(id("last-failed").unwrap(), "rabce0000000000000000f");
    }

    #[test]
    fn an_ambiguous_prefix_lists_the_candidates() {
        let (_dir, store) = store_with(&[
            ("rabcd00000000000000001", None),
            ("rabce00000000000000002", None),
        ]);
        let e = resolve(&store, "rabc").unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        assert!(
            e.message.contains("rabcd00000000000000001")
                && e.message.contains("rabce00000000000000002"),
            "{e}"
        );
        assert!(e.hint.unwrap().contains("more characters"));
    }

    #[test]
    fn unknown_and_short_references_say_what_to_do() {
        let (_dir, store) = store_with(&[("rabcd00000000000000001", None)]);
        let e = resolve(&store, "r99999").unwrap_err();
        assert_eq!(e.exit, Exit::NotFound);
        assert!(e.to_string().contains("flyte runs"), "{e}");
        let e = resolve(&store, "ra").unwrap_err();
        assert!(e.to_string().contains("4 characters"), "{e}");
        let e = resolve(&store, "last-failed").unwrap_err();
        assert_eq!(e.exit, Exit::NotFound);
        assert!(e.message.contains("no failed run"), "{e}");
    }
}
