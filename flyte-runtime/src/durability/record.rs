//! A run's ties to its store ([`Durability`]): its record (when
//! persistence is on, through its [`Recorder`] on the run's sink), the
//! store its cached tasks use, on resume the outputs it replays, and on a
//! fleet its queue ([`Fleet`]). Where the store is and how it opens: `store_at.rs`; how
//! much of a run got there: `recorded.rs`.

use crate::durability::recorded::Recorded;
use crate::durability::recorder::Recorder;
use crate::durability::store_at::StoreAt;
use crate::task::body::{decode_stored, Body};
use crate::watch::sink::Listener;
use flyte_core::backend::RunStore;
use flyte_core::queue::{LeaseClock, WorkQueue};
use flyte_core::store::{OutputAt, RunClosed, RunKey};
use flyte_core::sync::warn_once;
use flyte_core::ActionId;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long a fleet action may wait for a worker that can run it, unless
/// `Runner::no_worker_timeout` says otherwise.
pub(crate) const NO_WORKER_AFTER: Duration = Duration::from_secs(60);

/// A run's ties to its store.
#[derive(Debug, Default)]
pub(crate) struct Durability {
    /// Where the store is.
    at: StoreAt,
    /// Why the run is not recorded, when recording was wanted.
    off_reason: Option<String>,
    /// Opened on first use by a cached task, when the run is not recorded.
    cache_store: OnceLock<Option<Arc<dyn RunStore>>>,
    /// Set when the run is recorded.
    recording: Option<Recording>,
}

/// A recorded run.
#[derive(Debug)]
struct Recording {
    store: Arc<dyn RunStore>,
    run: RunKey,
    /// On resume: where the outputs of the actions that succeeded before are.
    replay: Option<HashMap<ActionId, OutputAt>>,
    /// When its store is a fleet's: the calls its tasks make go there.
    fleet: Option<Fleet>,
    /// Whether this process holds the run (it began or resumed it), rather
    /// than runs actions of it for another process (a fleet worker).
    owned: bool,
}

/// How a run is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Not recorded.
    Unrecorded,
    /// Recorded in a store.
    Recorded,
    /// Recorded in a fleet's store, its calls queued for workers.
    Fleet,
}

/// A run whose calls are queued to a fleet of workers.
#[derive(Debug, Clone)]
pub(crate) struct Fleet {
    pub(crate) queue: Arc<dyn WorkQueue>,
    pub(crate) run: RunKey,
    /// Which execution of the run this process takes part in.
    pub(crate) execution: u32,
    /// How long a call may wait for a worker that can run it.
    pub(crate) no_worker_after: Duration,
    /// On a worker: its lease, which must hold when a claimed action's
    /// attempt begins.
    pub(crate) lease: Option<Arc<LeaseClock>>,
}

