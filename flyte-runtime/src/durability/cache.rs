//! The task cache: keys, and reading a cached output back.

use crate::task::body::{decode_stored, Body, OutputCheck};
use flyte_core::backend::RunStore;
use flyte_core::store::CacheEntry;
use flyte_core::sync::{lock, warn_once};
use flyte_core::{TaskDef, TaskError};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use tokio::sync::watch;

/// What a cached output is filed under: a BLAKE3 hash of the task's name,
/// its cache version, its output type and the canonical encoding of its
/// inputs (less `cache_ignore`). Each text part is length-prefixed, so no
/// two different keys share their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheKey(pub(crate) [u8; 32]);

impl CacheKey {
    /// # Errors
    ///
    /// When an input has no stable encoding (see `cache_key_bytes`).
    pub(crate) fn of<T: 'static>(def: &TaskDef, body: &dyn Body<T>) -> Result<CacheKey, TaskError> {
        let inputs = body.cache_inputs()?;
        let mut hasher = blake3::Hasher::new();
        for part in [
            "flyte-cache-1",
            def.name(),
            def.cache_version(),
            body.output_type(),
        ] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.update(&inputs);
        Ok(CacheKey(*hasher.finalize().as_bytes()))
    }
}

/// The cached output under `key`, decoded, with its bytes; `None` on a
/// miss. A value that no longer decodes (its type changed in a way the
/// key does not see, or the file was damaged) is a miss, with a warning.
pub(crate) fn recall<T: 'static>(
    store: &dyn RunStore,
    key: CacheKey,
    task: &str,
    body: &dyn Body<T>,
) -> Option<(T, Vec<u8>)> {
    let Some(cache) = store.as_cache() else {
        warn_once(&format!(
            "the flyte store at {} has no task cache: cached tasks run every time",
            store.location()
        ));
        return None;
    };
    let bytes = match cache.get(&key.0) {
        Ok(bytes) => bytes?,
        Err(e) => {
            tracing::warn!("task {task}: the cache could not be read ({e}); running the task");
            return None;
        }
    };
    let value = decode_stored(body, &bytes, task, "a cached output")?;
    Some((value, bytes))
}

/// Files `value` under `key`, replacing what was there. The first output a
/// task keeps in a process is read back first: an output type the codec
/// cannot read (it needs a self-describing format) is never kept, with one
/// warning, rather than kept and missed on every lookup.
pub(crate) fn keep(
    store: &dyn RunStore,
    key: CacheKey,
    def: &'static TaskDef,
    (output_type, check): (&'static str, OutputCheck),
    value: &[u8],
) {
    let Some(cache) = store.as_cache() else {
        return; // told at the lookup
    };
    if !reads_back(def, value, check) {
        return;
    }
    cache.put(CacheEntry {
        key: key.0,
        task: def.name(),
        version: def.cache_version(),
        output_type,
        value: Arc::from(value),
    });
}

/// Whether `def`'s outputs read back, checked on its first output in this
/// process.
fn reads_back(def: &'static TaskDef, value: &[u8], check: OutputCheck) -> bool {
    static CHECKED: Mutex<BTreeMap<&'static str, bool>> = Mutex::new(BTreeMap::new());
    let known = lock(&CHECKED).get(def.name()).copied();
    if let Some(known) = known {
        return known;
    }
    let verdict = match check(value) {
        Ok(()) => true,
        Err(e) => {
            warn_once(&format!(
                "task {}: its outputs are not cached: {}",
                def.name(),
                e.message()
            ));
            false
        }
    };
    lock(&CHECKED).insert(def.name(), verdict);
    verdict
}

/// This process computing the output filed under a key. Other calls with
/// the same key wait for it and then read the cache (a "single flight"),
/// instead of computing the same output at the same time. Dropping it (the
/// output is kept, the task failed, or the call was cancelled) wakes them.
///
/// Flights are per process, not per store: two runs on different stores
/// computing the same key at once take turns (the second then misses its
/// own store and computes), which is rare and still correct.
pub(crate) struct Flight {
    key: CacheKey,
    /// Dropped after the flight leaves the store's table: waiters see the
    /// channel close.
    _done: watch::Sender<()>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        flights().remove(&self.key.0);
    }
}

/// Who computes a key's output.
pub(crate) enum Claim {
    /// This call: no one else in this process computes it.
    Mine(Flight),
    /// Another call: wait until this closes, then look again.
    Theirs(watch::Receiver<()>),
}

/// The cache keys being computed in this process.
fn flights() -> MutexGuard<'static, HashMap<[u8; 32], watch::Receiver<()>>> {
    static FLIGHTS: LazyLock<Mutex<HashMap<[u8; 32], watch::Receiver<()>>>> =
        LazyLock::new(Mutex::default);
    lock(&FLIGHTS)
}

/// Claims the computation of `key`'s output in this process.
pub(crate) fn claim(key: CacheKey) -> Claim {
    let mut flights = flights();
    if let Some(done) = flights.get(&key.0) {
        return Claim::Theirs(done.clone());
    }
    let (send, receive) = watch::channel(());
    flights.insert(key.0, receive);
    drop(flights);
    Claim::Mine(Flight { key, _done: send })
}
