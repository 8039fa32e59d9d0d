//! Operating the store from the command line: aborting runs, listing and
//! clearing the cache, deleting old runs, compacting the file.

use crate::{millis, time, Store, StoreError};
use flyte_core::store::{CacheInfo, LogLine, RunKey};
use flyte_core::ActionId;
use rusqlite::{params, OptionalExtension};
use std::time::SystemTime;

/// The first schema with `runs.abort_requested_at`.
const ABORT_SCHEMA: u32 = 4;
/// The first schema with `logs` and `live_progress`.
const LOGS_SCHEMA: u32 = 5;

impl Store {
    pub(crate) fn mark_abort_requested(&self, run: RunKey) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.execute(
                "UPDATE runs SET abort_requested_at = ?2 WHERE seq = ?1",
                params![run.0, millis(SystemTime::now())],
            )
        })?;
        Ok(())
    }

    pub(crate) fn is_abort_requested(&self, run: RunKey) -> Result<bool, StoreError> {
        if self.schema() < ABORT_SCHEMA {
            return Ok(false); // an older store opened read-only: nobody could ask
        }
        self.read(|conn| {
            conn.prepare_cached("SELECT abort_requested_at IS NOT NULL FROM runs WHERE seq = ?1")?
                .query_row([run.0], |r| r.get(0))
        })
    }

    pub(crate) fn list_cache(&self) -> Result<Vec<CacheInfo>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT key, task, version, output_type, length(value), created_at
                 FROM cache ORDER BY created_at, key",
            )?;
            let rows = stmt.query_map([], |r| {
                let key: Vec<u8> = r.get(0)?;
                let mut fixed = [0u8; 32];
                // Keys are written 32 bytes long; a shorter one stays zero-padded.
                let n = key.len().min(32);
                fixed[..n].copy_from_slice(&key[..n]);
                let size: i64 = r.get(4)?;
                Ok(CacheInfo::new(
                    fixed,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    u64::try_from(size).unwrap_or(0),
                    time(r.get(5)?),
                ))
            })?;
            rows.collect()
        })
    }

    pub(crate) fn remove_cache(&self, keys: &[[u8; 32]]) -> Result<u64, StoreError> {
        self.read(|conn| {
            let tx = conn.unchecked_transaction()?;
            let mut removed = 0;
            {
                let mut stmt = tx.prepare("DELETE FROM cache WHERE key = ?1")?;
                for key in keys {
                    removed += stmt.execute([&key[..]])? as u64;
                }
            }
            tx.commit()?;
            Ok(removed)
        })
    }

    pub(crate) fn remove_runs(&self, runs: &[RunKey]) -> Result<u64, StoreError> {
        self.read(|conn| {
            let tx = conn.unchecked_transaction()?;
            let mut removed = 0;
            for run in runs {
                let ended: bool = tx
                    .query_row(
                        "SELECT status <> 'running' FROM runs WHERE seq = ?1",
                        [run.0],
                        |r| r.get(0),
                    )
                    .unwrap_or(false);
                if !ended {
                    continue;
                }
                tx.execute("DELETE FROM actions WHERE run = ?1", [run.0])?;
                tx.execute("DELETE FROM fan_outs WHERE run = ?1", [run.0])?;
                if self.schema() >= LOGS_SCHEMA {
                    tx.execute("DELETE FROM logs WHERE run = ?1", [run.0])?;
                    tx.execute("DELETE FROM live_progress WHERE run = ?1", [run.0])?;
                }
                removed += tx.execute("DELETE FROM runs WHERE seq = ?1", [run.0])? as u64;
            }
            tx.commit()?;
            Ok(removed)
        })
    }

    pub(crate) fn vacuum(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);"))
    }

    pub(crate) fn read_logs(
        &self,
        run: RunKey,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError> {
        if self.schema() < LOGS_SCHEMA {
            return Ok(Vec::new());
        }
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, action, at, level, target, message FROM logs
                 WHERE run = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let after = i64::try_from(after).unwrap_or(i64::MAX);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![run.0, after, limit], |r| {
                let action: Option<Vec<u8>> = r.get(1)?;
                let mut line = LogLine::new(
                    action
                        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
                        .map(|b| ActionId(u128::from_be_bytes(b))),
                    time(r.get(2)?),
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                );
                line.seq = u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0);
                Ok(line)
            })?;
            rows.collect()
        })
    }

    pub(crate) fn read_progress(
        &self,
        run: RunKey,
    ) -> Result<Option<(SystemTime, Vec<String>)>, StoreError> {
        if self.schema() < LOGS_SCHEMA {
            return Ok(None);
        }
        let found: Option<(i64, String)> = self.read(|conn| {
            conn.prepare_cached("SELECT at, lines FROM live_progress WHERE run = ?1")?
                .query_row([run.0], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })?;
        Ok(found.map(|(at, lines)| (time(at), serde_json::from_str(&lines).unwrap_or_default())))
    }

    pub(crate) fn count_ended(&self, run: RunKey) -> Result<u64, StoreError> {
        let n: i64 = self.read(|conn| {
            conn.prepare_cached("SELECT coalesce(sum(count), 0) FROM actions WHERE run = ?1")?
                .query_row([run.0], |r| r.get(0))
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
