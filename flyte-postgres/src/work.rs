//! The worker side of the queue: claiming what a worker can run, in
//! batches, with environments' concurrency held across the fleet;
//! completing; cancellations; leaving.

use crate::listen::QUEUED;
use crate::process::{heartbeat, hostname, register};
use crate::rows::{id_from_sql, id_to_sql, task_key};
use crate::writer::Write;
use crate::{PgFailure, PgStore, RunName, Shared, GIVE_UP_AFTER};
use flyte_core::queue::{
    ClaimOf, Claimed, Completion, Settled, Submit, WorkQueue, WorkerInfo, WorkerKey,
};
use flyte_core::store::{RunKey, StoreError, StoreFuture};
use flyte_core::sync::lock;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// What a claim returns of each action it took: its queue row `q` and
/// its record `a`.
///
/// A record is read through `LATERAL (... LIMIT 1)`, which PostgreSQL
/// cannot turn into a join: it is one lookup by primary key per row,
/// whatever the statistics say. As a join, the planner could hash the
/// whole actions table for a few claimed rows (a generic plan does not
/// know the claim's size): a fleet's second run was then four times
/// slower than its first.
macro_rules! claimed_columns {
    () => {
        "a.run, a.id, a.parent, a.idx, a.task, a.grp, a.input, q.claims, a.execution,
         a.retries, a.timeout_ms, q.no_worker_ms"
    };
}

/// The record `a` of queue row `q`, by primary key (see [`claimed_columns`]).
macro_rules! record_of_q {
    () => {
        "LATERAL (SELECT * FROM flyte_actions a WHERE a.run = q.run AND a.id = q.id LIMIT 1) a"
    };
}

/// In environments without a fleet-wide limit: the function
/// `flyte_claim` of migration 8 (its plan walks the queued index in order
/// whatever the statistics), the same claim as [`CLAIM_LIMITED`] but for
/// its filter.
const CLAIM: &str = "SELECT * FROM flyte_claim($1, $2, $3, $4, $5)";

/// A claim of the oldest queued actions of tasks the worker has (`$2`, as
/// `name@version`) in environment `$7` of run `$6`, where a limit holds:
/// at most `$3`, for worker `$1` on `$4` (host:pid), with token `$5`. It
/// writes the queue rows only, each at the address its lock returned
/// (the lock follows a row updated meanwhile to its current version, and
/// holds it there until the update); the records are read (by primary
/// key) for what the worker needs.
///
/// Only a worker whose lease is live claims: one the fleet took for dead
/// (paused past its lease, say) gets nothing under its old key, however
/// soon after its resumption it asks. Its row is locked (`FOR SHARE`) for
/// the claim's length, so a reaper deleting it either waits for the claim
/// and then finds the claimed rows, or deletes it first and the claim
/// takes nothing: no order of the two leaves a row running under a key
/// that is gone.
const CLAIM_LIMITED: &str = concat!(
    "WITH me AS MATERIALIZED (
         SELECT key FROM flyte_processes WHERE key = $1 AND lease_until > now()
         FOR SHARE
     ), picked AS (
         SELECT ctid AS at FROM flyte_queue
         WHERE state = 'queued' AND task = ANY ($2) AND run = $6 AND env = $7
           AND EXISTS (SELECT 1 FROM me)
         ORDER BY seq LIMIT $3
         FOR UPDATE SKIP LOCKED
     ), q AS (
         UPDATE flyte_queue u SET state = 'running', worker = $1,
             claims = u.claims + 1, started_at = now(), ran_on = $4, claim_token = $5
         FROM picked WHERE u.ctid = picked.at
         RETURNING u.run, u.id, u.claims, u.no_worker_ms
     )
     SELECT ",
    claimed_columns!(),
    " FROM q, ",
    record_of_q!()
);

/// What worker `$1` still runs of its claim with token `$2`, while its
/// lease is live (once it is not, the reaper queues those rows again).
const RECLAIM: &str = concat!(
    "SELECT ",
    claimed_columns!(),
    " FROM flyte_queue q, ",
    record_of_q!(),
    " WHERE q.worker = $1 AND q.claim_token = $2 AND q.state = 'running'
       AND EXISTS (SELECT 1 FROM flyte_processes WHERE key = $1 AND lease_until > now())"
);

/// Tells the claims of one process apart (with the worker's key).
static CLAIM_TOKENS: AtomicI64 = AtomicI64::new(1);

impl PgStore {
    /// Runs `step` on the store's runtime, for a caller on any runtime;
    /// its failure is named with the store's location.
    fn on_bridge<T, F, Fut>(&self, step: F) -> StoreFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, PgFailure>> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let inner = Arc::clone(&shared);
            let done = shared.bridge.run(async move { step(inner).await }).await?;
            done.map_err(|e| shared.error(e))
        })
    }
}

