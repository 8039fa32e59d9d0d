//! What a run keeps in the store: its record (when persistence is on), the
//! store its cached tasks use, and, on resume, the outputs it replays.

use crate::call::{decode_stored, Body};
use crate::mutex::lock;
use crate::notice::warn_once;
use crate::store::{ActionRecord, RunEnd, RunEndNote, RunLock, Store, Write};
use flyte_core::{ActionId, TaskError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// How much of a run is in the store, as [`RunOutcome::recorded`] tells it.
///
/// [`RunOutcome::recorded`]: crate::RunOutcome::recorded
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recorded {
    /// The run and every action that ended are in the store.
    Complete,
    /// Nothing was recorded: `Runner::persist(false)`, or the default store
    /// could not be used (`reason` says why and what to do; a warning said
    /// so too). Only a run that did not ask for a store explicitly (no
    /// `Runner::name`, `home` or `resume`) runs on without one.
    Off {
        /// Why the store could not be used, when that was the cause.
        reason: Option<String>,
    },
    /// Recorded in part: some records could not be written (a full disk, a
    /// failing device). A resume runs the actions whose records are missing
    /// again.
    Incomplete {
        /// Actions whose records are not in the store.
        lost_actions: u64,
        /// Whether the run's own end is missing too (the store then shows the
        /// run as running, and as killed once this process has exited).
        end_lost: bool,
        /// Why, with what to do.
        reason: String,
    },
}

/// A run's ties to the store.
#[derive(Debug, Default)]
pub(crate) struct Durability {
    /// The store's directory; `None` for the default (`FLYTE_HOME`).
    home: Option<PathBuf>,
    /// Why the run is not recorded, when recording was wanted.
    off_reason: Option<String>,
    /// Opened on first use by a cached task, when the run is not recorded.
    cache_store: OnceLock<Option<Store>>,
    /// Set when the run is recorded.
    pub(crate) recording: Option<Recording>,
}

/// A recorded run.
#[derive(Debug)]
pub(crate) struct Recording {
    pub(crate) store: Store,
    /// The run's number in the store.
    pub(crate) seq: i64,
    /// On resume: where the actions that succeeded before are, by id.
    replay: Option<HashMap<ActionId, (i64, usize)>>,
    /// The batch of actions read last: replayed items come in about the
    /// order they were written, so most reads hit it.
    last_batch: Mutex<Option<(i64, Vec<ActionRecord>)>>,
    /// Held while the run goes on; released once its end is on disk.
    lock: Mutex<Option<RunLock>>,
}

impl Durability {
    /// Not recorded; cached tasks use the store in `home` (default when `None`).
    pub(crate) fn unrecorded(home: Option<PathBuf>) -> Durability {
        Durability {
            home,
            ..Durability::default()
        }
    }

    /// Not recorded, because the default store could not be used (`reason`).
    pub(crate) fn store_unusable(reason: String) -> Durability {
        Durability {
            off_reason: Some(reason),
            ..Durability::default()
        }
    }

    /// Recorded as run `seq` of `store`, holding its `lock`.
    /// `replay`: on resume, where the succeeded actions' outputs are.
    pub(crate) fn recorded(
        store: Store,
        seq: i64,
        replay: Option<HashMap<ActionId, (i64, usize)>>,
        lock: RunLock,
    ) -> Durability {
        Durability {
            home: Some(store.home().to_owned()),
            off_reason: None,
            cache_store: OnceLock::new(),
            recording: Some(Recording {
                store,
                seq,
                replay,
                last_batch: Mutex::new(None),
                lock: Mutex::new(Some(lock)),
            }),
        }
    }

    /// The store cached tasks read and write; `None` (with a warning, once
    /// per run) when it cannot be opened: the tasks then just run.
    pub(crate) fn cache_store(&self) -> Option<&Store> {
        if let Some(recording) = &self.recording {
            return Some(&recording.store);
        }
        self.cache_store
            .get_or_init(|| {
                let opened = match &self.home {
                    Some(home) => Store::open(home),
                    None => Store::open_default(),
                };
                opened
                    .map_err(|e| warn_once(&format!("the task cache is off: {e}")))
                    .ok()
            })
            .as_ref()
    }

    /// Writes the run's `end` (its status and error) after everything it
    /// queued, then releases its lock; says how much of the run is in the
    /// store.
    pub(crate) async fn close(
        &self,
        run_id: &str,
        end: Option<(&'static str, Option<&TaskError>)>,
    ) -> Recorded {
        let Some(recording) = &self.recording else {
            if let Some(Some(store)) = self.cache_store.get() {
                if let Err(e) = store.flush().await {
                    warn_once(&format!("cached outputs may be lost: {e}"));
                }
            }
            return Recorded::Off {
                reason: self.off_reason.clone(),
            };
        };
        if let Some((status, error)) = end {
            recording.store.write(Write::RunEnd(RunEnd {
                seq: recording.seq,
                status,
                error: error.cloned(),
            }));
        }
        let flushed = recording.store.flush().await;
        let lost = recording.store.lost(recording.seq);
        let recorded = match (flushed, lost) {
            (Ok(()), None) => Recorded::Complete,
            (_, Some(lost)) => Recorded::Incomplete {
                lost_actions: lost.actions,
                end_lost: lost.run_end,
                reason: lost.error.to_string(),
            },
            (Err(e), None) => Recorded::Incomplete {
                lost_actions: 0,
                end_lost: true,
                reason: e.to_string(),
            },
        };
        if let Recorded::Incomplete {
            lost_actions,
            end_lost,
            reason,
        } = &recorded
        {
            warn_once(&format!(
                "run {run_id}: its record is incomplete ({lost_actions} actions{} not \
                 written): {reason}",
                if *end_lost { " and its end" } else { "" }
            ));
            if let (true, Some((status, error))) = (*end_lost, end) {
                // The store shows the run as running. Its end is left in
                // its lock file instead, where the next open of the store
                // finds it and records it (rather than marking the run
                // killed).
                if let Some(run_lock) = lock(&recording.lock).take() {
                    run_lock.release_with_end(&RunEndNote {
                        status: status.to_owned(),
                        lost: *lost_actions,
                        error: error.cloned(),
                    });
                }
            }
        }
        lock(&recording.lock).take();
        recorded
    }
}

impl Recording {
    /// The output action `id` recorded in an earlier execution of this run,
    /// decoded; `None` when it must execute (it did not succeed, or its
    /// output no longer decodes, which is logged).
    pub(crate) fn replay<T: 'static>(
        &self,
        id: ActionId,
        task: &str,
        body: &dyn Body<T>,
    ) -> Option<T> {
        let (row, index) = *self.replay.as_ref()?.get(&id)?;
        let bytes = {
            let mut last = lock(&self.last_batch);
            if last.as_ref().is_none_or(|(r, _)| *r != row) {
                match self.store.batch_at(row) {
                    Ok(batch) => *last = Some((row, batch)),
                    Err(e) => {
                        tracing::warn!(
                            "task {task}: cannot read its recorded output ({e}); running it"
                        );
                        return None;
                    }
                }
            }
            let batch = last.as_ref().map(|(_, batch)| batch);
            batch?.get(index)?.output_bytes.clone()?
        };
        decode_stored(body, &bytes, task, "its recorded output")
    }
}
