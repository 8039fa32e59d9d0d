//! The submitting side of the queue: a process that runs tasks which call
//! other tasks (the driver, or a worker running a parent) queues the calls
//! and waits for their outcomes.
//!
//! Submissions and cancellations are written in batches by one loop; a
//! second loop collects the outcomes addressed to this process (`waiter`),
//! woken by `flyte_settled` notifications and polling, and fails actions
//! that no live worker can run after their allowed wait.

use crate::listen::{CANCELLED, QUEUED};
use crate::rows::{decode_error, encode_error, id_to_sql, status_of, task_key, task_of_key};
use crate::{retry_while_away, PgFailure, Shared, GIVE_UP_AFTER};
use flyte_core::queue::{Settled, Submit};
use flyte_core::record::{ActionStatus, Origin};
use flyte_core::store::{StoreError, StoreFuture};
use flyte_core::sync::lock;
use flyte_core::{ErrorKind, TaskError};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;

/// How often outcomes are looked for without a notification.
const POLL: Duration = Duration::from_millis(100);
/// How often actions nobody can run are looked for.
const NO_WORKER_CHECK: Duration = Duration::from_secs(1);

/// (run, action id bytes).
type Key = (i64, Vec<u8>);
type Reply = oneshot::Sender<Result<Settled, StoreError>>;

enum Request {
    Submit(Box<Submit>),
    Cancel(Key),
}

/// Who waits for what.
#[derive(Default)]
struct Pending {
    /// By (run, action).
    waiting: HashMap<Key, Waiting>,
}

/// A submitted action's waiter.
struct Waiting {
    reply: Reply,
    /// The execution of the run that submitted it.
    execution: u32,
    /// Its task's name and version, to tell whether a live worker has it.
    task: (&'static str, &'static str),
}

/// The submitting side; its loops start with the first submission.
pub(crate) struct Submitter {
    shared: Weak<Shared>,
    pending: Arc<Mutex<Pending>>,
    requests: OnceLock<mpsc::UnboundedSender<Request>>,
    /// Wakes the collector when the first action is pending.
    wake: Arc<tokio::sync::Notify>,
}

impl Submitter {
    pub(crate) fn new(shared: Weak<Shared>) -> Submitter {
        Submitter {
            shared,
            pending: Arc::default(),
            requests: OnceLock::new(),
            wake: Arc::default(),
        }
    }

    fn requests(&self) -> Option<&mpsc::UnboundedSender<Request>> {
        if let Some(tx) = self.requests.get() {
            return Some(tx);
        }
        let shared = self.shared.upgrade()?;
        Some(self.requests.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            shared.bridge.spawn(dispatch(self.shared.clone(), rx));
            shared.bridge.spawn(collect(
                self.shared.clone(),
                Arc::clone(&self.pending),
                Arc::clone(&self.wake),
            ));
            tx
        }))
    }

    /// Queues `action` and resolves with its outcome; dropping the future
    /// first cancels the action.
    pub(crate) fn submit(
        &self,
        action: Submit,
    ) -> StoreFuture<'static, Result<Settled, StoreError>> {
        let key = (action.run.0, id_to_sql(action.id));
        let (reply, outcome) = oneshot::channel();
        let Some(requests) = self.requests().cloned() else {
            return Box::pin(async { Err(StoreError::WriterStopped) });
        };
        let waiting = Waiting {
            reply,
            execution: action.execution,
            task: (action.task, action.version),
        };
        lock(&self.pending).waiting.insert(key.clone(), waiting);
        self.wake.notify_one();
        let _ = requests.send(Request::Submit(Box::new(action)));
        let guard = CancelOnDrop {
            key,
            pending: Arc::clone(&self.pending),
            requests: Some(requests),
        };
        Box::pin(async move {
            let settled = outcome.await.unwrap_or(Err(StoreError::WriterStopped));
            guard.disarm();
            settled
        })
    }
}

/// Cancels a submitted action whose waiter went away before its outcome.
struct CancelOnDrop {
    key: Key,
    pending: Arc<Mutex<Pending>>,
    /// `None` once the outcome arrived.
    requests: Option<mpsc::UnboundedSender<Request>>,
}

impl CancelOnDrop {
    /// The outcome arrived: nothing to cancel.
    fn disarm(mut self) {
        self.requests = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(requests) = self.requests.take() {
            lock(&self.pending).waiting.remove(&self.key);
            let _ = requests.send(Request::Cancel(std::mem::take(&mut self.key)));
        }
    }
}

