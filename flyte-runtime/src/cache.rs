//! The task cache: keys, and reading a cached output back.

use crate::call::{decode_stored, Body};
use crate::store::{CacheRow, Store, Write};
use flyte_core::{TaskDef, TaskError};

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

/// Files `value` under `key`, replacing what was there.
pub(crate) fn keep(
    store: &Store,
    key: CacheKey,
    def: &'static TaskDef,
    output_type: &'static str,
    value: Vec<u8>,
) {
    store.write(Write::Cache(Box::new(CacheRow {
        key: key.0,
        task: def.name(),
        version: def.cache_version(),
        output_type,
        value: value.into(),
    })));
}
