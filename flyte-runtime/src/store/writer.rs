//! The store's writer: one thread per store that writes what runs report in
//! batches, one transaction each, so that tasks never wait on the disk.
//!
//! The buffer is bounded: a run that reports faster than the disk can take
//! is slowed down rather than let memory grow or rows be dropped.

use super::actions::{encode_batch, ActionRow};
use super::{millis, open_connection, StoreError};
use flyte_core::TaskError;
use rusqlite::{params, Connection, TransactionBehavior};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// Writes waiting at most; past this, reporting blocks until the writer
/// has taken them.
const QUEUE: usize = 65_536;
/// Writes that make the writer start at once rather than linger.
const BATCH: usize = 8_192;
/// How long the writer lets writes gather before it commits them (unless a
/// flush or a full batch asks for it now): one commit per few milliseconds
/// rather than per few rows, since each commit locks and writes the file.
const LINGER: Duration = Duration::from_millis(5);
/// How often a failing batch is tried before it is given up (with an
/// error in the log); busy waits inside each try are SQLite's own.
const TRIES: u32 = 8;

/// One cached output.
#[derive(Debug)]
pub(crate) struct CacheRow {
    pub(crate) key: [u8; 32],
    pub(crate) task: &'static str,
    pub(crate) version: &'static str,
    pub(crate) output_type: &'static str,
    pub(crate) value: Vec<u8>,
}

/// How a run ended.
#[derive(Debug)]
pub(crate) struct RunEnd {
    pub(crate) seq: i64,
    pub(crate) status: &'static str,
    pub(crate) error: Option<TaskError>,
}

pub(crate) enum Write {
    Action(Box<ActionRow>),
    Cache(Box<CacheRow>),
    RunEnd(RunEnd),
    /// Answered once everything sent before it is committed.
    Flush(tokio::sync::oneshot::Sender<Result<(), StoreError>>),
}

/// The reporting side. Writes go into a shared buffer under a mutex: a push
/// is a lock and a `Vec::push`, and wakes the writer only when the buffer
/// was empty, is full, or holds a flush (a channel would wake the sleeping
/// writer on every send, a system call per action).
#[derive(Debug, Clone)]
pub(crate) struct Writer(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    buffer: Mutex<Buffer>,
    /// Wakes the writer thread.
    work: Condvar,
    /// Wakes reporters waiting for room.
    room: Condvar,
}

#[derive(Debug, Default)]
struct Buffer {
    writes: Vec<Write>,
    flush: bool,
}

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Write::Action(_) => "Action",
            Write::Cache(_) => "Cache",
            Write::RunEnd(_) => "RunEnd",
            Write::Flush(_) => "Flush",
        })
    }
}

fn lock(m: &Mutex<Buffer>) -> MutexGuard<'_, Buffer> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Writer {
    pub(crate) fn start(db: PathBuf) -> Result<Writer, StoreError> {
        let conn = open_connection(&db)?;
        // The writer touches the pages of whole runs: keep up to 64 MiB of
        // them in memory (SQLite's default is 2 MiB).
        conn.pragma_update(None, "cache_size", -65_536)?;
        let shared = Arc::new(Shared::default());
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("flyte-store-writer".into())
            .spawn(move || write_loop(conn, &writer))
            .map_err(StoreError::io(&db))?;
        Ok(Writer(shared))
    }

    pub(crate) fn send(&self, write: Write) {
        let shared = &*self.0;
        let mut buffer = lock(&shared.buffer);
        while buffer.writes.len() >= QUEUE {
            buffer = shared.room.wait(buffer).unwrap_or_else(|p| p.into_inner());
        }
        let flush = matches!(write, Write::Flush(_));
        let was_empty = buffer.writes.is_empty();
        buffer.writes.push(write);
        buffer.flush |= flush;
        let wake = was_empty || flush || buffer.writes.len() == BATCH;
        drop(buffer);
        if wake {
            shared.work.notify_one();
        }
    }

    /// Waits until everything sent so far is on disk.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Write::Flush(done));
        wait.await.unwrap_or(Err(StoreError::WriterStopped))
    }
}

fn write_loop(mut conn: Connection, shared: &Shared) {
    loop {
        let batch = {
            let mut buffer = lock(&shared.buffer);
            while buffer.writes.is_empty() {
                buffer = shared.work.wait(buffer).unwrap_or_else(|p| p.into_inner());
            }
            if !buffer.flush && buffer.writes.len() < BATCH {
                // Let the writes of the next few milliseconds join this commit.
                let (b, _) = shared
                    .work
                    .wait_timeout(buffer, LINGER)
                    .unwrap_or_else(|p| p.into_inner());
                buffer = b;
            }
            buffer.flush = false;
            // The next batch starts with room, not growing from nothing.
            std::mem::replace(&mut buffer.writes, Vec::with_capacity(BATCH))
        };
        shared.room.notify_all();
        let result = write_with_retries(&mut conn, &batch);
        for write in batch {
            if let Write::Flush(done) = write {
                let _ = done.send(result.clone());
            }
        }
    }
}

fn write_with_retries(conn: &mut Connection, batch: &[Write]) -> Result<(), StoreError> {
    let mut wait = Duration::from_millis(20);
    let mut tries = 1;
    loop {
        match write_batch(conn, batch) {
            Ok(()) => return Ok(()),
            Err(e) if tries < TRIES => {
                tracing::warn!("flyte store: a write failed (try {tries} of {TRIES}): {e}");
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(2));
                tries += 1;
            }
            Err(e) => {
                tracing::error!("flyte store: {} writes were lost: {e}", batch.len());
                return Err(StoreError::from(e));
            }
        }
    }
}

/// The batch's actions, grouped by run, in the order they came.
fn actions_by_run(batch: &[Write]) -> Vec<(i64, Vec<&ActionRow>)> {
    let mut runs: Vec<(i64, Vec<&ActionRow>)> = Vec::new();
    for write in batch {
        if let Write::Action(row) = write {
            match runs.iter_mut().find(|(run, _)| *run == row.run) {
                Some((_, rows)) => rows.push(row),
                None => runs.push((row.run, vec![row])),
            }
        }
    }
    runs
}

fn write_batch(conn: &mut Connection, batch: &[Write]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut actions =
            tx.prepare_cached("INSERT INTO actions (run, count, records) VALUES (?1, ?2, ?3)")?;
        for (run, rows) in actions_by_run(batch) {
            match encode_batch(&rows) {
                Ok(records) => {
                    actions.execute(params![run, rows.len() as i64, records])?;
                }
                // Only a TaskError whose own encoding fails could get here.
                Err(e) => tracing::error!("flyte store: {} actions not recorded: {e}", rows.len()),
            }
        }
        let mut cache = tx.prepare_cached(
            "INSERT OR REPLACE INTO cache (key, task, version, output_type, value, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut run_end = tx.prepare_cached(
            "UPDATE runs SET status = ?2, error = ?3, ended_at = ?4 WHERE seq = ?1",
        )?;
        for write in batch {
            match write {
                Write::Action(_) => {} // written above, a batch per run
                Write::Cache(row) => {
                    cache.execute(params![
                        row.key,
                        row.task,
                        row.version,
                        row.output_type,
                        row.value,
                        millis(SystemTime::now()),
                    ])?;
                }
                Write::RunEnd(end) => {
                    run_end.execute(params![
                        end.seq,
                        end.status,
                        end.error.as_ref().map(super::error_json),
                        millis(SystemTime::now()),
                    ])?;
                }
                Write::Flush(_) => {}
            }
        }
    }
    tx.commit()
}
