//! This process in the fleet's table of processes: the lease that says it
//! lives, held while it drives runs or waits for actions, and the reaper
//! every live process runs.

use crate::listen::{CANCELLED, QUEUED, SETTLED};
use crate::rows::{encode_error, task_of_key};
use crate::{PgFailure, Shared};
use flyte_core::queue::{HEARTBEAT, LEASE, MAX_DEATHS};
use flyte_core::store::StoreError;
use flyte_core::{ErrorKind, TaskError};
use std::sync::Weak;
use tokio::sync::OnceCell;

/// This process's row, made on first use and renewed for as long as the
/// store lives.
pub(crate) struct Process {
    shared: Weak<Shared>,
    key: OnceCell<i64>,
}

impl Process {
    pub(crate) fn new(shared: Weak<Shared>) -> Process {
        Process {
            shared,
            key: OnceCell::new(),
        }
    }

    /// This process's key (the `driver` of its runs, the `waiter` of what
    /// it submits).
    pub(crate) async fn key(&self) -> Result<i64, StoreError> {
        self.key
            .get_or_try_init(|| async {
                let shared = self.shared.upgrade().ok_or(StoreError::WriterStopped)?;
                let key = register(&shared, 0, &[])
                    .await
                    .map_err(|e| shared.error(e))?;
                shared.bridge.spawn(renew(self.shared.clone(), key));
                Ok(key)
            })
            .await
            .copied()
    }
}

