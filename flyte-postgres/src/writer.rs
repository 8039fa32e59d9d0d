//! What runs and workers report, written in batches on the store's runtime:
//! action records, fan-outs, cache entries and, on the hot path of a fleet,
//! completions (one `UPDATE` per batch, and one notification).

use crate::bridge::Bridge;
use crate::listen::SETTLED;
use crate::rows::{encode_attempt_times, encode_error, id_to_sql, state_word};
use crate::{pg_error, retry_while_away, PgFailure};
use deadpool_postgres::Pool;

use flyte_core::queue::Completion;
use flyte_core::record::ActionRecord;
use flyte_core::store::{CacheEntry, LogLine, StoreError};
use flyte_core::sync::lock;
use flyte_core::ActionId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};

/// At most this many reports in one batch.
const BATCH: usize = 1000;

/// One thing to write.
pub(crate) enum Write {
    Action {
        run: i64,
        record: Box<ActionRecord>,
    },
    /// A fan-out's record, encoded when it was queued (so that one that
    /// does not encode is counted lost there, not written empty).
    FanOut {
        run: i64,
        id: ActionId,
        bytes: Vec<u8>,
    },
    Cache(CacheEntry),
    /// A line a task logged.
    Log {
        run: i64,
        line: Box<LogLine>,
    },
    /// What a progress display shows now (replaces what it showed).
    Progress {
        run: i64,
        lines: Vec<String>,
    },
    Complete(Box<Completion>),
    /// Answered once everything sent before it is written.
    Flush(oneshot::Sender<()>),
}

/// Records of a run that could not be written, for `end_run`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Lost {
    pub(crate) count: u64,
    pub(crate) error: Option<StoreError>,
}

/// The writer's address.
pub(crate) struct WriterHandle {
    tx: mpsc::UnboundedSender<Write>,
    lost: Arc<Mutex<HashMap<i64, Lost>>>,
    /// Cache entries queued and not yet written: a lookup finds them here.
    pub(crate) unwritten_cache: UnwrittenCache,
}

type UnwrittenCache = Arc<Mutex<HashMap<[u8; 32], Arc<[u8]>>>>;

impl WriterHandle {
    pub(crate) fn start(bridge: &Bridge, pool: Pool, location: String) -> WriterHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let lost = Arc::new(Mutex::new(HashMap::new()));
        let unwritten_cache = UnwrittenCache::default();
        let writer = Writer {
            pool,
            location,
            lost: Arc::clone(&lost),
            unwritten_cache: Arc::clone(&unwritten_cache),
        };
        bridge.spawn(writer.run(rx));
        WriterHandle {
            tx,
            lost,
            unwritten_cache,
        }
    }

    /// Queues `write`; a write queued after the store's runtime stopped is
    /// counted lost for its run.
    pub(crate) fn send(&self, write: Write) {
        let run = match &write {
            Write::Action { run, .. } | Write::FanOut { run, .. } => Some(*run),
            _ => None,
        };
        if self.tx.send(write).is_err() {
            if let Some(run) = run {
                self.lost_one(run, StoreError::WriterStopped);
            }
        }
    }

    /// Counts one record of run `run` lost, for `why`.
    pub(crate) fn lost_one(&self, run: i64, why: StoreError) {
        let mut lost = lock(&self.lost);
        let entry = lost.entry(run).or_default();
        entry.count += 1;
        entry.error = Some(why);
    }

    /// Resolves once everything queued so far is written (or given up).
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Write::Flush(tx))
            .map_err(|_| StoreError::WriterStopped)?;
        rx.await.map_err(|_| StoreError::WriterStopped)
    }

    /// What of run `run` could not be written, forgotten once read.
    pub(crate) fn take_lost(&self, run: i64) -> Lost {
        lock(&self.lost).remove(&run).unwrap_or_default()
    }
}

struct Writer {
    pool: Pool,
    location: String,
    lost: Arc<Mutex<HashMap<i64, Lost>>>,
    unwritten_cache: UnwrittenCache,
}

