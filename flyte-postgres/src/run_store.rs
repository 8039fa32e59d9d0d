//! The store's capabilities on PostgreSQL: runs and their actions (the
//! record beside the queue), fan-outs, the task cache, reading and
//! operating runs, and the fleet's work queue.

use crate::listen::CANCELLED;
use crate::rows::{
    action_record, encode_error, id_from_sql, id_to_sql, run_record, ACTION_COLUMNS,
    ACTION_COLUMNS_WITH_OUTPUT, RUN_COLUMNS,
};
use crate::writer::Write;
use crate::{pg_error, PgFailure, PgStore, Shared};
use flyte_core::backend::RunStore;
use flyte_core::codec;
use flyte_core::queue::WorkQueue;
use flyte_core::record::{ActionRecord, FanOutRecord, RunRecord};
use flyte_core::store::{
    ActionEnd, CacheEntry, CacheInfo, LogLine, NewRun, OutputAt, RunClosed, RunEnd, RunFilter,
    RunKey, RunLog, RunOperations, RunReader, RunRef, StoreError, StoreFuture, TaskCache,
};
use flyte_core::sync::lock;
use flyte_core::ActionId;
use std::collections::HashMap;
use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::SystemTime;

/// Actions read per page by [`RunReader::actions`].
const PAGE: i64 = 10_000;

impl PgStore {
    /// Runs `query` with a pooled connection on the store's runtime,
    /// blocking this thread until it is done.
    fn query<T, F, Fut>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>, deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, PgFailure>> + Send,
    {
        let shared = Arc::clone(&self.shared);
        self.shared.bridge.block(async move {
            let location = shared.location.clone();
            let client = shared
                .pool
                .get()
                .await
                .map_err(|e| pg_error(&location, e))?;
            query(shared, client)
                .await
                .map_err(|e| pg_error(&location, e))
        })?
    }
}

impl RunStore for PgStore {
    fn location(&self) -> String {
        self.shared.location.clone()
    }

    flyte_core::every_capability!();

    fn queue(&self) -> Option<Arc<dyn WorkQueue>> {
        Some(Arc::new(self.clone()))
    }
}

impl RunLog for PgStore {
    fn find_run(&self, run: RunRef<'_>) -> Result<Option<(RunKey, RunRecord)>, StoreError> {
        let (column, value) = match run {
            RunRef::Id(id) => ("id", id.to_owned()),
            RunRef::Name(name) => ("name", name.to_owned()),
        };
        self.query(move |_, client| async move {
            let row = client
                .query_opt(
                    &format!("SELECT {RUN_COLUMNS} FROM flyte_runs WHERE {column} = $1"),
                    &[&value],
                )
                .await?;
            Ok(row.map(|r| {
                let (key, run) = run_record(&r);
                (RunKey(key), run)
            }))
        })
    }

    fn run_inputs(&self, run: RunKey) -> Result<Option<Vec<u8>>, StoreError> {
        self.query(move |_, client| async move {
            let row = client
                .query_opt("SELECT inputs FROM flyte_runs WHERE key = $1", &[&run.0])
                .await?;
            Ok(row.and_then(|r| r.get(0)))
        })
    }

