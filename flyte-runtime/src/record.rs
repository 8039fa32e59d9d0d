//! What a run keeps in the store: its record (when persistence is on), the
//! store its cached tasks use, and, on resume, the outputs it replays.

use crate::call::{decode_stored, Body};
use crate::store::{ActionRecord, RunLock, Store};
use flyte_core::{ActionId, TaskError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// A run's ties to the store.
#[derive(Debug, Default)]
pub(crate) struct Durability {
    /// The store's directory; `None` for the default (`FLYTE_HOME`).
    home: Option<PathBuf>,
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
                    .map_err(|e| tracing::warn!("the task cache is off for this run: {e}"))
                    .ok()
            })
            .as_ref()
    }

    /// Writes everything the run queued, then releases its lock.
    pub(crate) async fn close(&self) -> Result<(), TaskError> {
        if let Some(recording) = &self.recording {
            recording.store.flush().await?;
            recording
                .lock
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
        } else if let Some(Some(store)) = self.cache_store.get() {
            store.flush().await?;
        }
        Ok(())
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
            let mut last = self.last_batch.lock().unwrap_or_else(|p| p.into_inner());
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