/// Writes submissions and cancellations, a batch at a time, in the order
/// they came.
async fn dispatch(shared: Weak<Shared>, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut batch = Vec::with_capacity(1000);
    while rx.recv_many(&mut batch, 1000).await > 0 {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut submits: Vec<Box<Submit>> = Vec::new();
        let mut cancels = Vec::new();
        for request in batch.drain(..) {
            match request {
                Request::Submit(s) => submits.push(s),
                Request::Cancel(key) => cancels.push(key),
            }
        }
        // A batch holds one submission per action (the later wins).
        let mut seen = std::collections::HashSet::new();
        submits.reverse();
        submits.retain(|s| seen.insert((s.run.0, id_to_sql(s.id))));
        if !submits.is_empty() {
            let me = match shared.process.key().await {
                Ok(me) => me,
                Err(e) => {
                    fail_all(&shared, &submits, &e);
                    continue;
                }
            };
            let what = format!("{} submissions", submits.len());
            let write = || write_submits(&shared, me, &submits);
            match retry_while_away(&shared.location, &what, write).await {
                Ok(()) => analyze_on_growth(&shared, submits.len()),
                Err(e) => fail_all(&shared, &submits, &e),
            }
        }
        if !cancels.is_empty() {
            let what = format!("{} cancellations", cancels.len());
            let write = || write_cancels(&shared, &cancels);
            let _ = retry_while_away(&shared.location, &what, write).await;
        }
    }
}

/// How many actions this process submits before it first asks
/// PostgreSQL to analyze the actions table; then after four times as
/// many, and so on.
const ANALYZE_FIRST: u64 = 2000;

/// Counts `n` more submitted actions, and has the actions table analyzed
/// (on the store's runtime, off the submitting path) each time the count
/// passes the next threshold: 2,000, 8,000, 32,000, ... A new database's
/// tables have no statistics until autovacuum first looks at them (up to
/// a minute), and meanwhile the planner takes a table of 40,000 actions
/// for one of a few: a claim then sorted every queued row and a
/// collection walked the whole table once per row of its batch, so that a
/// fleet's first run was up to 8 times slower than the next.
fn analyze_on_growth(shared: &Arc<Shared>, n: usize) {
    let before = shared.submitted.fetch_add(n as u64, Ordering::Relaxed);
    let after = before + n as u64;
    let mut threshold = ANALYZE_FIRST;
    while threshold <= before {
        threshold = threshold.saturating_mul(4);
    }
    if after < threshold {
        return;
    }
    let store = Arc::clone(shared);
    shared.bridge.spawn(async move {
        let analyzed = async {
            let client = store.pool.get().await.map_err(PgFailure::from)?;
            // Only when the statistics know fewer than half the actions this
            // process alone submitted: a fleet's later runs find them right.
            let known: f32 = client
                .query_one(
                    "SELECT reltuples FROM pg_class WHERE oid = 'flyte_actions'::regclass",
                    &[],
                )
                .await?
                .get(0);
            if (known as f64) < after as f64 / 2.0 {
                client.batch_execute("ANALYZE flyte_actions").await?;
            }
            Ok::<(), PgFailure>(())
        };
        if let Err(e) = analyzed.await {
            let e = store.error(e);
            tracing::debug!("flyte: cannot analyze the actions table ({e})");
        }
    });
}

/// Answers every waiter with `e`.
fn answer_all(pending: &Mutex<Pending>, e: &StoreError) {
    let waiting = std::mem::take(&mut lock(pending).waiting);
    for (_, waiting) in waiting {
        let _ = waiting.reply.send(Err(e.clone()));
    }
}

/// Answers every submission of `submits` with `e`.
fn fail_all(shared: &Shared, submits: &[Box<Submit>], e: &StoreError) {
    let mut pending = lock(&shared.submitter.pending);
    for s in submits {
        if let Some(waiting) = pending.waiting.remove(&(s.run.0, id_to_sql(s.id))) {
            let _ = waiting.reply.send(Err(e.clone()));
        }
    }
}

