//! The store's writer: one thread per store that commits what runs report,
//! a transaction every few milliseconds, so that tasks never wait on the disk.
//!
//! Actions are packed into their run's batch by the thread that ends them
//! (see `actions.rs`); cache values, run ends and flushes are queued as
//! [`Write`]s. Both are bounded: a run that reports faster than the disk can
//! take is slowed down (its reporting threads wait for room) rather than let
//! memory grow or records be dropped. The bounds also bound what a killed
//! process loses: records wait at most [`LINGER`] before their commit starts,
//! and at most [`MAX_BUFFERED`] bytes of them wait at all.

use super::actions::{Batch, LeftOut, SEALED};
use super::{classify, error_json, millis, open_connection, sqlite, StoreError};
use flyte_core::record::FanOutRecord;
use flyte_core::store::{warn_large_output, ActionEnd, CacheEntry, LogLine, RunEnd, LARGE_OUTPUT};
use flyte_core::sync::{lock, wait, wait_timeout};
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

/// Bytes of packed action records waiting at most (about 35,000 trivial
/// actions); past this, reporting waits until the writer has taken them.
pub(crate) const MAX_BUFFERED: usize = 1 << 20;
/// Bytes of records that make the writer start at once rather than linger.
const BATCH_BYTES: usize = 256 * 1024;
/// Other writes (cache values, run ends) waiting at most.
const MAX_WRITES: usize = 4_096;
/// How long the writer lets records gather before it commits them (unless
/// a flush or a full batch asks for it now): one commit per few
/// milliseconds rather than per few rows, since each commit locks and
/// writes the file.
pub(crate) const LINGER: Duration = Duration::from_millis(5);
/// How often a failing batch is tried before it is given up (with an
/// error in the log); busy waits inside each try are SQLite's own.
const TRIES: u32 = 8;
/// SQLite's page cache for the writer: its writes append to the ends of
/// one table and one index, so a few pages suffice (SQLite's default is
/// 2 MiB; a larger cache only grows the process as the store grows).
const WRITER_CACHE_KIB: i64 = 2_048;

pub(crate) enum Write {
    /// An output to cache (its value is shared with the lookups that find
    /// it before it is committed).
    Cache(Box<CacheEntry>),
    /// How run `.0` ended.
    RunEnd(i64, RunEnd),
    /// A fan-out of run `.0` that ended.
    FanOut(i64, Box<FanOutRecord>),
    /// A log line of run `.0`.
    Log(i64, Box<LogLine>),
    /// What run `.0`'s progress display shows now (JSON lines).
    Progress(i64, String),
    /// Answered once everything sent before it is committed: `Err` when
    /// anything since the previous flush could not be written.
    Flush(tokio::sync::oneshot::Sender<Result<(), StoreError>>),
}

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Write::Cache(_) => "Cache",
            Write::RunEnd(..) => "RunEnd",
            Write::FanOut(..) => "FanOut",
            Write::Log(..) => "Log",
            Write::Progress(..) => "Progress",
            Write::Flush(_) => "Flush",
        })
    }
}

/// Records of a run that could not be written.
#[derive(Debug, Clone)]
pub(crate) struct Lost {
    /// Actions whose records are not in the store.
    pub(crate) actions: u64,
    /// Whether the run's end is not in the store either.
    pub(crate) run_end: bool,
    /// The last failure.
    pub(crate) error: StoreError,
}

/// The reporting side. Reports go into a shared buffer under a mutex: a
/// report packs one record and wakes the writer only when the buffer was
/// empty, passes [`BATCH_BYTES`], or holds a flush (a channel would wake the
/// sleeping writer on every send, a system call per action).
#[derive(Debug, Clone)]
pub(crate) struct Writer(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    buffer: Mutex<Buffer>,
    /// Wakes the writer thread.
    work: Condvar,
    /// Wakes reporters waiting for room.
    room: Condvar,
    /// By run: what could not be written.
    lost: Mutex<HashMap<i64, Lost>>,
    /// The database file, for messages.
    db: PathBuf,
}