    fn begin_run(&self, run: &NewRun<'_>) -> Result<RunKey, StoreError> {
        let (id, name, task) = (
            run.id.to_owned(),
            run.name.map(str::to_owned),
            run.root_task.to_owned(),
        );
        let (root, inputs) = (id_to_sql(run.root_action), run.inputs.map(<[u8]>::to_vec));
        let taken = format!(
            "run id {} or name {:?} is taken in this store: pick another name",
            run.id,
            run.name.unwrap_or("")
        );
        self.query(move |shared, client| async move {
            let me = shared.process.key().await.map_err(PgFailure::Store)?;
            let row = client
                .query_opt(
                    "INSERT INTO flyte_runs (id, name, root_task, root_action, inputs, status,
                         started_at, driver)
                     VALUES ($1, $2, $3, $4, $5, 'running', now(), $6)
                     ON CONFLICT DO NOTHING RETURNING key",
                    &[&id, &name, &task, &root, &inputs, &me],
                )
                .await?;
            Ok(row.map(|r| RunKey(r.get(0))))
        })?
        .ok_or_else(|| StoreError::backend("postgres", std::io::Error::other(taken)))
    }

    fn resume_run(&self, run: RunKey, id: &str) -> Result<HashMap<ActionId, OutputAt>, StoreError> {
        let busy = StoreError::RunBusy { id: id.to_owned() };
        let resumed = self.query(move |shared, client| async move {
            let me = shared.process.key().await.map_err(PgFailure::Store)?;
            // A run whose driver lives is busy; one whose driver died is
            // taken over.
            let n = client
                .execute(
                    "UPDATE flyte_runs SET status = 'running', executions = executions + 1,
                         ended_at = NULL, error = NULL, driver = $2, abort_requested_at = NULL
                     WHERE key = $1 AND NOT (status = 'running' AND EXISTS (
                         SELECT 1 FROM flyte_processes p
                         WHERE p.key = flyte_runs.driver AND p.lease_until > now()))",
                    &[&run.0, &me],
                )
                .await?;
            Ok(n == 1)
        })?;
        if !resumed {
            return Err(busy);
        }
        // Nothing to replay from here: a resumed run submits its calls
        // again, and the rows of those that succeeded answer at once.
        Ok(HashMap::new())
    }

    fn recorded_output(&self, _at: OutputAt) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    fn record_action(&self, run: RunKey, end: &ActionEnd<'_>) {
        match end.to_record() {
            Ok(record) => self.shared.writer.send(Write::Action {
                run: run.0,
                record: Box::new(record),
            }),
            Err(e) => tracing::warn!("flyte: an action's output was not stored: {}", e.message()),
        }
    }

    fn record_fan_out(&self, run: RunKey, fan_out: &FanOutRecord) {
        match codec::encode(fan_out) {
            Ok(bytes) => self.shared.writer.send(Write::FanOut {
                run: run.0,
                id: fan_out.id,
                bytes,
            }),
            // The run's end says what it lost, and why.
            Err(e) => {
                tracing::error!(
                    "flyte store: the record of fan-out {:032x} not written: {e}",
                    fan_out.id.0
                );
                self.shared
                    .writer
                    .lost_one(run.0, StoreError::backend("postgres", e));
            }
        }
    }

    fn end_run(&self, run: RunKey, end: RunEnd) -> StoreFuture<'_, RunClosed> {
        Box::pin(async move {
            let flushed = self.shared.writer.flush().await;
            let lost = self.shared.writer.take_lost(run.0);
            let shared = Arc::clone(&self.shared);
            let written = self
                .shared
                .bridge
                .run(async move {
                    let written = write_end(&shared, run, end, lost.count).await;
                    written.map_err(|e| shared.error(e))
                })
                .await
                .and_then(|r| r);
            let error = lost
                .error
                .or(flushed.err())
                .or(written.as_ref().err().cloned());
            RunClosed {
                lost_actions: lost.count,
                end_lost: written.is_err(),
                error,
            }
        })
    }

    fn release_run(&self, run: RunKey) {
        let shared = Arc::clone(&self.shared);
        self.shared.bridge.spawn(async move {
            let Ok(client) = shared.pool.get().await else {
                return;
            };
            let _ = client
                .execute(
                    "UPDATE flyte_runs SET status = 'killed', ended_at = now(), driver = NULL
                     WHERE key = $1 AND status = 'running'",
                    &[&run.0],
                )
                .await;
        });
    }

    fn flush(&self) -> StoreFuture<'_, Result<(), StoreError>> {
        Box::pin(self.shared.writer.flush())
    }
}

impl TaskCache for PgStore {
    fn get(&self, key: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = lock(&self.shared.writer.unwritten_cache).get(key) {
            return Ok(Some(value.to_vec()));
        }
        let key = key.to_vec();
        self.query(move |_, client| async move {
            let row = client
                .query_opt("SELECT value FROM flyte_cache WHERE key = $1", &[&key])
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn put(&self, entry: CacheEntry) {
        lock(&self.shared.writer.unwritten_cache).insert(entry.key, Arc::clone(&entry.value));
        self.shared.writer.send(Write::Cache(entry));
    }

    fn entries(&self) -> Result<Vec<CacheInfo>, StoreError> {
        self.query(move |_, client| async move {
            let rows = client
                .query(
                    "SELECT key, task, version, output_type, octet_length(value), created_at
                     FROM flyte_cache ORDER BY created_at",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .filter_map(|r| {
                    let key: Vec<u8> = r.get(0);
                    Some(CacheInfo::new(
                        key.try_into().ok()?,
                        r.get(1),
                        r.get(2),
                        r.get(3),
                        r.get::<_, i32>(4).max(0) as u64,
                        r.get(5),
                    ))
                })
                .collect())
        })
    }

    fn remove(&self, keys: &[[u8; 32]]) -> Result<u64, StoreError> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        self.query(move |_, client| async move {
            Ok(client
                .execute("DELETE FROM flyte_cache WHERE key = ANY ($1)", &[&keys])
                .await?)
        })
    }
}

