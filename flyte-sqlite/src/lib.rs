//! The embedded run store of flyte: a SQLite database that keeps runs, their
//! actions and fan-outs, and the task cache, under `FLYTE_HOME` (default
//! `./.flyte/`). It is a [`RunStore`] with every capability (the runtime
//! records through [`RunLog`], caches through [`TaskCache`], tools read
//! through [`RunReader`] and operate through [`RunOperations`]); users
//! reach it as `flyte::store`.
//!
//! Runs started with `flyte::Runner` (and `flyte::run`) are recorded here
//! unless `Runner::persist(false)` says otherwise; cached tasks keep their
//! outputs here. The database is
//! created on first use and brought up to date by versioned migrations.
//! Several processes may use one store at once (SQLite's WAL mode, with a
//! busy timeout); a run whose process died is marked
//! [`RunStatus::Killed`] the next time the store is opened.
//!
//! [`Store`] is the read API for tools: [`Store::runs`] lists runs,
//! [`Store::run`] gets one with its actions; through [`RunReader`],
//! [`RunReader::list_runs`] filters and pages, [`RunReader::actions`] reads
//! a run batch by batch and [`RunReader::fan_outs`] gives its `map`s and
//! `gather`s.
//!
//! # Examples
//!
//! ```
//! use flyte::prelude::*;
//! use flyte::store::{RunStatus, Store};
//!
//! #[task]
//! fn double(x: i64) -> i64 {
//!     x * 2
//! }
//!
//! # let home = std::env::temp_dir().join(format!("flyte-doc-store-{}", std::process::id()));
//! let outcome = flyte::Runner::new().home(&home).run(double(21));
//! assert_eq!(outcome.output().ok(), Some(&42));
//!
//! let store = Store::open(&home)?;
//! let run = store.run(outcome.run_id())?.expect("the run was recorded");
//! assert_eq!(run.status, RunStatus::Succeeded);
//! assert_eq!(run.actions[0].task, "default.double");
//! assert_eq!(run.actions[0].output::<i64>()?, Some(42));
//! # std::fs::remove_dir_all(&home).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod actions;
mod lock;
mod operate;
mod read;
mod schema;
mod writer;

mod run_store;

pub use flyte_core::backend::RunStore;
pub use flyte_core::record::{ActionRecord, FanOutRecord, RunRecord, RunStatus};
pub use flyte_core::store::{RunFilter, RunLog, RunOperations, RunReader, StoreError, TaskCache};

use flyte_core::record::ActionStatus;
use flyte_core::store::{NewRun, OutputAt};
use flyte_core::sync::{lock, warn_once};
use flyte_core::{ActionId, ErrorKind, TaskError};
use lock::{LockState, RunLock};
use rusqlite::{params, Connection, OpenFlags};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use writer::{Lost, Write, Writer};

/// The environment variable that names the store's directory.
pub const FLYTE_HOME: &str = "FLYTE_HOME";

/// How long a connection waits for another process's write to end.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// SQLite's own error, as a store error.
pub(crate) fn sqlite(e: rusqlite::Error) -> StoreError {
    StoreError::backend("sqlite", e)
}

/// The SQLite error inside a store error, if that is what it is.
fn sqlite_cause(e: &StoreError) -> Option<&rusqlite::Error> {
    match e {
        StoreError::Backend { source, .. } => source.downcast_ref(),
        _ => None,
    }
}

/// A handle on one store directory. Cheap to clone; every handle on one
/// directory in a process shares one writer.
#[derive(Debug, Clone)]
pub struct Store(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    home: PathBuf,
    db: PathBuf,
    locks: PathBuf,
    /// Idle connections for reads (and the few synchronous writes).
    readers: Mutex<Vec<Connection>>,
    /// `None` for a store opened read-only.
    writer: Option<Writer>,
    /// The schema version of the file (older only when opened read-only).
    schema: u32,
    /// The liveness locks of the runs this process is recording, by key.
    live: Mutex<HashMap<i64, RunLock>>,
    /// The batch of actions read last for a resume: replayed items come in
    /// about the order they were written, so most reads hit it.
    last_batch: Mutex<Option<(i64, Vec<ActionRecord>)>>,
}

