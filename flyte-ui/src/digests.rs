//! Runs digested for the pages, kept while they do not change.
//!
//! A run page asks for its summary, its timeline and its tree at once and
//! again as the run goes on; a digest reads every action of the run, so it
//! is made once per change of the run (its state, its ended actions, its
//! executions), at most every 400 ms while the run goes on, and one at a
//! time (the requests that wait for it then find it made).

use crate::sites::Sites;
use flyte_core::backend::RunStore;
use flyte_core::record::{RunRecord, RunStatus};
use flyte_core::store::{RunKey, StoreError};
use flyte_core::sync::lock;
use flyte_report::digest::{digest, Digest};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How many runs' digests are kept.
const KEPT: usize = 16;

/// How often a going run's digest is made again at most.
const FRESH_FOR: Duration = Duration::from_millis(400);

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
        let made = Arc::new(Viewed { digest, sites });
        let mut kept = lock(&self.kept);
        if kept.len() >= KEPT && !kept.contains_key(&id) {
            if let Some(oldest) = kept
                .iter()
                .min_by_key(|(_, k)| k.made)
                .map(|(id, _)| id.clone())
            {
                kept.remove(&oldest);
            }
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
}