impl RunReader for PgStore {
    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let status = filter.status.map(|s| s.as_str().to_owned());
        let task = filter.task.clone();
        let name = filter.name.clone();
        let since = filter.since;
        let limit = filter.limit.map(|l| l as i64);
        let offset = filter.offset as i64;
        self.query(move |_, client| async move {
            let rows = client
                .query(
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM flyte_runs
                         WHERE ($1::text IS NULL OR status = $1)
                           AND ($2::text IS NULL OR root_task = $2)
                           AND ($3::text IS NULL OR name = $3)
                           AND ($4::timestamptz IS NULL OR started_at >= $4)
                         ORDER BY key DESC LIMIT $5 OFFSET $6"
                    ),
                    &[&status, &task, &name, &since, &limit, &offset],
                )
                .await?;
            Ok(rows.iter().map(|r| run_record(r).1).collect())
        })
    }

    fn actions(
        &self,
        run: RunKey,
        outputs: bool,
        each: &mut dyn FnMut(Vec<ActionRecord>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let columns = if outputs {
            ACTION_COLUMNS_WITH_OUTPUT
        } else {
            ACTION_COLUMNS
        };
        let mut after = 0i64;
        loop {
            let page: Vec<(i64, ActionRecord)> = self.query(move |_, client| async move {
                let rows = client
                    .query(
                        &format!(
                            "SELECT {columns}, a.seq
                             FROM flyte_actions a LEFT JOIN LATERAL (
                                 SELECT started_at FROM flyte_queue q
                                 WHERE q.run = a.run AND q.id = a.id AND q.state = 'running'
                                 LIMIT 1) q ON true
                             WHERE a.run = $1 AND a.seq > $2 ORDER BY a.seq LIMIT $3"
                        ),
                        &[&run.0, &after, &PAGE],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| (r.get::<_, i64>(r.len() - 1), action_record(r)))
                    .collect())
            })?;
            let Some(&(last, _)) = page.last() else {
                return Ok(());
            };
            after = last;
            let full = page.len() as i64 == PAGE;
            if each(page.into_iter().map(|(_, a)| a).collect()).is_break() || !full {
                return Ok(());
            }
        }
    }

    fn fan_outs(&self, run: RunKey) -> Result<Vec<FanOutRecord>, StoreError> {
        self.query(move |_, client| async move {
            let rows = client
                .query(
                    "SELECT record FROM flyte_fan_outs WHERE run = $1 ORDER BY seq",
                    &[&run.0],
                )
                .await?;
            Ok(rows
                .iter()
                .filter_map(|r| codec::decode(&r.get::<_, Vec<u8>>(0)).ok())
                .collect())
        })
    }

    fn ended_actions(&self, run: RunKey) -> Result<u64, StoreError> {
        self.query(move |_, client| async move {
            let row = client
                .query_one(
                    "SELECT count(*) FROM flyte_actions
                     WHERE run = $1 AND state IN ('succeeded', 'failed', 'cancelled')",
                    &[&run.0],
                )
                .await?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }
}

impl RunOperations for PgStore {
    fn request_abort(&self, run: RunKey) -> Result<(), StoreError> {
        self.query(move |_, client| async move {
            client
                .execute(
                    "UPDATE flyte_runs SET abort_requested_at = now() WHERE key = $1",
                    &[&run.0],
                )
                .await?;
            Ok(())
        })
    }

    fn abort_requested(&self, run: RunKey) -> Result<bool, StoreError> {
        self.query(move |_, client| async move {
            let row = client
                .query_opt(
                    "SELECT abort_requested_at IS NOT NULL FROM flyte_runs WHERE key = $1",
                    &[&run.0],
                )
                .await?;
            Ok(row.is_some_and(|r| r.get(0)))
        })
    }

    fn record_log(&self, run: RunKey, line: &LogLine) {
        self.shared.writer.send(Write::Log {
            run: run.0,
            line: Box::new(line.clone()),
        });
    }

    fn logs(&self, run: RunKey, after: u64, limit: usize) -> Result<Vec<LogLine>, StoreError> {
        self.query(move |_, client| async move {
            // Many processes log into one run, and a line's number is taken
            // before its transaction commits: while the run goes on, only
            // lines stored a second ago are given, so that `logs --follow`
            // never steps past one that is about to commit.
            let rows = client
                .query(
                    "SELECT l.seq, l.action, l.at, l.level, l.target, l.message
                     FROM flyte_logs l JOIN flyte_runs r ON r.key = l.run
                     WHERE l.run = $1 AND l.seq > $2
                       AND (r.status <> 'running' OR l.stored_at < now() - interval '1 second')
                     ORDER BY l.seq LIMIT $3",
                    &[
                        &run.0,
                        &(after as i64),
                        &(limit.min(i64::MAX as usize) as i64),
                    ],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    let mut line = LogLine::new(
                        r.get::<_, Option<Vec<u8>>>(1).map(id_from_sql),
                        r.get(2),
                        r.get::<_, String>(3),
                        r.get::<_, String>(4),
                        r.get::<_, String>(5),
                    );
                    line.seq = r.get::<_, i64>(0) as u64;
                    line
                })
                .collect())
        })
    }

    fn publish_progress(&self, run: RunKey, lines: &[String]) {
        self.shared.writer.send(Write::Progress {
            run: run.0,
            lines: lines.to_vec(),
        });
    }

    fn published_progress(
        &self,
        run: RunKey,
    ) -> Result<Option<(SystemTime, Vec<String>)>, StoreError> {
        self.query(move |_, client| async move {
            let row = client
                .query_opt(
                    "SELECT at, lines FROM flyte_progress WHERE run = $1",
                    &[&run.0],
                )
                .await?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
        })
    }

    fn delete_runs(&self, runs: &[RunKey]) -> Result<u64, StoreError> {
        let keys: Vec<i64> = runs.iter().map(|r| r.0).collect();
        self.query(move |_, client| async move {
            // The queue's rows of a run that ended are cancelled ones its
            // workers have not seen, and outcomes nobody collects: they go
            // with it, as its records (fan-outs and logs go by their
            // foreign key).
            let row = client
                .query_one(
                    "WITH gone AS (
                         DELETE FROM flyte_runs WHERE key = ANY ($1) AND status <> 'running'
                         RETURNING key
                     ), actions AS (
                         DELETE FROM flyte_actions WHERE run IN (SELECT key FROM gone)
                     ), queued AS (
                         DELETE FROM flyte_queue WHERE run IN (SELECT key FROM gone)
                     ), outcomes AS (
                         DELETE FROM flyte_outcomes WHERE run IN (SELECT key FROM gone)
                     ), starts AS (
                         DELETE FROM flyte_starts WHERE run IN (SELECT key FROM gone)
                     )
                     SELECT count(*) FROM gone",
                    &[&keys],
                )
                .await?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    /// Vacuums the tables runs are deleted from: their space is reused by
    /// the next runs (PostgreSQL gives a table's space back to the system
    /// only under an exclusive lock, `VACUUM FULL`, which a live fleet
    /// cannot take).
    fn compact(&self) -> Result<(), StoreError> {
        self.query(move |_, client| async move {
            client
                .batch_execute(
                    "VACUUM flyte_actions, flyte_queue, flyte_outcomes, flyte_starts, \
                     flyte_fan_outs, flyte_logs, flyte_runs",
                )
                .await?;
            Ok(())
        })
    }
}

/// Writes how run `run` ended, and cancels what it left queued or running
/// anywhere in the fleet.
async fn write_end(shared: &Shared, run: RunKey, end: RunEnd, lost: u64) -> Result<(), PgFailure> {
    let client = shared.pool.get().await?;
    client
        .execute(
            "UPDATE flyte_runs SET status = $2, error = $3, ended_at = $4, driver = NULL,
                 lost_actions = lost_actions + $5
             WHERE key = $1",
            &[
                &run.0,
                &end.status.as_str(),
                &end.error.as_ref().and_then(encode_error),
                &SystemTime::now(),
                &(lost as i64),
            ],
        )
        .await?;
    let left = crate::process::cancel_runs(&client, &[run.0]).await?;
    if left > 0 {
        client
            .execute("SELECT pg_notify($1, '')", &[&CANCELLED])
            .await?;
    }
    Ok(())
}