/// Records and queues each action of the batch, addressed to waiter
/// `$16`; one that is there already is queued again only if it was
/// cancelled, or failed in an earlier execution of the run. Returns the
/// actions queued: the others are joined ([`JOIN`]). The queue rows are
/// made of what the record insert returns: no join, so no plan to go
/// wrong.
const SUBMIT: &str = "
    WITH recorded AS (
        INSERT INTO flyte_actions AS a (run, id, parent, fan_out, idx, task, version, grp,
            state, execution, env, env_limit, input, no_worker_ms, retries, timeout_ms,
            rate_count, rate_per_ms, queued_at)
        SELECT run, id, parent, fan_out, idx, task, version, grp, 'queued', execution, env,
            env_limit, input, no_worker_ms, retries, timeout_ms, rate_count, rate_per_ms, now()
        FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bigint[],
                    $6::text[], $7::text[], $8::text[], $9::integer[], $10::text[],
                    $11::integer[], $12::bytea[], $13::bigint[], $14::integer[],
                    $15::bigint[], $17::integer[], $18::bigint[])
            AS v(run, id, parent, fan_out, idx, task, version, grp, execution, env, env_limit,
                 input, no_worker_ms, retries, timeout_ms, rate_count, rate_per_ms)
        ON CONFLICT (run, id) DO UPDATE SET
            state = 'queued', execution = EXCLUDED.execution, version = EXCLUDED.version,
            attempts = 0, input = EXCLUDED.input, output = NULL, error = NULL, origin = 0,
            queued_at = now(), started_at = NULL, ended_at = NULL,
            no_worker_ms = EXCLUDED.no_worker_ms, retries = EXCLUDED.retries,
            timeout_ms = EXCLUDED.timeout_ms, env = EXCLUDED.env,
            env_limit = EXCLUDED.env_limit, rate_count = EXCLUDED.rate_count,
            rate_per_ms = EXCLUDED.rate_per_ms
        WHERE a.state = 'cancelled' OR (a.state = 'failed' AND a.execution < EXCLUDED.execution)
        RETURNING a.run, a.id, a.seq, a.task, a.version, a.env, a.env_limit, a.rate_count,
            a.rate_per_ms, a.parent, a.claims, a.deaths, a.no_worker_ms
    )
    INSERT INTO flyte_queue AS q (run, id, seq, task, state, env, env_limit, rate_count,
        rate_per_ms, parent, claims, deaths, waiter, no_worker_ms, queued_at)
    SELECT run, id, seq, task || '@' || version, 'queued', env, env_limit, rate_count,
        rate_per_ms, parent, claims, deaths, $16, no_worker_ms, now()
    FROM recorded
    ON CONFLICT (run, id) DO UPDATE SET
        seq = EXCLUDED.seq, task = EXCLUDED.task, state = 'queued', env = EXCLUDED.env,
        env_limit = EXCLUDED.env_limit, rate_count = EXCLUDED.rate_count,
        rate_per_ms = EXCLUDED.rate_per_ms, claim_token = NULL, worker = NULL, ran_on = NULL,
        waiter = EXCLUDED.waiter, no_worker_ms = EXCLUDED.no_worker_ms, queued_at = now(),
        started_at = NULL
    RETURNING q.run, q.id";

/// After [`SUBMIT`], for the actions it did not queue: waiter `$3` waits
/// for them too (by primary key, one row at a time on the server).
const JOIN: &str = "SELECT flyte_join($1::bigint[], $2::bytea[], $3)";

/// Queues (or joins) `submits`, addressed to waiter `me`, and wakes the
/// workers once.
async fn write_submits(shared: &Shared, me: i64, submits: &[Box<Submit>]) -> Result<(), PgFailure> {
    let client = shared.pool.get().await?;
    let n = submits.len();
    let mut cols = SubmitColumns::with_capacity(n);
    for s in submits {
        cols.push(s);
    }
    let submit = client.prepare_cached(SUBMIT).await?;
    let queue_params: [&(dyn ToSql + Sync); 18] = [
        &cols.run,
        &cols.id,
        &cols.parent,
        &cols.fan_out,
        &cols.idx,
        &cols.task,
        &cols.version,
        &cols.group,
        &cols.execution,
        &cols.env,
        &cols.env_limit,
        &cols.input,
        &cols.no_worker_ms,
        &cols.retries,
        &cols.timeout_ms,
        &me,
        &cols.rate_count,
        &cols.rate_per_ms,
    ];
    let notify_params: [&(dyn ToSql + Sync); 1] = [&QUEUED];
    // Sent together (one round trip), run in this order.
    let queued = client.query(&submit, &queue_params);
    let woken = client.execute("SELECT pg_notify($1, '')", &notify_params);
    let (queued, _) = tokio::try_join!(queued, woken)?;
    if queued.len() == n {
        return Ok(());
    }
    // Some were there already (a resumed run submits its calls again).
    let queued: std::collections::HashSet<(i64, Vec<u8>)> =
        queued.iter().map(|r| (r.get(0), r.get(1))).collect();
    let (mut runs, mut ids) = (Vec::new(), Vec::new());
    for (run, id) in cols.run.iter().zip(&cols.id) {
        if !queued.contains(&(*run, id.clone())) {
            runs.push(*run);
            ids.push(id.as_slice());
        }
    }
    let join = client.prepare_cached(JOIN).await?;
    client.execute(&join, &[&runs, &ids, &me]).await?;
    // Those that ended are this process's to collect, now.
    shared.hints.settled.notify_waiters();
    Ok(())
}