impl WorkQueue for PgStore {
    fn submit(&self, action: Submit) -> StoreFuture<'static, Result<Settled, StoreError>> {
        self.shared.submitter.submit(action)
    }

    fn register(&self, worker: WorkerInfo) -> StoreFuture<'_, Result<WorkerKey, StoreError>> {
        let tasks: Vec<String> = worker
            .tasks
            .iter()
            .map(|(name, version)| task_key(name, version))
            .collect();
        self.on_bridge(move |shared| async move {
            let key = register(&shared, worker.concurrency, &tasks).await?;
            lock(&shared.worker_tasks).insert(key, Arc::new(tasks));
            Ok(WorkerKey(key))
        })
    }

    fn claim(
        &self,
        worker: WorkerKey,
        max: usize,
    ) -> StoreFuture<'_, Result<Vec<Claimed>, StoreError>> {
        self.on_bridge(move |shared| async move { claim_again(&shared, worker.0, max).await })
    }

    fn work_hint(&self, timeout: Duration) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let _ = tokio::time::timeout(timeout, self.shared.hints.queued.notified()).await;
        })
    }

    fn complete(&self, done: Completion) {
        self.shared.writer.send(Write::Complete(Box::new(done)));
    }

    fn heartbeat(&self, worker: WorkerKey) -> StoreFuture<'_, Result<bool, StoreError>> {
        self.on_bridge(move |shared| async move { heartbeat(&shared, worker.0).await })
    }

    fn cancelled(&self, worker: WorkerKey) -> StoreFuture<'_, Result<Vec<ClaimOf>, StoreError>> {
        self.on_bridge(move |shared| async move { cancelled(&shared, worker.0).await })
    }

    fn release(
        &self,
        worker: WorkerKey,
        claims: Vec<ClaimOf>,
    ) -> StoreFuture<'_, Result<(), StoreError>> {
        self.on_bridge(move |shared| async move { release(&shared, worker.0, &claims).await })
    }

    fn leave(&self, worker: WorkerKey) -> StoreFuture<'_, Result<(), StoreError>> {
        let left = self.on_bridge(move |shared| async move {
            // Completions are tried until written; a worker stopped while
            // the database is away does not wait for it forever: what it
            // could not complete runs again elsewhere once its lease ends.
            let Ok(flushed) = tokio::time::timeout(GIVE_UP_AFTER, shared.writer.flush()).await
            else {
                return Err(PgFailure::Store(StoreError::Unreachable {
                    location: shared.location.clone(),
                    reason: format!(
                        "its completions were not written within {GIVE_UP_AFTER:?}; \
                         their actions run again on other workers"
                    ),
                }));
            };
            flushed?;
            leave(&shared, worker.0).await
        });
        Box::pin(left)
    }
}

/// Claims at most `max` actions for worker `worker`. A claim whose answer
/// was lost may have been taken by the server all the same: its actions
/// would stay running under a live lease, and nobody would run them. So
/// the next claim first asks for them by the lost claim's token.
async fn claim_again(shared: &Shared, worker: i64, max: usize) -> Result<Vec<Claimed>, PgFailure> {
    let lost = lock(&shared.lost_claims).remove(&worker);
    if let Some(token) = lost {
        let found = async {
            let client = shared.pool.get().await?;
            let rows = client.query(RECLAIM, &[&worker, &token]).await?;
            claimed(shared, &client, rows).await
        }
        .await;
        match found {
            Ok(found) if found.is_empty() => {}
            Ok(found) => {
                tracing::info!(
                    "flyte worker {worker}: {} actions of a claim whose answer was lost are run now",
                    found.len()
                );
                return Ok(found);
            }
            Err(e) => {
                lock(&shared.lost_claims).insert(worker, token);
                return Err(e);
            }
        }
    }
    let token = CLAIM_TOKENS.fetch_add(1, Ordering::Relaxed);
    let result = claim(shared, worker, max, token).await;
    if result.is_err() {
        lock(&shared.lost_claims).insert(worker, token);
    }
    result
}

