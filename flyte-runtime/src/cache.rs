//! The task cache: keys, and reading a cached output back.

use crate::call::{decode_stored, Body, OutputCheck};
use crate::mutex::lock;
use crate::notice::warn_once;
use crate::store::{CacheRow, Store, Write};
use flyte_core::{TaskDef, TaskError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
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
    store: &Store,
    key: CacheKey,
    task: &str,
    body: &dyn Body<T>,
) -> Option<(T, Vec<u8>)> {
    let bytes = match store.cached(&key.0) {
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
    store: &Store,
    key: CacheKey,
    def: &'static TaskDef,
    (output_type, check): (&'static str, OutputCheck),
    value: &[u8],
) {
    if !reads_back(def, value, check) {
        return;
    }
    store.write(Write::Cache(Box::new(CacheRow {
        key: key.0,
        task: def.name(),
        version: def.cache_version(),
        output_type,
        value: Arc::from(value),
    })));
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
pub(crate) struct Flight {
    store: Store,
    key: CacheKey,
    /// Dropped after the flight leaves the store's table: waiters see the
    /// channel close.
    _done: watch::Sender<()>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.store.flights().remove(&self.key.0);
    }
}

/// Who computes a key's output.
pub(crate) enum Claim {
    /// This call: no one else in this process computes it.
    Mine(Flight),
    /// Another call: wait until this closes, then look again.
    Theirs(watch::Receiver<()>),
}

/// Claims the computation of `key`'s output in this process.
pub(crate) fn claim(store: &Store, key: CacheKey) -> Claim {
    let mut flights = store.flights();
    if let Some(done) = flights.get(&key.0) {
        return Claim::Theirs(done.clone());
    }
    let (send, receive) = watch::channel(());
    flights.insert(key.0, receive);
    drop(flights);
    Claim::Mine(Flight {
        store: store.clone(),
        key,
        _done: send,
    })
}
