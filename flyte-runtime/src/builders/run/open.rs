//! Opening the run a call becomes in its store: a new run, a named one
//! resumed, or one reopened by id for another execution; unrecorded when
//! persistence is off or the default store cannot be used.

use super::Runner;
use crate::durability::record::Durability;
use crate::registry::registry;
use crate::state::context::{keyed_run_id, new_run_id};
use crate::task::call::TaskCall;
use flyte_core::backend::RunStore;
use flyte_core::record::RunRecord;
use flyte_core::store::{NewRun, RunKey, RunRef, StoreError};
use flyte_core::sync::warn_once;
use flyte_core::{ActionId, ErrorKind, TaskError};
use std::sync::Arc;
use std::time::Duration;

impl Runner {
    /// The run `call` becomes: a new one, or the recorded one it resumes.
    pub(super) fn open_run<T: 'static>(
        &self,
        call: &TaskCall<T>,
        root_action: ActionId,
    ) -> Result<Opened, TaskError> {
        if !self.persist {
            let durability = Durability::unrecorded(self.store.clone());
            return Ok(Opened {
                id: new_run_id(),
                name: self.name.clone(),
                durability,
            });
        }
        match self.open_recorded(call, root_action) {
            Ok(run) => Ok(run),
            // The work matters more than its record: a run that did not ask
            // for a store runs without one when the default store is unusable.
            Err(e) if self.name.is_none() && !self.store.is_explicit() => {
                let reason = format!(
                    "{} (this run and others like it run unrecorded: fix the store, or \
                     turn recording off to silence this: FLYTE_PERSIST=off, or \
                     Runner::persist(false) in code)",
                    e.message()
                );
                warn_once(&format!("runs are not recorded: {reason}"));
                Ok(Opened {
                    id: new_run_id(),
                    name: None,
                    durability: Durability::store_unusable(reason),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// [`Runner::open_run`] with recording on.
    fn open_recorded<T: 'static>(
        &self,
        call: &TaskCall<T>,
        root_action: ActionId,
    ) -> Result<Opened, TaskError> {
        let store = self.store.open()?;
        let root_task = call.def.name();
        if let Some(name) = &self.name {
            if let Some((key, earlier)) = store.run_log().find_run(RunRef::Name(name))? {
                if earlier.root_action != root_action {
                    return Err(TaskError::new(
                        ErrorKind::Config,
                        format!(
                            "run name {name:?} belongs to run {} of task {} with other inputs: \
                             a name resumes the same call; pick another name for this one",
                            earlier.id, earlier.root_task
                        ),
                    ));
                }
                return reopen(store, key, earlier, self.no_worker_after);
            }
        }
        let id = match &self.idempotency_key {
            Some(key) => {
                let id = keyed_run_id(key);
                if let Some(found) = store.run_log().find_run(RunRef::Id(&id))? {
                    return self.reopen_keyed(store, found, root_action);
                }
                id
            }
            None => new_run_id(),
        };
        // Inputs that do not encode only make the run impossible to resume by
        // id; inputs that encode but never decode are refused here, rather
        // than found out on resume.
        let inputs = call.body.encode_inputs().ok();
        if let Some(bytes) = &inputs {
            call.body.inputs_read_back(bytes).map_err(|e| {
                TaskError::new(
                    ErrorKind::Input,
                    format!(
                        "task {root_task}: its inputs cannot be recorded, so the run could not \
                         be resumed: {} (or turn recording off: FLYTE_PERSIST=off, or \
                         Runner::persist(false) in code)",
                        e.message()
                    ),
                )
            })?;
        }
        let begun = store.run_log().begin_run(&NewRun {
            id: &id,
            name: self.name.as_deref(),
            root_task,
            root_action,
            inputs: inputs.as_deref(),
        });
        // Another process began the run of this key between the look and
        // the start: the store's unique id made it the only one.
        if begun.is_err() && self.idempotency_key.is_some() {
            if let Some(found) = store.run_log().find_run(RunRef::Id(&id))? {
                return self.reopen_keyed(store, found, root_action);
            }
        }
        let key = begun
            .map_err(|e| match &self.name {
                Some(name) => TaskError::new(
                    ErrorKind::Config,
                    format!("cannot start a run named {name:?} (another process may have just started one): {e}"),
                ),
                None => e.into(),
            })?;
        let durability =
            Durability::recorded(store, key, None).in_fleet(1, self.no_worker_after, None);
        Ok(Opened {
            id,
            name: self.name.clone(),
            durability,
        })
    }

    /// The run an idempotency key already started, executed again (its
    /// successes replay), when it is the same call.
    fn reopen_keyed(
        &self,
        store: Arc<dyn RunStore>,
        (key, earlier): (RunKey, RunRecord),
        root_action: ActionId,
    ) -> Result<Opened, TaskError> {
        if earlier.root_action != root_action {
            return Err(TaskError::new(
                ErrorKind::Config,
                format!(
                    "idempotency key {:?} belongs to run {} of task {} with other inputs: \
                     a key starts one call once; pick another key for this one",
                    self.idempotency_key.as_deref().unwrap_or_default(),
                    earlier.id,
                    earlier.root_task
                ),
            ));
        }
        reopen(store, key, earlier, self.no_worker_after)
    }

    /// The root call of recorded run `run_id`, rebuilt from the registry.
    #[allow(clippy::type_complexity)]
    pub(super) fn stored_call(
        &self,
        run_id: &str,
    ) -> Result<(TaskCall<Vec<u8>>, Arc<dyn RunStore>, RunKey, RunRecord), TaskError> {
        let store = self.store.open()?;
        let not_found = || {
            TaskError::new(
                ErrorKind::Store,
                format!(
                    "no run {run_id:?} in the store at {} (list the runs with \
                     flyte::store::Store::runs)",
                    store.location()
                ),
            )
        };
        let (key, run) = store
            .run_log()
            .find_run(RunRef::Id(run_id))?
            .ok_or_else(not_found)?;
        let inputs = store.run_log().run_inputs(key)?.ok_or_else(|| {
            TaskError::new(
                ErrorKind::Store,
                format!("run {run_id} was stored without its inputs (they did not encode): it cannot be resumed"),
            )
        })?;
        let call = registry().call_bytes(&run.root_task, &inputs)?;
        if call.root_id() != run.root_action {
            return Err(TaskError::new(
                ErrorKind::Store,
                format!("run {run_id}: its stored inputs no longer match its root action"),
            ));
        }
        Ok((call, store, key, run))
    }
}

/// A run opened in its store (or left unrecorded), before anything
/// watches it.
pub(super) struct Opened {
    pub(super) id: String,
    pub(super) name: Option<String>,
    pub(super) durability: Durability,
}

/// Reopens recorded run `key` (`earlier`, as it was found) for another
/// execution.
pub(super) fn reopen(
    store: Arc<dyn RunStore>,
    key: RunKey,
    earlier: RunRecord,
    no_worker_after: Duration,
) -> Result<Opened, TaskError> {
    let replay = store
        .run_log()
        .resume_run(key, &earlier.id)
        .map_err(|e| match e {
            StoreError::RunBusy { .. } => TaskError::new(ErrorKind::Config, e.to_string()),
            e => e.into(),
        })?;
    // A fleet run's calls say which execution submits them (resuming adds
    // one): what failed in an earlier one runs again.
    let execution = earlier.executions + 1;
    let durability =
        Durability::recorded(store, key, Some(replay)).in_fleet(execution, no_worker_after, None);
    Ok(Opened {
        id: earlier.id,
        name: earlier.name,
        durability,
    })
}
