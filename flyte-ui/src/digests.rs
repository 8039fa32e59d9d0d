//! Runs digested for the pages, kept while they do not change.
//!
//! A run page asks for its summary, its timeline and its tree at once and
//! again as the run goes on; a digest reads every action of the run, so it
//! is made once per change of the run (its state, its ended actions, its
//! executions), at most every 400 ms while the run goes on, and one at a
//! time (the requests that wait for it then find it made). The newest runs
//! that ended are digested ahead of any request ([`Digests::warm`]), so
//! that the page of a run that just finished, however large, opens at
//! once.

use crate::sites::{sites_json, Sites};
use flyte_core::backend::RunStore;
use flyte_core::record::{RunRecord, RunStatus};
use flyte_core::store::{RunFilter, RunKey, RunRef, StoreError};
use flyte_core::sync::lock;
use flyte_report::digest::{digest, Digest};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// How many runs' digests are kept at most.
const KEPT: usize = 16;

/// How many actions the kept digests hold at most together (about 100
/// bytes each with their sites): a few runs of a million actions.
const KEPT_ACTIONS: usize = 4_000_000;

/// How often a going run's digest is made again at most.
const FRESH_FOR: Duration = Duration::from_millis(400);

/// How many of the newest ended runs are digested ahead of requests.
const WARM_NEWEST: usize = 3;

/// What must not change for a digest to stay true.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    status: RunStatus,
    ended_actions: u64,
    executions: u32,
    ended_at: Option<SystemTime>,
}

struct Kept {
    stamp: Stamp,
    viewed: Arc<Viewed>,
    made: Instant,
}

/// A run digested, with its actions grouped by site.
pub(crate) struct Viewed {
    pub(crate) digest: Digest,
    pub(crate) sites: Sites,
    summary: OnceLock<Value>,
}

impl Viewed {
    /// The summary a run page shows (`show -o json`'s shape, with the
    /// sites), made once per digest: its percentiles sort every action.
    pub(crate) fn summary(&self) -> &Value {
        self.summary.get_or_init(|| {
            let mut summary = self.digest.summary_json();
            summary["actions_read"] = json!(self.digest.rows.len());
            summary["sites"] = sites_json(&self.digest, &self.sites);
            summary
        })
    }
}

/// The kept digests.
#[derive(Default)]
pub(crate) struct Digests {
    kept: Mutex<HashMap<String, Kept>>,
    making: Mutex<()>,
}

impl Digests {
    /// The digest of run `run` (key `key`), made again only when it changed.
    pub(crate) fn get(
        &self,
        store: &dyn RunStore,
        key: RunKey,
        run: RunRecord,
    ) -> Result<Arc<Viewed>, StoreError> {
        let stamp = Stamp {
            status: run.status,
            ended_actions: store.reader()?.ended_actions(key)?,
            executions: run.executions,
            ended_at: run.ended_at,
        };
        let _making = lock(&self.making);
        if let Some(kept) = lock(&self.kept).get(&run.id) {
            let going = stamp.status == RunStatus::Running;
            if kept.stamp == stamp || (going && kept.made.elapsed() < FRESH_FOR) {
                return Ok(Arc::clone(&kept.viewed));
            }
        }
        let id = run.id.clone();
        let digest = digest(store, key, run)?;
        let sites = Sites::of(&digest);
        let made = Arc::new(Viewed {
            digest,
            sites,
            summary: OnceLock::new(),
        });
        let mut kept = lock(&self.kept);
        kept.remove(&id);
        let rows = made.digest.rows.len();
        // The oldest made go first, until the new one fits.
        while !kept.is_empty()
            && (kept.len() >= KEPT
                || kept
                    .values()
                    .map(|k| k.viewed.digest.rows.len())
                    .sum::<usize>()
                    + rows
                    > KEPT_ACTIONS)
        {
            let oldest = kept
                .iter()
                .min_by_key(|(_, k)| k.made)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(oldest) => kept.remove(&oldest),
                None => break,
            };
        }
        kept.insert(
            id,
            Kept {
                stamp,
                viewed: Arc::clone(&made),
                made: Instant::now(),
            },
        );
        Ok(made)
    }

    /// Digests the newest runs that ended and are not kept yet (called
    /// now and then by the server; a run that goes on is digested only
    /// when a page asks, since it changes).
    pub(crate) fn warm(&self, store: &dyn RunStore) -> Result<(), StoreError> {
        let newest = store
            .reader()?
            .list_runs(&RunFilter::all().page(0, WARM_NEWEST))?;
        for run in newest {
            if run.status == RunStatus::Running || lock(&self.kept).contains_key(&run.id) {
                continue;
            }
            if let Some((key, run)) = store.run_log().find_run(RunRef::Id(&run.id))? {
                let viewed = self.get(store, key, run)?;
                viewed.summary();
            }
        }
        Ok(())
    }
}