#[derive(Debug, Default)]
struct Buffer {
    /// Packed actions, a batch per run (usually one).
    batches: Vec<Batch>,
    /// Bytes in `batches`.
    bytes: usize,
    writes: Vec<Write>,
    flush: bool,
    /// Cache values queued or being written, by key: a lookup sees a value
    /// as soon as it is kept, not once it is committed.
    pending_cache: HashMap<[u8; 32], Arc<[u8]>>,
}

impl Buffer {
    fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.writes.is_empty()
    }
}

impl Writer {
    pub(crate) fn start(db: PathBuf) -> Result<Writer, StoreError> {
        let conn = open_connection(&db)?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
            .map_err(sqlite)?;
        let shared = Arc::new(Shared {
            db: db.clone(),
            ..Shared::default()
        });
        let writer = Arc::clone(&shared);
        let db_path = db.clone();
        std::thread::Builder::new()
            .name("flyte-store-writer".into())
            .spawn(move || write_loop(conn, &writer, &db_path))
            .map_err(StoreError::io(&db))?;
        Ok(Writer(shared))
    }

    /// Packs an ended action into its run's batch, waiting for room first
    /// when the writer is behind.
    pub(crate) fn action(&self, run: i64, end: &ActionEnd<'_>) {
        let shared = &*self.0;
        let mut buffer = lock(&shared.buffer);
        while buffer.bytes >= MAX_BUFFERED {
            buffer = wait(&shared.room, buffer);
        }
        let was_empty = buffer.is_empty();
        let open = buffer
            .batches
            .iter()
            .rposition(|b| b.run == run && b.bytes.len() < SEALED);
        let batch = match open {
            Some(i) => &mut buffer.batches[i],
            None => {
                buffer.batches.push(Batch::new(run));
                let last = buffer.batches.len() - 1;
                &mut buffer.batches[last]
            }
        };
        let before = batch.bytes.len();
        let left_out = match batch.push(end) {
            Ok(left_out) => left_out,
            Err(e) => {
                // Only a TaskError whose own encoding fails could get here.
                // Told with the buffer let go (see below).
                drop(buffer);
                tracing::error!(
                    "flyte store: an action of task {} not recorded: {e}",
                    end.task
                );
                return;
            }
        };
        let added = batch.bytes.len() - before;
        let full_before = buffer.bytes >= BATCH_BYTES;
        buffer.bytes += added;
        let wake = was_empty || (!full_before && buffer.bytes >= BATCH_BYTES);
        drop(buffer);
        if wake {
            shared.work.notify_one();
        }
        // Told with the buffer let go: a warning may come back here as a
        // log line of the run.
        match left_out {
            Some(LeftOut::TooLarge(bytes)) => self.output_too_large(run, end.task, bytes),
            Some(LeftOut::Unencodable(e)) => tracing::warn!(
                "task {}: an output was not recorded: {}",
                end.task,
                e.message()
            ),
            None if added as u64 > LARGE_OUTPUT => {
                warn_large_output(end.task, &shared.db.display().to_string());
            }
            None => {}
        }
    }

    /// Counts the output of an action of `task` (`bytes` long) as lost to
    /// run `run`: it is over what a record keeps.
    fn output_too_large(&self, run: i64, task: &str, bytes: usize) {
        let error = StoreError::too_large(task, bytes, self.0.db.display().to_string());
        tracing::error!("flyte store: {error}");
        lock(&self.0.lost)
            .entry(run)
            .or_insert_with(|| Lost {
                actions: 0,
                run_end: false,
                error,
            })
            .actions += 1;
    }

    pub(crate) fn send(&self, write: Write) {
        let shared = &*self.0;
        let mut buffer = lock(&shared.buffer);
        while buffer.writes.len() >= MAX_WRITES {
            buffer = wait(&shared.room, buffer);
        }
        let was_empty = buffer.is_empty();
        let flush = matches!(write, Write::Flush(_));
        if let Write::Cache(row) = &write {
            buffer.pending_cache.insert(row.key, Arc::clone(&row.value));
        }
        buffer.writes.push(write);
        buffer.flush |= flush;
        drop(buffer);
        if was_empty || flush {
            shared.work.notify_one();
        }
    }

    /// A cache value kept in this process and not yet committed.
    pub(crate) fn pending_cache(&self, key: &[u8; 32]) -> Option<Arc<[u8]>> {
        lock(&self.0.buffer).pending_cache.get(key).cloned()
    }