impl Store {
    /// Opens (creating if needed) the store in directory `home`.
    ///
    /// Every open marks the runs whose process died as [`RunStatus::Killed`]
    /// (a run's process holds a lock on a file under `home/runs/` while it
    /// runs; the system drops it when the process dies, however it dies).
    ///
    /// # Errors
    ///
    /// When the directory cannot be made, the database is damaged, or it was
    /// written by a newer flyte; each error says what to do.
    pub fn open(home: impl AsRef<Path>) -> Result<Store, StoreError> {
        static OPEN: Mutex<Vec<Store>> = Mutex::new(Vec::new());
        let home = home.as_ref();
        std::fs::create_dir_all(home).map_err(StoreError::io(home))?;
        let home = home.canonicalize().map_err(StoreError::io(home))?;
        let store = {
            let mut open = lock(&OPEN);
            match open.iter().find(|s| s.0.home == home) {
                Some(store) => store.clone(),
                None => {
                    let store = Store::open_new(home)?;
                    open.push(store.clone());
                    store
                }
            }
        };
        // Best effort: a store that cannot be written (a full disk) is still
        // worth opening; its runs are marked by a later open.
        if let Err(e) = store.mark_killed_runs() {
            warn_once(&format!("cannot mark the runs whose process died: {e}"));
        }
        Ok(store)
    }

    /// Opens the store in `FLYTE_HOME`, or `./.flyte/` when it is not set.
    ///
    /// # Errors
    ///
    /// As [`Store::open`].
    pub fn open_default() -> Result<Store, StoreError> {
        Store::open(default_home())
    }