/// The columns of a batch of submissions.
struct SubmitColumns<'a> {
    run: Vec<i64>,
    id: Vec<Vec<u8>>,
    parent: Vec<Option<Vec<u8>>>,
    fan_out: Vec<Option<Vec<u8>>>,
    idx: Vec<Option<i64>>,
    task: Vec<&'a str>,
    version: Vec<&'a str>,
    group: Vec<Option<&'a str>>,
    execution: Vec<i32>,
    env: Vec<&'a str>,
    env_limit: Vec<i32>,
    input: Vec<&'a [u8]>,
    no_worker_ms: Vec<i64>,
    retries: Vec<Option<i32>>,
    timeout_ms: Vec<Option<i64>>,
    rate_count: Vec<i32>,
    rate_per_ms: Vec<i64>,
}

impl<'a> SubmitColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        SubmitColumns {
            run: Vec::with_capacity(n),
            id: Vec::with_capacity(n),
            parent: Vec::with_capacity(n),
            fan_out: Vec::with_capacity(n),
            idx: Vec::with_capacity(n),
            task: Vec::with_capacity(n),
            version: Vec::with_capacity(n),
            group: Vec::with_capacity(n),
            execution: Vec::with_capacity(n),
            env: Vec::with_capacity(n),
            env_limit: Vec::with_capacity(n),
            input: Vec::with_capacity(n),
            no_worker_ms: Vec::with_capacity(n),
            retries: Vec::with_capacity(n),
            timeout_ms: Vec::with_capacity(n),
            rate_count: Vec::with_capacity(n),
            rate_per_ms: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, s: &'a Submit) {
        self.run.push(s.run.0);
        self.id.push(id_to_sql(s.id));
        self.parent.push(s.parent.map(id_to_sql));
        self.fan_out.push(s.item.map(|(f, _)| id_to_sql(f)));
        self.idx.push(s.item.map(|(_, i)| i as i64));
        self.task.push(s.task);
        self.version.push(s.version);
        self.group.push(s.group.as_deref());
        self.execution.push(s.execution as i32);
        self.env.push(s.env);
        self.env_limit.push(s.env_concurrency as i32);
        self.input.push(&s.input);
        self.no_worker_ms.push(s.no_worker_after.as_millis() as i64);
        self.retries.push(s.retries.map(|r| r as i32));
        self.timeout_ms
            .push(s.timeout.map(|t| t.as_millis() as i64));
        self.rate_count
            .push(s.env_rate.map_or(0, |r| r.count as i32));
        self.rate_per_ms
            .push(s.env_rate.map_or(0, |r| r.per.as_millis() as i64));
    }
}

/// Cancels actions still queued or running, and tells their workers.
async fn write_cancels(shared: &Shared, cancels: &[Key]) -> Result<(), PgFailure> {
    let client = shared.pool.get().await?;
    let runs: Vec<i64> = cancels.iter().map(|k| k.0).collect();
    let ids: Vec<&[u8]> = cancels.iter().map(|k| &k.1[..]).collect();
    let error = encode_error(&TaskError::cancelled());
    let statement = client
        .prepare_cached(
            "SELECT pg_notify($4, '')
             WHERE flyte_end($1::bigint[], $2::bytea[], 'cancelled', $3, false) > 0",
        )
        .await?;
    client
        .query(&statement, &[&runs, &ids, &error, &CANCELLED])
        .await?;
    Ok(())
}