    /// Waits until everything sent so far is on disk, or could not be
    /// written.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Write::Flush(done));
        wait.await.unwrap_or(Err(StoreError::WriterStopped))
    }

    /// What could not be written of run `seq`, if anything.
    pub(crate) fn lost(&self, seq: i64) -> Option<Lost> {
        lock(&self.0.lost).get(&seq).cloned()
    }
}

fn write_loop(mut conn: Connection, shared: &Shared, db: &Path) {
    loop {
        let (batches, writes) = {
            let mut buffer = lock(&shared.buffer);
            while buffer.is_empty() {
                buffer = wait(&shared.work, buffer);
            }
            if !buffer.flush && buffer.bytes < BATCH_BYTES && buffer.writes.len() < MAX_WRITES {
                // Let the records of the next few milliseconds join this commit.
                let (b, _) = wait_timeout(&shared.work, buffer, LINGER);
                buffer = b;
            }
            buffer.flush = false;
            buffer.bytes = 0;
            (
                std::mem::take(&mut buffer.batches),
                std::mem::take(&mut buffer.writes),
            )
        };
        shared.room.notify_all();
        let result = write_with_retries(db, &mut conn, &batches, &writes, shared);
        let mut buffer = lock(&shared.buffer);
        for write in &writes {
            if let Write::Cache(row) = write {
                // Committed (or lost): lookups read the table again, unless
                // a newer value for the key is already queued.
                if let Some(pending) = buffer.pending_cache.get(&row.key) {
                    if Arc::ptr_eq(pending, &row.value) {
                        buffer.pending_cache.remove(&row.key);
                    }
                }
            }
        }
        drop(buffer);
        for write in writes {
            if let Write::Flush(done) = write {
                let _ = done.send(result.clone());
            }
        }
    }
}

fn write_with_retries(
    db: &Path,
    conn: &mut Connection,
    batches: &[Batch],
    writes: &[Write],
    shared: &Shared,
) -> Result<(), StoreError> {
    let mut wait = Duration::from_millis(20);
    let mut tries = 1;
    let error = loop {
        let e = match write_batch(conn, batches, writes, shared) {
            Ok(()) => return Ok(()),
            Err(e) => classify(db, sqlite(e)),
        };
        // Only a busy file or a passing I/O error is tried again: a full
        // disk, a read-only or damaged file, a missing table, a value too
        // big fail the same way each time, and trying again would only
        // hold up the runs that wait for room.
        if tries >= TRIES || !passing(&e) {
            break e;
        }
        tracing::warn!("flyte store: a write failed (try {tries} of {TRIES}): {e}");
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(2));
        tries += 1;
    };
    let mut lost = lock(&shared.lost);
    for batch in batches {
        let entry = lost.entry(batch.run).or_insert_with(|| Lost {
            actions: 0,
            run_end: false,
            error: error.clone(),
        });
        entry.actions += u64::from(batch.count);
        entry.error = error.clone();
    }
    drop(lost);
    let records: u32 = batches.iter().map(|b| b.count).sum();
    tracing::error!("flyte store: the records of {records} actions were lost: {error}");
    // The small writes (run ends, cache values) may still fit where the
    // batches did not: a run's end then says what it lost.
    let small = match batches.is_empty() {
        true => Err(error.clone()),
        false => write_batch(conn, &[], writes, shared).map_err(|e| classify(db, sqlite(e))),
    };
    if let Err(e) = small {
        let mut lost = lock(&shared.lost);
        for write in writes {
            let (run, ended) = match write {
                Write::RunEnd(run, _) => (*run, true),
                Write::FanOut(run, _) => (*run, false),
                _ => continue,
            };
            let entry = lost.entry(run).or_insert_with(|| Lost {
                actions: 0,
                run_end: false,
                error: e.clone(),
            });
            entry.run_end |= ended;
            entry.actions += u64::from(!ended);
        }
    }
    Err(error)
}

/// Whether a failure lasts until a person acts.
/// Whether a failed write may succeed if tried again: the file was busy
/// or locked by another process, or an I/O error other than a full disk.
fn passing(e: &StoreError) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        super::sqlite_cause(e).and_then(rusqlite::Error::sqlite_error_code),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::SystemIoFailure)
    )
}

