//! The store's schema and its migrations, tracked by SQLite's `user_version`.

use super::{sqlite, StoreError};
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
    // 3: fan-outs (`map`, `gather`), a row each as they end, so tools can
    // draw a map as one line with its counts.
    "CREATE TABLE fan_outs (
        seq         INTEGER PRIMARY KEY,
        run         INTEGER NOT NULL REFERENCES runs (seq),
        id          BLOB NOT NULL,
        parent      BLOB NOT NULL,
        kind        TEXT NOT NULL,
        task        TEXT,
        grp         TEXT,
        concurrency INTEGER,
        started     INTEGER NOT NULL,
        succeeded   INTEGER NOT NULL,
        failed      INTEGER NOT NULL,
        cancelled   INTEGER NOT NULL,
        cached      INTEGER NOT NULL,
        replayed    INTEGER NOT NULL,
        started_at  INTEGER NOT NULL,
        ended_at    INTEGER NOT NULL
    );
    CREATE INDEX fan_outs_by_run ON fan_outs (run);",
    // 4: when someone asked to cancel a run (`flyte abort`); its process
    // polls this column while it runs the run.
    "ALTER TABLE runs ADD COLUMN abort_requested_at INTEGER;",
    // 5: what tasks logged (`tracing` events, by action), and the latest
    // state of a run's progress display, for `flyte logs` and `flyte watch`.
    "CREATE TABLE logs (
        seq     INTEGER PRIMARY KEY,
        run     INTEGER NOT NULL REFERENCES runs (seq),
        action  BLOB,
        at      INTEGER NOT NULL,
        level   TEXT NOT NULL,
        target  TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX logs_by_run ON logs (run, seq);
    CREATE TABLE live_progress (
        run   INTEGER PRIMARY KEY REFERENCES runs (seq),
        at    INTEGER NOT NULL,
        lines TEXT NOT NULL
    );",
];

/// The schema version this build writes.
pub(crate) const VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`VERSION`], in one transaction that waits
/// for other processes (two processes opening a new store at once run the
/// migrations once).
pub(crate) fn migrate(conn: &mut Connection, db: &std::path::Path) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite)?;
    let found: u32 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sqlite)?;
    if found > VERSION {
        return Err(StoreError::NewerSchema {
            location: db.display().to_string(),
            found,
            known: VERSION,
        });
    }
    let steps = || -> rusqlite::Result<()> {
        for step in &MIGRATIONS[found as usize..] {
            tx.execute_batch(step)?;
        }
        tx.pragma_update(None, "user_version", VERSION)
    };
    steps().map_err(sqlite)?;
    tx.commit().map_err(sqlite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        let db = std::path::Path::new("/stores/flyte.db");
        migrate(&mut conn, db).unwrap();
        migrate(&mut conn, db).unwrap(); // already current: nothing to do
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn, db).unwrap_err().to_string();
        assert!(
            err.contains("/stores/flyte.db was written by a newer flyte")
                && err.contains("upgrade flyte"),
            "{err}"
        );
    }

    #[test]
    fn a_store_of_the_previous_schema_is_brought_up_to_date() {
        let mut conn = Connection::open_in_memory().unwrap();
        for step in &MIGRATIONS[..2] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO runs (id, root_task, root_action, status, started_at, pid)
             VALUES ('r1', 'env.t', x'00', 'succeeded', 0, 1)",
            [],
        )
        .unwrap();
        migrate(&mut conn, std::path::Path::new("flyte.db")).unwrap();
        let (runs, fan_outs): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM fan_outs)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (runs, fan_outs),
            (1, 0),
            "the old run is kept, fan-outs added"
        );
    }
}