/// Enters a process in the table with a fresh lease.
pub(crate) async fn register(
    shared: &Shared,
    concurrency: u32,
    tasks: &[String],
) -> Result<i64, PgFailure> {
    let client = shared.pool.get().await?;
    let host = hostname();
    let row = client
        .query_one(
            "INSERT INTO flyte_processes (host, pid, concurrency, tasks, lease_until)
             VALUES ($1, $2, $3, $4, now() + $5::float8 * interval '1 millisecond') RETURNING key",
            &[
                &host,
                &(std::process::id() as i32),
                &(concurrency as i32),
                &tasks,
                &(LEASE.as_millis() as f64),
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// Renews the lease of process `key` (taking its row back if a reaper
/// took it for dead while this process was paused) and reaps.
async fn renew(shared: Weak<Shared>, key: i64) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let result = async {
            if !heartbeat(&shared, key).await? {
                let client = shared.pool.get().await?;
                client
                    .execute(
                        "INSERT INTO flyte_processes (key, host, pid, lease_until)
                         VALUES ($1, $2, $3, now() + $4::float8 * interval '1 millisecond')
                         ON CONFLICT (key) DO NOTHING",
                        &[
                            &key,
                            &hostname(),
                            &(std::process::id() as i32),
                            &(LEASE.as_millis() as f64),
                        ],
                    )
                    .await?;
            }
            Ok::<(), PgFailure>(())
        }
        .await;
        if let Err(e) = result.map_err(|e| shared.error(e)) {
            tracing::warn!("flyte: cannot renew this process's lease yet ({e})");
        }
    }
}

/// Renews the lease of process `key`, then reaps; `false` when the lease
/// was gone (the process had been taken for dead).
pub(crate) async fn heartbeat(shared: &Shared, key: i64) -> Result<bool, PgFailure> {
    let client = shared.pool.get().await?;
    let renewed = client
        .execute(
            "UPDATE flyte_processes SET lease_until = now() + $2::float8 * interval '1 millisecond'
             WHERE key = $1",
            &[&key, &(LEASE.as_millis() as f64)],
        )
        .await?;
    drop(client);
    reap(shared).await?;
    Ok(renewed == 1)
}

/// Takes processes whose lease ran out for dead: their running actions are
/// queued again (or fail for good after [`MAX_DEATHS`]), their runs are
/// killed and what those runs left unfinished is cancelled. One process
/// reaps at a time.
pub(crate) async fn reap(shared: &Shared) -> Result<(), PgFailure> {
    let mut client = shared.pool.get().await?;
    let tx = client.transaction().await?;
    let mine: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock(7366111867)", &[])
        .await?
        .get(0);
    if !mine {
        return Ok(());
    }
    let dead: Vec<i64> = tx
        .query(
            "DELETE FROM flyte_processes WHERE lease_until < now() RETURNING key",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The running actions of the dead, and of any key that is no longer
    // registered: a worker's rejoin that could not give back what its old
    // key held, or a claim that raced a reaper before claims checked the
    // lease. Whatever the order of events, no row stays running under a
    // key nobody renews. (The worker index holds only running and
    // cancelled-unseen rows, so this reads what is in flight, no more.)
    let orphans = tx
        .query(
            "SELECT q.run, q.id, q.task, q.deaths, q.worker, q.waiter, q.claims
             FROM flyte_queue q
             WHERE q.worker IS NOT NULL AND q.state = 'running'
               AND (q.worker = ANY ($1) OR NOT EXISTS (
                   SELECT 1 FROM flyte_processes p WHERE p.key = q.worker))
             FOR UPDATE OF q",
            &[&dead],
        )
        .await?;
    if dead.is_empty() && orphans.is_empty() {
        return Ok(tx.commit().await?);
    }
    let (mut requeued, mut poisoned) = (0, 0);
    for row in &orphans {
        let (run, id, task, deaths, worker): (i64, Vec<u8>, String, i32, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let task = task_of_key(&task).0.to_owned();
        let (waiter, claims): (Option<i64>, i32) = (row.get(5), row.get(6));
        // Looked at again by a statement of its own (a newer snapshot): a
        // row claimed meanwhile by a worker that registered after the
        // select began is not that worker's to lose.
        let still_orphan = tx
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM flyte_processes WHERE key = $1)",
                &[&worker],
            )
            .await?
            .get::<_, bool>(0);
        if !still_orphan {
            continue;
        }
        if deaths as u32 + 1 >= MAX_DEATHS {
            let error = TaskError::new(
                ErrorKind::WorkerLost,
                format!(
                    "{MAX_DEATHS} workers died running it (a crash, an abort, out of memory?): \
                     it is not run again; run it on its own to see why"
                ),
            )
            .with_task(task);
            tx.execute(
                "WITH gone AS (DELETE FROM flyte_queue WHERE run = $1 AND id = $2),
                      told AS (
                          INSERT INTO flyte_outcomes (waiter, run, id, claims)
                          SELECT $4, $1, $2, $5 WHERE $4::bigint IS NOT NULL
                      )
                 UPDATE flyte_actions SET state = 'failed', error = $3, deaths = $6,
                     claims = $5, ended_at = now()
                 WHERE run = $1 AND id = $2",
                &[
                    &run,
                    &id,
                    &encode_error(&error),
                    &waiter,
                    &claims,
                    &(deaths + 1),
                ],
            )
            .await?;
            poisoned += 1;
        } else {
            tx.execute(
                "UPDATE flyte_queue SET state = 'queued', deaths = deaths + 1, worker = NULL,
                     queued_at = now(), started_at = NULL, ran_on = NULL
                 WHERE run = $1 AND id = $2",
                &[&run, &id],
            )
            .await?;
            requeued += 1;
        }
    }
    // Cancellations the dead never saw, and outcomes they never collected
    // (a run resumed elsewhere submits its calls again and is told anew).
    tx.execute(
        "DELETE FROM flyte_queue WHERE worker = ANY ($1) AND state = 'cancelled'",
        &[&dead],
    )
    .await?;
    tx.execute(
        "DELETE FROM flyte_outcomes WHERE waiter = ANY ($1)",
        &[&dead],
    )
    .await?;
    let killed: Vec<i64> = tx
        .query(
            "UPDATE flyte_runs SET status = 'killed', ended_at = now(), driver = NULL
             WHERE status = 'running' AND driver = ANY ($1) RETURNING key",
            &[&dead],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !killed.is_empty() {
        cancel_runs(&tx, &killed).await?;
        tx.execute("SELECT pg_notify($1, '')", &[&CANCELLED])
            .await?;
    }
    if requeued > 0 {
        tx.execute("SELECT pg_notify($1, '')", &[&QUEUED]).await?;
    }
    if poisoned > 0 {
        tx.execute("SELECT pg_notify($1, '')", &[&SETTLED]).await?;
    }
    tracing::info!(
        "flyte: {} dead processes reaped: {requeued} actions queued again, {poisoned} failed for good, {} runs killed",
        dead.len(),
        killed.len()
    );
    Ok(tx.commit().await?)
}

/// This machine's name, for people reading where an action ran.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Cancels what runs `runs` left queued or running anywhere in the fleet;
/// how many.
pub(crate) async fn cancel_runs(
    client: &impl deadpool_postgres::GenericClient,
    runs: &[i64],
) -> Result<i64, PgFailure> {
    let row = client
        .query_one(
            "SELECT coalesce(flyte_end(array_agg(run), array_agg(id), 'cancelled', $2, false), 0)
             FROM flyte_queue WHERE run = ANY ($1) AND state IN ('queued', 'running')",
            &[&runs, &encode_error(&TaskError::cancelled())],
        )
        .await?;
    Ok(row.get(0))
}