fn write_batch(
    conn: &mut Connection,
    batches: &[Batch],
    writes: &[Write],
    shared: &Shared,
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut actions =
            tx.prepare_cached("INSERT INTO actions (run, count, records) VALUES (?1, ?2, ?3)")?;
        for batch in batches {
            actions.execute(params![batch.run, batch.count, batch.bytes])?;
        }
        let mut cache = tx.prepare_cached(
            "INSERT OR REPLACE INTO cache (key, task, version, output_type, value, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut fan_out = tx.prepare_cached(
            "INSERT INTO fan_outs (run, id, parent, kind, task, grp, concurrency, started,
                 succeeded, failed, cancelled, cached, replayed, started_at, ended_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        let mut log = tx.prepare_cached(
            "INSERT INTO logs (run, action, at, level, target, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut progress = tx.prepare_cached(
            "INSERT OR REPLACE INTO live_progress (run, at, lines) VALUES (?1, ?2, ?3)",
        )?;
        let mut run_end = tx.prepare_cached(
            "UPDATE runs SET status = ?2, error = ?3, ended_at = ?4, lost = ?5 WHERE seq = ?1",
        )?;
        for write in writes {
            match write {
                Write::Cache(row) => {
                    cache.execute(params![
                        row.key,
                        row.task,
                        row.version,
                        row.output_type,
                        &*row.value,
                        millis(SystemTime::now()),
                    ])?;
                }
                Write::Log(run, line) => {
                    log.execute(params![
                        run,
                        line.action.map(|a| a.0.to_be_bytes()),
                        millis(line.at),
                        line.level,
                        line.target,
                        line.message,
                    ])?;
                }
                Write::Progress(run, lines) => {
                    progress.execute(params![run, millis(SystemTime::now()), lines])?;
                }
                Write::FanOut(run, f) => {
                    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                    fan_out.execute(params![
                        run,
                        f.id.0.to_be_bytes(),
                        f.parent.0.to_be_bytes(),
                        f.kind.as_str(),
                        f.task,
                        f.group,
                        f.concurrency,
                        count(f.started),
                        count(f.succeeded),
                        count(f.failed),
                        count(f.cancelled),
                        count(f.cached),
                        count(f.replayed),
                        millis(f.started_at),
                        millis(f.ended_at),
                    ])?;
                }
                Write::RunEnd(run, end) => {
                    let lost = lock(&shared.lost).get(run).map_or(0, |l| l.actions);
                    run_end.execute(params![
                        run,
                        end.status.as_str(),
                        end.error.as_ref().map(error_json),
                        millis(SystemTime::now()),
                        i64::try_from(lost).unwrap_or(i64::MAX),
                    ])?;
                }
                Write::Flush(_) => {}
            }
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::MAX_BUFFERED;
    use crate::Store;
    use flyte_core::record::{ActionStatus, Origin};
    use flyte_core::store::{ActionEnd, NewRun, OutputRef, RunKey, RunLog, RunReader, TaskCache};
    use flyte_core::ActionId;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    /// A store of its own in a scratch folder, with run `id` begun in it.
    fn store_with_run(folder: &str, id: &str) -> (std::path::PathBuf, Store, RunKey) {
        let home = std::env::temp_dir().join(format!("{folder}-{}", std::process::id()));
        let store = Store::open(&home).unwrap();
        let run = store
            .begin_run(&NewRun {
                id,
                name: None,
                root_task: "t",
                root_action: ActionId(1),
                inputs: None,
            })
            .unwrap();
        (home, store, run)
    }

    /// Item `index` of fan-out 2 under action 1, a task that succeeded
    /// with `output`.
    fn succeeded_item<'a>(
        id: ActionId,
        index: u64,
        task: &'static str,
        output: &'a [u8],
    ) -> ActionEnd<'a> {
        ActionEnd {
            id,
            parent: Some(ActionId(1)),
            item: Some((ActionId(2), index)),
            task,
            group: None,
            status: ActionStatus::Succeeded,
            attempts: 1,
            queued_at: SystemTime::now(),
            started_at: SystemTime::now(),
            ended_at: SystemTime::now(),
            attempt_times: &[],
            error: None,
            origin: Origin::Executed,
            output: Some(OutputRef::Bytes(output)),
        }
    }

    /// When the disk is slower than the tasks, the tasks wait for it: the
    /// buffer stays bounded and no record is dropped.
    #[test]
    fn a_writer_that_falls_behind_makes_reporters_wait_and_loses_nothing() {
        let (home, store, run) = store_with_run("flyte-writer-test", "r-backpressure");
        // Another connection holds the write lock: the writer cannot commit.
        let blocker = rusqlite::Connection::open(home.join("flyte.db")).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

        // About 7 MB of records (35 bytes each): far more than may wait.
        const RECORDS: u64 = 200_000;
        let reported = Arc::new(AtomicU64::new(0));
        let reporter = {
            let (store, reported) = (store.clone(), Arc::clone(&reported));
            std::thread::spawn(move || {
                for i in 0..RECORDS {
                    let output = i.to_le_bytes();
                    let id = ActionId(u128::from(i) * 0x9E37_79B9_7F4A_7C15);
                    store.record_action(run, &succeeded_item(id, i, "t", &output));
                    reported.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        std::thread::sleep(Duration::from_millis(500));
        let waiting = reported.load(Ordering::SeqCst);
        assert!(waiting < RECORDS, "the reporter did not wait: {waiting}");
        // What waits is bounded: the batch the writer took, and one full
        // buffer (a record is at least 30 bytes here).
        assert!(
            waiting <= 2 * MAX_BUFFERED as u64 / 30 + 1,
            "{waiting} records waited"
        );

        blocker.execute_batch("COMMIT").unwrap();
        reporter.join().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(RunLog::flush(&store)).unwrap();
        let stored: i64 = blocker
            .query_row(
                "SELECT sum(count) FROM actions WHERE run = ?1",
                [run.0],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored as u64, RECORDS, "every record is on disk");
        assert!(store.lost(run.0).is_none());
        drop(blocker);
        std::fs::remove_dir_all(&home).ok();
    }

    /// Regression: an output over SQLite's limit on a value (1 GB) failed
    /// the commit of its whole batch, every other record in it lost, with
    /// an error that named neither the file nor the fix. Now it alone is
    /// left out of its record, and the run's end says so.
    #[test]
    fn an_output_over_the_limit_is_left_out_and_the_run_is_told_which_and_why() {
        use flyte_core::record::RunStatus;
        use flyte_core::store::{CacheEntry, RunEnd, StoreError};
        let (home, store, run) = store_with_run("flyte-too-large", "r-too-large");
        // Zeroed by the allocator and never touched: no real memory.
        let huge = vec![0u8; crate::actions::MAX_VALUE + 1];
        let end = |i: u64, output: &[u8]| {
            let id = ActionId(u128::from(i) + 10);
            store.record_action(run, &succeeded_item(id, i, "env.big", output));
        };
        end(0, b"small");
        end(1, &huge);
        end(2, b"small too");
        store.put(CacheEntry {
            key: [7; 32],
            task: "env.big",
            version: "1",
            output_type: "Vec<u8>",
            value: huge.into(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let closed = runtime.block_on(store.end_run(
            run,
            RunEnd {
                status: RunStatus::Succeeded,
                error: None,
            },
        ));
        assert_eq!(closed.lost_actions, 1);
        assert!(!closed.end_lost);
        let error = closed.error.expect("the run is told why");
        assert!(matches!(error, StoreError::TooLarge { .. }), "{error:?}");
        let message = error.to_string();
        for part in ["env.big", "flyte.db", "858.3 MiB", "by reference"] {
            assert!(message.contains(part), "{part} in: {message}");
        }
        // The other records, and this one's status, are kept.
        let actions = store.all_actions(run, true).unwrap();
        assert_eq!(actions.len(), 3);
        let output = |i: usize| actions[i].output_bytes.as_deref();
        assert_eq!(output(0), Some(&b"small"[..]));
        assert_eq!(output(1), None);
        assert_eq!(actions[1].status, ActionStatus::Succeeded);
        assert_eq!(output(2), Some(&b"small too"[..]));
        assert_eq!(store.get(&[7; 32]).unwrap(), None, "not cached");
        std::fs::remove_dir_all(&home).ok();
    }
}