/// Claims at most `max` actions for worker `worker`: first in environments
/// without a limit, then, one (run, environment) at a time under an
/// advisory lock, up to what its concurrency (actions running) and its
/// rate (actions claimed within the window) leave.
async fn claim(
    shared: &Shared,
    worker: i64,
    max: usize,
    token: i64,
) -> Result<Vec<Claimed>, PgFailure> {
    let mut client = shared.pool.get().await?;
    let known = lock(&shared.worker_tasks).get(&worker).cloned();
    let tasks = match known {
        Some(tasks) => tasks,
        None => Arc::new(worker_tasks(&client, worker).await?),
    };
    let tasks = &*tasks;
    let ran_on = format!("{}:{}", hostname(), std::process::id());
    let statement = client.prepare_cached(CLAIM).await?;
    let groups = client.prepare_cached(LIMITED_GROUPS).await?;
    let most = max as i64;
    let claim_params: [&(dyn ToSql + Sync); 5] = [&worker, &tasks, &most, &ran_on, &token];
    let group_params: [&(dyn ToSql + Sync); 1] = [&tasks];
    // Sent together (tokio-postgres pipelines requests polled at once; the
    // server runs them in order): one round trip for both, not two.
    let (rows, limited) = tokio::join!(
        client.query(&statement, &claim_params),
        client.query(&groups, &group_params)
    );
    let (mut rows, limited) = (rows?, limited?);
    for group in limited {
        let room = max.saturating_sub(rows.len());
        if room == 0 {
            break;
        }
        let (run, env): (i64, String) = (group.get(0), group.get(1));
        let (limit, rate_count, rate_per_ms): (i32, i32, i64) =
            (group.get(2), group.get(3), group.get(4));
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::bigint::text || '/' || $2, 7366))",
            &[&run, &env],
        )
        .await?;
        // Running now, and started (claimed) within the rate's window. A
        // parent that waits on children in a limited environment gives its
        // slot back while they are queued or running, as it does in one
        // process: a parent and its children in one environment of
        // concurrency 1 would otherwise wait for each other forever.
        let window = rate_per_ms as f64;
        let counts = tx
            .query_one(
                "SELECT (SELECT count(*) FROM flyte_queue a
                         WHERE a.run = $1 AND a.env = $2 AND a.state = 'running'
                           AND (a.env_limit > 0 OR a.rate_count > 0)
                           AND NOT EXISTS (
                               SELECT 1 FROM flyte_queue c
                               WHERE c.run = a.run AND c.parent = a.id AND c.env_limit > 0
                                 AND c.state IN ('queued', 'running'))),
                        (SELECT count(*) FROM flyte_starts
                         WHERE run = $1 AND env = $2
                           AND at > now() - $3::float8 * interval '1 millisecond')",
                &[&run, &env, &window],
            )
            .await?;
        let (running, started): (i64, i64) = (counts.get(0), counts.get(1));
        let mut take = room as i64;
        if limit > 0 {
            take = take.min(limit as i64 - running);
        }
        if rate_count > 0 {
            take = take.min(rate_count as i64 - started);
        }
        if take > 0 {
            let statement = tx.prepare_cached(CLAIM_LIMITED).await?;
            let got = tx
                .query(
                    &statement,
                    &[&worker, &tasks, &take, &ran_on, &token, &run, &env],
                )
                .await?;
            if rate_count > 0 && !got.is_empty() {
                // This claim's starts; those out of every window go.
                tx.execute(
                    "WITH gone AS (
                         DELETE FROM flyte_starts
                         WHERE run = $1 AND env = $2
                           AND at < now() - $4::float8 * interval '1 millisecond'
                     )
                     INSERT INTO flyte_starts (run, env, at)
                     SELECT $1, $2, now() FROM generate_series(1, $3::bigint)",
                    &[&run, &env, &(got.len() as i64), &window],
                )
                .await?;
            }
            rows.extend(got);
        }
        tx.commit().await?;
    }
    claimed(shared, &client, rows).await
}

/// The (run, environment) groups of limited environments with queued
/// actions of `$1`'s tasks, each then claimed under its own lock.
const LIMITED_GROUPS: &str = "
    SELECT DISTINCT run, env, env_limit, rate_count, rate_per_ms FROM flyte_queue
    WHERE state = 'queued' AND (env_limit > 0 OR rate_count > 0) AND task = ANY ($1)
    LIMIT 64";

/// The claimed actions of `rows` (of [`claimed_columns`]), with their runs'
/// ids and names.
async fn claimed(
    shared: &Shared,
    client: &deadpool_postgres::Client,
    rows: Vec<Row>,
) -> Result<Vec<Claimed>, PgFailure> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let runs = run_names(shared, client, &rows).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let run: i64 = row.get(0);
            let (run_id, run_name) = runs.get(&run).cloned().unwrap_or_default();
            Claimed {
                run: RunKey(run),
                run_id,
                run_name,
                execution: row.get::<_, i32>(8).max(1) as u32,
                id: id_from_sql(row.get(1)),
                parent: row.get::<_, Option<Vec<u8>>>(2).map(id_from_sql),
                index: row.get::<_, Option<i64>>(3).map(|i| i as u64),
                task: row.get(4),
                group: row.get(5),
                input: row.get::<_, Option<Vec<u8>>>(6).unwrap_or_default(),
                retries: row.get::<_, Option<i32>>(9).map(|r| r.max(0) as u32),
                timeout: row
                    .get::<_, Option<i64>>(10)
                    .map(|ms| Duration::from_millis(ms.max(0) as u64)),
                no_worker_after: Duration::from_millis(row.get::<_, i64>(11).max(0) as u64),
                claim: row.get::<_, i32>(7) as u32,
            }
        })
        .collect())
}