impl Durability {
    /// Not recorded; cached tasks use the store `at`.
    pub(crate) fn unrecorded(at: StoreAt) -> Durability {
        Durability {
            at,
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

    /// Recorded as run `run` of `store`. `replay`: on resume, where the
    /// succeeded actions' outputs are.
    pub(crate) fn recorded(
        store: Arc<dyn RunStore>,
        run: RunKey,
        replay: Option<HashMap<ActionId, OutputAt>>,
    ) -> Durability {
        Durability::recording(store, run, replay, true)
    }

    /// Recorded as run `run` of a fleet's `store`, by a worker that runs
    /// actions of it for the run's driver (see [`Durability::in_fleet`]).
    pub(crate) fn attached(store: Arc<dyn RunStore>, run: RunKey) -> Durability {
        Durability::recording(store, run, None, false)
    }

    fn recording(
        store: Arc<dyn RunStore>,
        run: RunKey,
        replay: Option<HashMap<ActionId, OutputAt>>,
        owned: bool,
    ) -> Durability {
        let fleet = store.queue().map(|queue| Fleet {
            queue,
            run,
            execution: 1,
            no_worker_after: NO_WORKER_AFTER,
            lease: None,
        });
        Durability {
            at: StoreAt::Given(Arc::clone(&store)),
            off_reason: None,
            cache_store: OnceLock::new(),
            recording: Some(Recording {
                store,
                run,
                replay,
                fleet,
                owned,
            }),
        }
    }

    /// For a fleet run: which execution this is, how long a call may
    /// wait for a worker, and (on a worker) the lease it runs under.
    pub(crate) fn in_fleet(
        mut self,
        execution: u32,
        no_worker_after: Duration,
        lease: Option<Arc<LeaseClock>>,
    ) -> Durability {
        if let Some(fleet) = self.recording.as_mut().and_then(|r| r.fleet.as_mut()) {
            fleet.execution = execution;
            fleet.no_worker_after = no_worker_after;
            fleet.lease = lease;
        }
        self
    }

    /// Where the run's calls go, when it runs on a fleet.
    pub(crate) fn fleet(&self) -> Option<&Fleet> {
        self.recording.as_ref()?.fleet.as_ref()
    }

    /// The store and key of a recorded run.
    pub(crate) fn recorded_as(&self) -> Option<(Arc<dyn RunStore>, RunKey)> {
        let recording = self.recording.as_ref()?;
        Some((Arc::clone(&recording.store), recording.run))
    }

    /// The listener that writes the run to its store, when it is recorded.
    pub(crate) fn recorder(&self) -> Option<Arc<dyn Listener>> {
        let recording = self.recording.as_ref()?;
        Some(Arc::new(Recorder {
            store: Arc::clone(&recording.store),
            run: recording.run,
        }))
    }

    /// How the run is kept: in one call, for an action as it starts.
    pub(crate) fn mode(&self) -> Mode {
        match &self.recording {
            None => Mode::Unrecorded,
            Some(recording) if recording.fleet.is_some() => Mode::Fleet,
            Some(_) => Mode::Recorded,
        }
    }

    /// The store cached tasks read and write; `None` (with a warning, once)
    /// when it cannot be opened: the tasks then just run.
    pub(crate) fn cache_store(&self) -> Option<&Arc<dyn RunStore>> {
        if let Some(recording) = &self.recording {
            return Some(&recording.store);
        }
        self.cache_store
            .get_or_init(|| {
                self.at
                    .open()
                    .map_err(|e| warn_once(&format!("the task cache is off: {e}")))
                    .ok()
            })
            .as_ref()
    }

    /// Says how much of the run is in the store, from what its recorder
    /// answered the run's end (`closed`: the store wrote the end after
    /// everything the run queued, and released the run).
    pub(crate) async fn close(&self, run_id: &str, closed: Option<RunClosed>) -> Recorded {
        let Some(closed) = closed.filter(|_| self.recording.is_some()) else {
            self.flush_cache().await;
            return Recorded::Off {
                reason: self.off_reason.clone(),
            };
        };
        if closed.lost_actions == 0 && !closed.end_lost && closed.error.is_none() {
            return Recorded::Complete;
        }
        let reason = closed
            .error
            .map_or_else(|| "the store did not say why".to_owned(), |e| e.to_string());
        warn_once(&format!(
            "run {run_id}: its record is incomplete ({} actions{} not written): {reason}",
            closed.lost_actions,
            if closed.end_lost { " and its end" } else { "" }
        ));
        Recorded::Incomplete {
            lost_actions: closed.lost_actions,
            end_lost: closed.end_lost,
            reason,
        }
    }

    /// Waits until the outputs cached by an unrecorded run are written.
    pub(crate) async fn flush_cache(&self) {
        if let Some(Some(store)) = self.cache_store.get() {
            if let Err(e) = store.run_log().flush().await {
                warn_once(&format!("cached outputs may be lost: {e}"));
            }
        }
    }

    /// The output action `id` recorded in an earlier execution of this run,
    /// decoded; `None` when it must execute (it did not succeed, or its
    /// output no longer reads or decodes, which is logged).
    pub(crate) fn replay<T: 'static>(
        &self,
        id: ActionId,
        task: &str,
        body: &dyn Body<T>,
    ) -> Option<T> {
        let recording = self.recording.as_ref()?;
        let at = *recording.replay.as_ref()?.get(&id)?;
        let bytes = match recording.store.run_log().recorded_output(at) {
            Ok(bytes) => bytes?,
            Err(e) => {
                tracing::warn!("task {task}: cannot read its recorded output ({e}); running it");
                return None;
            }
        };
        decode_stored(body, &bytes, task, "its recorded output")
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        // A run that ended was released by its store; this only releases
        // one that never reached its end (its root failed to start). A
        // worker's view of a fleet run is not the run's to release.
        if self.owned {
            self.store.run_log().release_run(self.run);
        }
    }
}
