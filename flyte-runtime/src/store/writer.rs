//! The store's writer: one thread per store that writes what runs report in
//! batches, one transaction each, so that tasks never wait on the disk.
//!
//! The channel is bounded: a run that reports faster than the disk can
//! take is slowed down rather than let memory grow or rows be dropped.

use super::{millis, open_connection, StoreError};
use crate::tree::{ActionStatus, Origin};
use flyte_core::{ActionId, TaskError};
use rusqlite::{params, Connection, TransactionBehavior};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Writes waiting at most; past this, reporting blocks.
const QUEUE: usize = 16_384;
/// Writes per transaction at most.
const BATCH: usize = 8_192;
/// How long a batch waits for more writes before it is committed (unless a
/// flush asks for it now): one commit per few milliseconds rather than per
/// few rows, since each commit locks and writes the file.
const LINGER: Duration = Duration::from_millis(5);
/// How often a failing batch is tried before it is given up (with an
/// error in the log); busy waits inside each try are SQLite's own.
const TRIES: u32 = 8;

/// One action as it ended.
#[derive(Debug)]
pub(crate) struct ActionRow {
    pub(crate) run: i64,
    pub(crate) id: ActionId,
    pub(crate) parent: Option<ActionId>,
    /// The fan-out and index, for a `map`/`gather` item.
    pub(crate) item: Option<(ActionId, u64)>,
    pub(crate) task: &'static str,
    pub(crate) group: Option<Arc<str>>,
    pub(crate) status: ActionStatus,
    pub(crate) attempts: u32,
    pub(crate) started_at: SystemTime,
    pub(crate) ended_at: SystemTime,
    pub(crate) error: Option<TaskError>,
    pub(crate) origin: Origin,
    pub(crate) output: Option<Vec<u8>>,
}

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

/// The sending side; the thread ends when the last sender is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Writer(SyncSender<Write>);

impl Writer {
    pub(crate) fn start(db: PathBuf) -> Result<Writer, StoreError> {
        let conn = open_connection(&db)?;
        // The writer touches the pages of whole runs: keep up to 64 MiB of
        // them in memory (SQLite's default is 2 MiB).
        conn.pragma_update(None, "cache_size", -65_536)?;
        let (send, receive) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("flyte-store-writer".into())
            .spawn(move || write_loop(conn, receive))
            .map_err(|source| StoreError::Io {
                path: db,
                source: source.into(),
            })?;
        Ok(Writer(send))
    }

    pub(crate) fn send(&self, write: Write) {
        // The thread only ends with the process; a closed channel means it
        // panicked, which `write_loop` is written not to do.
        if self.0.send(write).is_err() {
            tracing::error!("the flyte store writer has stopped: a write was lost");
        }
    }

    /// Waits until everything sent so far is on disk.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Write::Flush(done));
        wait.await.unwrap_or(Err(StoreError::WriterStopped))
    }
}

fn write_loop(mut conn: Connection, receive: Receiver<Write>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Ok(first) = receive.recv() {
        let deadline = Instant::now() + LINGER;
        let mut flush = matches!(first, Write::Flush(_));
        batch.push(first);
        while batch.len() < BATCH && !flush {
            let write = match receive.try_recv() {
                Ok(write) => write,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    match receive.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(write) => write,
                        Err(_) => break, // lingered long enough (or disconnected)
                    }
                }
            };
            flush = matches!(write, Write::Flush(_));
            batch.push(write);
        }
        let result = write_with_retries(&mut conn, &batch);
        for write in batch.drain(..) {
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

fn write_batch(conn: &mut Connection, batch: &[Write]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut action = tx.prepare_cached(
            "INSERT INTO actions (run, id, parent, fan_out, item, task, grp, status,
                 attempts, started_at, ended_at, error, origin, output)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        let mut cache = tx.prepare_cached(
            "INSERT OR REPLACE INTO cache (key, task, version, output_type, value, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut run_end = tx.prepare_cached(
            "UPDATE runs SET status = ?2, error = ?3, ended_at = ?4 WHERE seq = ?1",
        )?;
        for write in batch {
            match write {
                Write::Action(row) => {
                    action.execute(params![
                        row.run,
                        row.id.0.to_be_bytes(),
                        row.parent.map(|p| p.0.to_be_bytes()),
                        row.item.map(|(f, _)| f.0.to_be_bytes()),
                        row.item.map(|(_, i)| i as i64),
                        row.task,
                        row.group.as_deref(),
                        super::status_str(row.status),
                        row.attempts,
                        millis(row.started_at),
                        millis(row.ended_at),
                        row.error.as_ref().map(super::error_json),
                        super::origin_str(row.origin),
                        row.output,
                    ])?;
                }
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