/// The tasks worker `worker` registered with, as `name@version`.
async fn worker_tasks(
    client: &deadpool_postgres::Client,
    worker: i64,
) -> Result<Vec<String>, PgFailure> {
    let row = client
        .query_opt(
            "SELECT tasks FROM flyte_processes WHERE key = $1",
            &[&worker],
        )
        .await?;
    Ok(row.map(|r| r.get(0)).unwrap_or_default())
}

/// The id and name of each run the claimed rows belong to, read once per
/// run (they never change).
async fn run_names(
    shared: &Shared,
    client: &deadpool_postgres::Client,
    rows: &[Row],
) -> Result<HashMap<i64, RunName>, PgFailure> {
    let mut keys: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut names = HashMap::with_capacity(keys.len());
    {
        let known = lock(&shared.run_names);
        keys.retain(|key| match known.get(key) {
            Some(name) => {
                names.insert(*key, name.clone());
                false
            }
            None => true,
        });
    }
    if keys.is_empty() {
        return Ok(names);
    }
    let found = client
        .query(
            "SELECT key, id, name FROM flyte_runs WHERE key = ANY ($1)",
            &[&keys],
        )
        .await?;
    let mut known = lock(&shared.run_names);
    // A worker that lives for months forgets the runs of long ago.
    if known.len() > 4096 {
        known.clear();
    }
    for row in &found {
        let name: RunName = (row.get(1), row.get(2));
        known.insert(row.get(0), name.clone());
        names.insert(row.get(0), name);
    }
    Ok(names)
}

/// The claims of `worker` that were cancelled. Read first, forgotten
/// after (by primary key, as in `submit::collect_once`): cancellations
/// lost with a dropped connection are read again.
async fn cancelled(shared: &Shared, worker: i64) -> Result<Vec<ClaimOf>, PgFailure> {
    let client = shared.pool.get().await?;
    let statement = client
        .prepare_cached(
            "SELECT run, id, claims FROM flyte_queue WHERE worker = $1 AND state = 'cancelled'",
        )
        .await?;
    let rows = client.query(&statement, &[&worker]).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let runs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let ids: Vec<&[u8]> = rows.iter().map(|r| r.get(1)).collect();
    let forget = client
        .prepare_cached("SELECT flyte_seen_cancelled($1::bigint[], $2::bytea[], $3)")
        .await?;
    client.execute(&forget, &[&runs, &ids, &worker]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                RunKey(r.get(0)),
                id_from_sql(r.get(1)),
                r.get::<_, i32>(2) as u32,
            )
        })
        .collect())
}

/// Queues again the actions of `claims` that worker `worker` still holds
/// under those claims, and wakes the workers.
async fn release(shared: &Shared, worker: i64, claims: &[ClaimOf]) -> Result<(), PgFailure> {
    if claims.is_empty() {
        return Ok(());
    }
    let runs: Vec<i64> = claims.iter().map(|c| c.0 .0).collect();
    let ids: Vec<Vec<u8>> = claims.iter().map(|c| id_to_sql(c.1)).collect();
    let numbers: Vec<i32> = claims.iter().map(|c| c.2 as i32).collect();
    let client = shared.pool.get().await?;
    let statement = client
        .prepare_cached(
            "SELECT pg_notify($5, '')
             WHERE flyte_release($1::bigint[], $2::bytea[], $3::integer[], $4) > 0",
        )
        .await?;
    client
        .query(&statement, &[&runs, &ids, &numbers, &worker, &QUEUED])
        .await?;
    Ok(())
}

/// Takes worker `worker` out: what it still runs is queued again.
async fn leave(shared: &Shared, worker: i64) -> Result<(), PgFailure> {
    let client = shared.pool.get().await?;
    let requeued = client
        .execute(
            "UPDATE flyte_queue SET state = 'queued', worker = NULL, queued_at = now(),
                 started_at = NULL, ran_on = NULL
             WHERE worker = $1 AND state = 'running'",
            &[&worker],
        )
        .await?;
    client
        .execute(
            "DELETE FROM flyte_queue WHERE worker = $1 AND state = 'cancelled'",
            &[&worker],
        )
        .await?;
    client
        .execute("DELETE FROM flyte_processes WHERE key = $1", &[&worker])
        .await?;
    if requeued > 0 {
        client
            .execute("SELECT pg_notify($1, '')", &[&QUEUED])
            .await?;
    }
    Ok(())
}