impl Writer {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Write>) {
        let mut batch = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            let mut flushes = Vec::new();
            let mut records = Vec::new();
            let mut completions = Vec::new();
            for write in batch.drain(..) {
                match write {
                    Write::Flush(done) => flushes.push(done),
                    Write::Complete(done) => completions.push(*done),
                    other => records.push(other),
                }
            }
            if !completions.is_empty() {
                self.complete(&completions).await;
            }
            if !records.is_empty() {
                self.records(records).await;
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    /// Writes completions, trying again until the database takes them: a
    /// completion lost would run its action again.
    async fn complete(&self, done: &[Completion]) {
        let mut pause = Duration::from_millis(50);
        loop {
            match write_completions(&self.pool, done).await {
                Ok(()) => return,
                Err(e) => {
                    let e = pg_error(&self.location, e);
                    tracing::warn!(
                        "flyte: cannot write {} completions yet ({e}); trying again",
                        done.len()
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Writes records in one transaction, trying again while the database
    /// is away (a restart, a dropped connection) for up to
    /// [`GIVE_UP_AFTER`]; what it refuses, or what is still unwritten then,
    /// is counted lost for its run.
    async fn records(&self, records: Vec<Write>) {
        let what = format!("{} records", records.len());
        let write = || write_records(&self.pool, &records);
        let Err(error) = retry_while_away(&self.location, &what, write).await else {
            self.forget_cached(&records);
            return;
        };
        tracing::warn!(
            "flyte: {} records could not be written: {error}",
            records.len()
        );
        let mut lost = lock(&self.lost);
        for write in &records {
            if let Write::Action { run, .. } | Write::FanOut { run, .. } = write {
                let entry = lost.entry(*run).or_default();
                entry.count += 1;
                entry.error = Some(error.clone());
            }
        }
        drop(lost);
        self.forget_cached(&records);
    }

    /// Cache entries are looked up in the database again once written (or
    /// given up).
    fn forget_cached(&self, records: &[Write]) {
        let mut unwritten = lock(&self.unwritten_cache);
        for write in records {
            if let Write::Cache(entry) = write {
                unwritten.remove(&entry.key);
            }
        }
    }
}

/// A batch of completions, each guarded by its claim number and state:
/// three statements for the batch on the server, each probing the primary
/// key once a completion (migration 9), and one notification for the
/// waiters when any was taken.
const COMPLETE: &str = "
    SELECT pg_notify($12, '')
    WHERE flyte_complete($1::bigint[], $2::bytea[], $3::integer[], $4::text[], $5::bytea[],
                         $6::bytea[], $7::integer[], $8::smallint[], $9::timestamptz[],
                         $10::timestamptz[], $11::bytea[]) > 0";

async fn write_completions(pool: &Pool, done: &[Completion]) -> Result<(), PgFailure> {
    let client = pool.get().await?;
    let n = done.len();
    let (mut runs, mut ids, mut claims, mut states) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut attempt_times = Vec::with_capacity(n);
    let (mut outputs, mut errors, mut attempts, mut origins, mut starts, mut ends) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for c in done {
        runs.push(c.run.0);
        ids.push(id_to_sql(c.id));
        claims.push(c.claim as i32);
        states.push(state_word(c.status));
        outputs.push(c.output.as_deref());
        errors.push(c.error.as_ref().and_then(encode_error));
        attempts.push(c.attempts as i32);
        origins.push(c.origin.code() as i16);
        starts.push(c.started_at);
        ends.push(c.ended_at);
        attempt_times.push(encode_attempt_times(&c.attempt_times));
    }
    let statement = client.prepare_cached(COMPLETE).await?;
    client
        .query(
            &statement,
            &[
                &runs,
                &ids,
                &claims,
                &states,
                &outputs,
                &errors,
                &attempts,
                &origins,
                &starts,
                &ends,
                &attempt_times,
                &SETTLED,
            ],
        )
        .await?;
    Ok(())
}

async fn write_records(pool: &Pool, records: &[Write]) -> Result<(), PgFailure> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let action = tx
        .prepare_cached(
            "INSERT INTO flyte_actions (run, id, parent, fan_out, idx, task, grp, state, attempts,
                 started_at, ended_at, error, origin, output, queued_at, attempt_times)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (run, id) DO UPDATE SET
                 state = EXCLUDED.state, attempts = EXCLUDED.attempts,
                 queued_at = EXCLUDED.queued_at, started_at = EXCLUDED.started_at,
                 ended_at = EXCLUDED.ended_at, attempt_times = EXCLUDED.attempt_times,
                 error = EXCLUDED.error, origin = EXCLUDED.origin, output = EXCLUDED.output",
        )
        .await?;
    let fan_out = tx
        .prepare_cached(
            "INSERT INTO flyte_fan_outs (run, id, record) VALUES ($1, $2, $3)
             ON CONFLICT (run, id) DO UPDATE SET record = EXCLUDED.record",
        )
        .await?;
    let cache = tx
        .prepare_cached(
            "INSERT INTO flyte_cache (key, task, version, output_type, value) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key) DO UPDATE SET task = EXCLUDED.task, version = EXCLUDED.version,
                 output_type = EXCLUDED.output_type, value = EXCLUDED.value, created_at = now()",
        )
        .await?;
    let log = tx
        .prepare_cached(
            "INSERT INTO flyte_logs (run, action, at, level, target, message)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    let progress = tx
        .prepare_cached(
            "INSERT INTO flyte_progress (run, lines) VALUES ($1, $2)
             ON CONFLICT (run) DO UPDATE SET lines = EXCLUDED.lines, at = now()",
        )
        .await?;
    for write in records {
        match write {
            Write::Action { run, record } => {
                let r = &**record;
                let (fan_out_id, index) = match r.item {
                    Some((f, i)) => (Some(id_to_sql(f)), Some(i as i64)),
                    None => (None, None),
                };
                tx.execute(
                    &action,
                    &[
                        run,
                        &id_to_sql(r.id),
                        &r.parent.map(id_to_sql),
                        &fan_out_id,
                        &index,
                        &r.task,
                        &r.group,
                        &state_word(r.status),
                        &(r.attempts as i32),
                        &r.started_at,
                        &r.ended_at.unwrap_or_else(SystemTime::now),
                        &r.error.as_ref().and_then(encode_error),
                        &(r.origin.code() as i16),
                        &r.output_bytes,
                        &r.queued_at,
                        &encode_attempt_times(&r.attempt_times),
                    ],
                )
                .await?;
            }
            Write::FanOut { run, id, bytes } => {
                tx.execute(&fan_out, &[run, &id_to_sql(*id), bytes]).await?;
            }
            Write::Cache(entry) => {
                tx.execute(
                    &cache,
                    &[
                        &&entry.key[..],
                        &entry.task,
                        &entry.version,
                        &entry.output_type,
                        &&entry.value[..],
                    ],
                )
                .await?;
            }
            Write::Log { run, line } => {
                tx.execute(
                    &log,
                    &[
                        run,
                        &line.action.map(id_to_sql),
                        &line.at,
                        &line.level,
                        &line.target,
                        &line.message,
                    ],
                )
                .await?;
            }
            Write::Progress { run, lines } => {
                tx.execute(&progress, &[run, lines]).await?;
            }
            Write::Complete(_) | Write::Flush(_) => {}
        }
    }
    Ok(tx.commit().await?)
}