    /// Opens the store in directory `home` for reading only: nothing is
    /// created, migrated or marked, so it works on a copied or archived
    /// store, on read-only media, and on a store written by an older flyte.
    /// Runs cannot be recorded through it.
    ///
    /// # Examples
    ///
    /// ```
    /// use flyte::prelude::*;
    /// use flyte::store::Store;
    ///
    /// #[task]
    /// fn one() -> u8 {
    ///     1
    /// }
    ///
    /// # let home = std::env::temp_dir().join(format!("flyte-doc-ro-{}", std::process::id()));
    /// let outcome = flyte::Runner::new().home(&home).run(one());
    /// let store = Store::open_read_only(&home)?;
    /// assert_eq!(store.runs()?[0].id, outcome.run_id());
    /// # std::fs::remove_dir_all(&home).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When there is no store in `home`, its database cannot be read, or it
    /// was written by a newer flyte.
    pub fn open_read_only(home: impl AsRef<Path>) -> Result<Store, StoreError> {
        let home = home.as_ref().to_owned();
        let db = home.join("flyte.db");
        if !db.is_file() {
            return Err(StoreError::CannotOpen {
                reason: "there is no flyte store there".into(),
                path: db,
            });
        }
        let conn = open_read_only_connection(&db)?;
        let schema: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| classify(&db, sqlite(e)))?;
        if schema > schema::VERSION {
            return Err(StoreError::NewerSchema {
                location: db.display().to_string(),
                found: schema,
                known: schema::VERSION,
            });
        }
        Ok(Store(Arc::new(Inner {
            locks: home.join("runs"),
            home,
            db,
            readers: Mutex::new(vec![conn]),
            writer: None,
            schema,
            live: Mutex::default(),
            last_batch: Mutex::default(),
        })))
    }

    fn open_new(home: PathBuf) -> Result<Store, StoreError> {
        let db = home.join("flyte.db");
        let locks = home.join("runs");
        std::fs::create_dir_all(&locks).map_err(StoreError::io(&locks))?;
        let mut conn = open_connection(&db)?;
        when_not_busy(|| schema::migrate(&mut conn, &db)).map_err(|e| classify(&db, e))?;
        let writer = Some(Writer::start(db.clone())?);
        Ok(Store(Arc::new(Inner {
            home,
            db,
            locks,
            readers: Mutex::new(vec![conn]),
            writer,
            schema: schema::VERSION,
            live: Mutex::default(),
            last_batch: Mutex::default(),
        })))
    }

    /// The store's directory.
    pub fn home(&self) -> &Path {
        &self.0.home
    }

    /// The schema version of the database.
    pub(crate) fn schema(&self) -> u32 {
        self.0.schema
    }

    /// Runs `f` on an idle connection.
    fn read<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R, StoreError> {
        let conn = lock(&self.0.readers).pop();
        let conn = match conn {
            Some(conn) => conn,
            None if self.0.writer.is_none() => open_read_only_connection(&self.0.db)?,
            None => open_connection(&self.0.db)?,
        };
        let result = f(&conn);
        lock(&self.0.readers).push(conn);
        result.map_err(|e| classify(&self.0.db, sqlite(e)))
    }

    /// Runs recorded as running whose process is gone: marked killed.
    fn mark_killed_runs(&self) -> Result<(), StoreError> {
        let running: Vec<(i64, String)> = self.read(|conn| {
            let mut stmt = conn.prepare("SELECT seq, id FROM runs WHERE status = 'running'")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        for (seq, id) in running {
            // Held: its process is alive. Taken: nobody holds it any more.
            let LockState::Taken(lock) = RunLock::try_take(&self.0.locks, &id)? else {
                continue;
            };
            // Its process ended it, but could not write that (a full disk):
            // the end is in the lock file.
            let (status, error, lost, ended_at) = match lock.left_end() {
                Some(end) => (end.status, end.error, end.lost, end.ended_at),
                None => {
                    let error = TaskError::new(
                        ErrorKind::Cancelled,
                        format!(
                            "run {id} was killed: its process ended before the run did \
                             (resume it with Runner::resume)"
                        ),
                    );
                    ("killed".to_owned(), Some(error), 0, None)
                }
            };
            self.read(|conn| {
                // Only if still running: its process may have ended it
                // between the two reads.
                conn.execute(
                    "UPDATE runs SET status = ?2, error = ?3, ended_at = ?4,
                         lost = max(lost, ?5)
                     WHERE seq = ?1 AND status = 'running'",
                    params![
                        seq,
                        status,
                        error.as_ref().map(error_json),
                        ended_at.unwrap_or_else(|| millis(SystemTime::now())),
                        i64::try_from(lost).unwrap_or(i64::MAX),
                    ],
                )
            })?;
            drop(lock); // removes the file, now that the run's end is stored
        }
        Ok(())
    }

    /// Records a new run as running; returns its number in the store.
    fn insert_run(&self, run: &NewRun<'_>) -> Result<i64, StoreError> {
        self.read(|conn| {
            conn.execute(
                "INSERT INTO runs (id, name, root_task, root_action, status, inputs,
                     started_at, pid)
                 VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7)",
                params![
                    run.id,
                    run.name,
                    run.root_task,
                    run.root_action.0.to_be_bytes(),
                    run.inputs,
                    millis(SystemTime::now()),
                    std::process::id(),
                ],
            )?;
            Ok(conn.last_insert_rowid())
        })
    }

    /// Records run `seq` as running again, executed once more.
    fn restart_run(&self, seq: i64) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.execute(
                "UPDATE runs SET status = 'running', error = NULL, ended_at = NULL,
                     executions = executions + 1, pid = ?2, abort_requested_at = NULL
                 WHERE seq = ?1",
                params![seq, std::process::id()],
            )
        })?;
        Ok(())
    }

    /// Where the outputs of run `seq`'s succeeded actions are: their batch's
    /// row and their place in it, by action id.
    fn succeeded_actions(&self, seq: i64) -> Result<HashMap<ActionId, OutputAt>, StoreError> {
        let mut found = HashMap::new();
        self.each_batch(seq, |row, actions| {
            for (i, action) in actions.into_iter().enumerate() {
                if action.status == ActionStatus::Succeeded && action.output_bytes.is_some() {
                    let index = u32::try_from(i).unwrap_or(u32::MAX);
                    found.insert(action.id, OutputAt { batch: row, index });
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok(found)
    }

    /// The actions in batch row `row`.
    fn batch_at(&self, row: i64) -> Result<Vec<ActionRecord>, StoreError> {
        // A value that is not a blob is damage too, not a database failure.
        let bytes = self.read(|conn| {
            conn.prepare_cached("SELECT records FROM actions WHERE seq = ?1")?
                .query_row([row], |r| Ok(r.get::<_, Vec<u8>>(0)))
        })?;
        let decoded = match bytes {
            Ok(bytes) => actions::decode_batch(&bytes),
            Err(e) => Err(TaskError::new(ErrorKind::Store, e.to_string())),
        };
        decoded.map_err(|e| self.undecodable(row, &e))
    }

    /// Calls `f` with each batch of run `seq`'s actions, in the order
    /// written, until it breaks. Batches are read one at a time: a run of
    /// millions of actions is never in memory at once.
    fn each_batch(
        &self,
        seq: i64,
        mut f: impl FnMut(i64, Vec<ActionRecord>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let rows: Vec<i64> = self.read(|conn| {
            let mut stmt = conn.prepare("SELECT seq FROM actions WHERE run = ?1 ORDER BY seq")?;
            let rows = stmt.query_map([seq], |r| r.get(0))?;
            rows.collect()
        })?;
        for row in rows {
            let batch = match self.batch_at(row) {
                Ok(batch) => batch,
                Err(StoreError::Damaged { reason, .. }) => {
                    // One damaged row must not hide a run's other actions
                    // (from `show`, a report, a resume, which runs the
                    // actions it held again).
                    let db = self.0.db.display();
                    warn_once(&format!(
                        "{reason} in {db}: its actions are left out; delete the row \
                         (`sqlite3 {db} \"DELETE FROM actions WHERE seq = {row}\"`), or \
                         restore the store from a copy"
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if f(row, batch).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn undecodable(&self, row: i64, e: &TaskError) -> StoreError {
        StoreError::Damaged {
            path: self.0.db.clone(),
            reason: format!("action batch {row} does not decode: {}", e.message()),
        }
    }

    /// The writer thread; refused for a store opened read-only (the
    /// runtime opens its stores with [`Store::open`], so runs never get here).
    fn writer(&self) -> Result<&Writer, StoreError> {
        self.0.writer.as_ref().ok_or_else(|| StoreError::ReadOnly {
            path: self.0.db.clone(),
        })
    }

    /// Queues a write for the writer thread.
    fn write(&self, write: Write) {
        if let Ok(writer) = self.writer() {
            writer.send(write);
        }
    }

    /// What could not be written of run `seq`, if anything.
    fn lost(&self, seq: i64) -> Option<Lost> {
        self.writer().ok()?.lost(seq)
    }
}

/// `FLYTE_HOME`, or `./.flyte` when it is not set.
pub fn default_home() -> PathBuf {
    std::env::var_os(FLYTE_HOME)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(".flyte"), PathBuf::from)
}

/// A connection set up for concurrent use by several processes.
fn open_connection(db: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(db, sqlite(e)))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
    let setup = || -> rusqlite::Result<()> {
        // WAL: readers and one writer at a time, across processes.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        // In WAL mode NORMAL loses no committed data on a process crash,
        // only possibly the last commits on a power cut.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(())
    };
    when_not_busy(|| setup().map_err(sqlite)).map_err(|e| classify(db, e))?;
    Ok(conn)
}

/// A connection that only reads. A store on read-only media (no `-shm`
/// file can be made) is read as immutable: nothing may change it meanwhile.
fn open_read_only_connection(db: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let readable = |conn: &Connection| {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
    };
    let conn = Connection::open_with_flags(db, flags).map_err(|e| classify(db, sqlite(e)))?;
    match readable(&conn) {
        Ok(_) => Ok(conn),
        Err(first) => {
            let mut uri = String::from("file:");
            for c in db.to_string_lossy().chars() {
                match c {
                    '%' => uri.push_str("%25"),
                    '?' => uri.push_str("%3f"),
                    '#' => uri.push_str("%23"),
                    c => uri.push(c),
                }
            }
            uri.push_str("?immutable=1");
            let conn = Connection::open_with_flags(&uri, flags | OpenFlags::SQLITE_OPEN_URI)
                .map_err(|_| classify(db, sqlite(first)))?;
            readable(&conn).map_err(|e| classify(db, sqlite(e)))?;
            Ok(conn)
        }
    }
}

/// Runs `step` again while another process holds a lock SQLite does not
/// wait for by itself (switching a new database to WAL, for one), up to
/// [`BUSY_TIMEOUT`].
fn when_not_busy<R>(mut step: impl FnMut() -> Result<R, StoreError>) -> Result<R, StoreError> {
    let started = std::time::Instant::now();
    loop {
        match step() {
            Err(e)
                if matches!(
                    sqlite_cause(&e).and_then(rusqlite::Error::sqlite_error_code),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                ) && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Names the file, and what to do, for the SQLite failures a person can
/// fix: a damaged file, a read-only one, a full disk, a file that cannot
/// be opened.
pub(crate) fn classify(db: &Path, e: StoreError) -> StoreError {
    use rusqlite::ErrorCode;
    let Some(inner) = sqlite_cause(&e) else {
        return e;
    };
    let path = db.to_owned();
    let reason = inner.to_string();
    match inner.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Damaged { path, reason }
        }
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path },
        Some(ErrorCode::DiskFull) => StoreError::Full { path, reason },
        Some(ErrorCode::CannotOpen) => StoreError::CannotOpen { path, reason },
        // A table or column of flyte's schema that is not there: the file
        // was changed by something else.
        Some(ErrorCode::Unknown)
            if reason.contains("no such table") || reason.contains("no such column") =>
        {
            StoreError::Damaged { path, reason }
        }
        // A write the system refused outright: ENOSPC mid-page, or a file
        // size limit.
        Some(ErrorCode::SystemIoFailure)
            if matches!(
                inner,
                rusqlite::Error::SqliteFailure(f, _)
                    if f.extended_code == rusqlite::ffi::SQLITE_IOERR_WRITE
                        || f.extended_code == rusqlite::ffi::SQLITE_IOERR_FSYNC
            ) =>
        {
            StoreError::Full { path, reason }
        }
        _ => e,
    }
}

fn millis(t: SystemTime) -> i64 {
    // In 64-bit arithmetic: this runs twice per recorded action.
    t.duration_since(UNIX_EPOCH).map_or(0, |d| {
        i64::try_from(d.as_secs())
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000)
            .saturating_add(i64::from(d.subsec_millis()))
    })
}

fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Errors are stored as JSON, readable by tools in any language.
fn error_json(e: &TaskError) -> String {
    // A TaskError is plain data: strings, numbers and an enum.
    serde_json::to_string(e).unwrap_or_else(|_| format!("{{\"message\":{:?}}}", e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32, message: &str) -> StoreError {
        sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            Some(message.to_owned()),
        ))
    }

    #[test]
    fn failures_a_person_can_fix_name_the_file_and_the_fix() {
        let db = Path::new("/data/flyte/flyte.db");
        let cases = [
            (rusqlite::ffi::SQLITE_READONLY, "read-only", "writable"),
            (rusqlite::ffi::SQLITE_FULL, "full", "free some space"),
            (rusqlite::ffi::SQLITE_IOERR_WRITE, "full", "another disk"),
            (rusqlite::ffi::SQLITE_CANTOPEN, "cannot open", "FLYTE_HOME"),
            (rusqlite::ffi::SQLITE_NOTADB, "damaged", "move it away"),
        ];
        for (code, what, fix) in cases {
            let text = classify(db, failure(code, "sqlite says no")).to_string();
            assert!(text.contains("/data/flyte/flyte.db"), "{text}");
            assert!(text.contains(what) && text.contains(fix), "{text}");
        }
        // Others keep SQLite's own words.
        let busy = classify(db, failure(rusqlite::ffi::SQLITE_BUSY, "busy"));
        assert!(sqlite_cause(&busy).is_some(), "{busy}");
    }
}
