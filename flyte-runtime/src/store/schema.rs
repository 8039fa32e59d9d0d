//! The store's schema and its migrations, tracked by SQLite's `user_version`.

use super::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// Actions are appended in the order they end, a batch per row (see
/// `actions.rs`; a resumed action that runs again is appended again, and
/// its latest record is its state), indexed by run: both keys only grow, so
/// a commit touches the last pages of the table and index.
///
/// Each step takes the schema from version `i` to `i + 1`. Steps are only
/// ever appended: a store written by an older flyte is brought up to date
/// the first time a newer one opens it.
const MIGRATIONS: &[&str] = &[
    // 1: runs, their actions, and the task cache.
    "CREATE TABLE runs (
        seq         INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        name        TEXT UNIQUE,
        root_task   TEXT NOT NULL,
        root_action BLOB NOT NULL,
        status      TEXT NOT NULL,
        inputs      BLOB,
        error       TEXT,
        started_at  INTEGER NOT NULL,
        ended_at    INTEGER,
        executions  INTEGER NOT NULL DEFAULT 1,
        pid         INTEGER NOT NULL
    );
    CREATE INDEX runs_by_status ON runs (status);
    CREATE TABLE actions (
        seq     INTEGER PRIMARY KEY,
        run     INTEGER NOT NULL REFERENCES runs (seq),
        count   INTEGER NOT NULL,
        records BLOB NOT NULL
    );
    CREATE INDEX actions_by_run ON actions (run);
    CREATE TABLE cache (
        key         BLOB PRIMARY KEY,
        task        TEXT NOT NULL,
        version     TEXT NOT NULL,
        output_type TEXT NOT NULL,
        value       BLOB NOT NULL,
        created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 2: how many of a run's action records could not be written (a full
    // disk): a run whose record is incomplete says so.
    "ALTER TABLE runs ADD COLUMN lost INTEGER NOT NULL DEFAULT 0;",
];

/// The schema version this build writes.
pub(crate) const VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`VERSION`], in one transaction that waits
/// for other processes (two processes opening a new store at once run the
/// migrations once).
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > VERSION {
        return Err(StoreError::NewerSchema {
            found,
            known: VERSION,
        });
    }
    for step in &MIGRATIONS[found as usize..] {
        tx.execute_batch(step)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap(); // already current: nothing to do
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