/// How long collection may be refused (the database dropped, the role's
/// password changed) before the waiters are answered with the refusal.
/// Not at the first refusal: a failover may refuse a moment (a standby
/// being promoted is read-only).
const REFUSED_FOR: Duration = Duration::from_secs(10);

/// Collects the outcomes addressed to this process while anything is
/// pending; fails what no live worker can run. While the database cannot
/// answer, waiters wait (a restart, a failover) for as long as a write
/// would ([`GIVE_UP_AFTER`]), or [`REFUSED_FOR`] when the server refuses
/// rather than being away; then every waiter gets the failure, so that the
/// run ends with it instead of trying for ever.
async fn collect(
    shared: Weak<Shared>,
    pending: Arc<Mutex<Pending>>,
    wake: Arc<tokio::sync::Notify>,
) {
    let mut last_no_worker_check = Instant::now();
    let mut failing_since: Option<Instant> = None;
    loop {
        if lock(&pending).waiting.is_empty() {
            wake.notified().await;
            continue;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let hints = Arc::clone(&shared.hints);
        let settled = hints.settled.notified();
        tokio::pin!(settled);
        settled.as_mut().enable();
        match collect_once(&shared, &pending).await {
            Ok(()) => failing_since = None,
            Err(failure) => {
                let limit = if failure.is_transient() {
                    GIVE_UP_AFTER
                } else {
                    REFUSED_FOR
                };
                let e = shared.error(failure);
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= limit {
                    tracing::error!(
                        "flyte: cannot collect outcomes for {:?} ({e}); the actions this process \
                         waits for fail with it",
                        since.elapsed()
                    );
                    answer_all(&pending, &e);
                    failing_since = None;
                } else {
                    tracing::warn!("flyte: cannot collect outcomes yet ({e}); trying again");
                }
            }
        }
        if last_no_worker_check.elapsed() >= NO_WORKER_CHECK {
            last_no_worker_check = Instant::now();
            if let Err(e) = fail_unserved(&shared, &pending)
                .await
                .map_err(|e| shared.error(e))
            {
                tracing::warn!("flyte: cannot look for tasks without workers ({e})");
            }
        }
        drop(shared);
        tokio::select! {
            () = &mut settled => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Answers the waiters of the ended actions addressed to this process.
/// Their outcome rows are deleted as they are read, in a transaction
/// that commits only after they were answered: an answer lost with the
/// connection leaves the rows for the next turn (an outcome answered
/// twice finds nobody waiting the second time). Each record is read by
/// primary key (`LATERAL ... LIMIT 1` is never a join: see
/// `work::claimed_columns`); the outcomes table holds only what was not
/// collected yet, so whatever its statistics say, reading a waiter's rows
/// of it is cheap.
async fn collect_once(shared: &Shared, pending: &Mutex<Pending>) -> Result<(), PgFailure> {
    let me = shared.process.key().await?;
    let client = shared.pool.get().await?;
    let statement = client
        .prepare_cached(
            "WITH o AS (DELETE FROM flyte_outcomes WHERE waiter = $1 RETURNING run, id)
             SELECT o.run, o.id, a.state, a.output, a.error, a.attempts, a.origin, a.execution
             FROM o, LATERAL (SELECT * FROM flyte_actions a
                              WHERE a.run = o.run AND a.id = o.id LIMIT 1) a",
        )
        .await?;
    // BEGIN and the statement go out together (tokio-postgres pipelines
    // requests polled at once): the answer is one round trip away, not two.
    let params: [&(dyn ToSql + Sync); 1] = [&me];
    let (begun, rows) = tokio::join!(
        client.batch_execute("BEGIN"),
        client.query(&statement, &params)
    );
    let rows = match begun.and(rows) {
        Ok(rows) => rows,
        Err(e) => {
            // Nothing was taken: the connection goes back to the pool
            // outside any transaction.
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e.into());
        }
    };
    if rows.is_empty() {
        return Ok(client.batch_execute("COMMIT").await?);
    }
    {
        let mut pending = lock(pending);
        for row in rows {
            let key: Key = (row.get(0), row.get(1));
            let state: String = row.get(2);
            let status = status_of(&state);
            // Queued again since (a resumed run submitted it anew): its
            // next outcome comes with its next ending.
            if status == ActionStatus::Running {
                continue;
            }
            let Some(waiting) = pending.waiting.remove(&key) else {
                continue;
            };
            let ended_in: i32 = row.get(7);
            let origin = if (ended_in as u32) < waiting.execution {
                Origin::Replayed
            } else {
                Origin::from_code(row.get::<_, i16>(6) as u8)
            };
            let _ = waiting.reply.send(Ok(Settled {
                status,
                output: row.get(3),
                error: decode_error(row.get(4)),
                attempts: row.get::<_, i32>(5).max(0) as u32,
                origin,
            }));
        }
    }
    Ok(client.batch_execute("COMMIT").await?)
}

/// Fails the actions this process waits for that stayed queued past their
/// allowed wait while no live worker has their task at their version.
/// Only tasks no live worker has are looked for in the queue.
async fn fail_unserved(shared: &Shared, pending: &Mutex<Pending>) -> Result<(), PgFailure> {
    let me = shared.process.key().await?;
    let client = shared.pool.get().await?;
    let served: std::collections::HashSet<String> = client
        .query(
            "SELECT DISTINCT unnest(tasks) FROM flyte_processes WHERE lease_until > now()",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The tasks waited for, each once (a wide map waits for thousands of
    // actions of one task).
    let waited: std::collections::HashSet<(&str, &str)> =
        lock(pending).waiting.values().map(|w| w.task).collect();
    let unserved: Vec<String> = waited
        .into_iter()
        .map(|(name, version)| task_key(name, version))
        .filter(|task| !served.contains(task))
        .collect();
    if unserved.is_empty() {
        return Ok(());
    }
    let rows = client
        .query(
            "SELECT q.run, q.id, q.task FROM flyte_queue q
             WHERE q.state = 'queued' AND q.task = ANY ($2) AND q.waiter = $1
               AND q.queued_at < now() - q.no_worker_ms::float8 * interval '1 millisecond'
               AND NOT EXISTS (
                   SELECT 1 FROM flyte_processes p
                   WHERE p.lease_until > now() AND q.task = ANY (p.tasks))",
            &[&me, &unserved],
        )
        .await?;
    let end = client
        .prepare_cached("SELECT flyte_end($1::bigint[], $2::bytea[], 'failed', $3, true)")
        .await?;
    for row in rows {
        let (run, id, key): (i64, Vec<u8>, String) = (row.get(0), row.get(1), row.get(2));
        let (task, version) = task_of_key(&key);
        let error = TaskError::new(
            ErrorKind::NoWorker,
            format!(
                "no worker for task {task} version {version}: no live worker has this task at \
                 this code version; start workers built from the same code as the driver \
                 (flyte::fleet::Worker, or the `worker` command of your binary)"
            ),
        )
        .with_task(task);
        client
            .execute(&end, &[&vec![run], &vec![id], &encode_error(&error)])
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyte_core::store::RunKey;
    use flyte_core::{ActionId, RateLimit};

    /// `unnest` pads a short array with NULLs: every column must get one
    /// value per submission.
    #[test]
    fn every_column_gets_one_value_per_submission() {
        let submit = Submit {
            run: RunKey(1),
            execution: 1,
            id: ActionId(2),
            parent: Some(ActionId(1)),
            item: Some((ActionId(3), 0)),
            task: "env.t",
            version: "v",
            group: None,
            input: vec![1],
            retries: Some(1),
            timeout: Some(Duration::from_secs(1)),
            env: "env",
            env_concurrency: 2,
            env_rate: Some(RateLimit {
                count: 5,
                per: Duration::from_secs(1),
            }),
            no_worker_after: Duration::from_secs(60),
        };
        let mut cols = SubmitColumns::with_capacity(1);
        cols.push(&submit);
        cols.push(&submit);
        let lengths = [
            cols.run.len(),
            cols.id.len(),
            cols.parent.len(),
            cols.fan_out.len(),
            cols.idx.len(),
            cols.task.len(),
            cols.version.len(),
            cols.group.len(),
            cols.execution.len(),
            cols.env.len(),
            cols.env_limit.len(),
            cols.input.len(),
            cols.no_worker_ms.len(),
            cols.retries.len(),
            cols.timeout_ms.len(),
            cols.rate_count.len(),
            cols.rate_per_ms.len(),
        ];
        assert!(lengths.iter().all(|&n| n == 2), "{lengths:?}");
        assert_eq!((cols.rate_count[0], cols.rate_per_ms[0]), (5, 1000));
    }
}
