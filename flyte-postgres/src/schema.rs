//! flyte's tables, created and migrated by the store. Migrations run in a
//! transaction under an advisory lock, so many processes opening one
//! database at once migrate it once.

use crate::pg_error;
use deadpool_postgres::Pool;
use flyte_core::store::StoreError;

/// The migrations, in order; the schema's version is how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: runs, the processes and workers of the fleet, actions (the queue
    // and the record at once), fan-outs and the task cache.
    r"
    CREATE TABLE flyte_runs (
        key bigserial PRIMARY KEY,
        id text NOT NULL UNIQUE,
        name text UNIQUE,
        root_task text NOT NULL,
        root_action bytea NOT NULL,
        inputs bytea,
        status text NOT NULL,
        error bytea,
        started_at timestamptz NOT NULL,
        ended_at timestamptz,
        executions integer NOT NULL DEFAULT 1,
        lost_actions bigint NOT NULL DEFAULT 0,
        driver bigint,
        abort_requested_at timestamptz
    );
    CREATE INDEX flyte_runs_started ON flyte_runs (started_at DESC);

    -- A process of the fleet: a worker (it lists the tasks it runs) or a
    -- driver (it holds runs and waits for actions). Its lease is renewed
    -- every 2 s; a row whose lease ran out is a dead process.
    CREATE TABLE flyte_processes (
        key bigserial PRIMARY KEY,
        host text NOT NULL,
        pid integer NOT NULL,
        concurrency integer NOT NULL DEFAULT 0,
        tasks text[] NOT NULL DEFAULT '{}',
        started_at timestamptz NOT NULL DEFAULT now(),
        lease_until timestamptz NOT NULL
    );

    -- Action ids are their 16 bytes, big-endian.
    -- state: queued, running, succeeded, failed, cancelled.
    -- claims: how often it was claimed (the guard of completions);
    -- deaths: how many workers died running it; worker: who runs it (kept
    -- after a cancel until that worker has seen it); waiter: the process
    -- waiting for its outcome (cleared when collected); ran_on: host:pid.
    CREATE TABLE flyte_actions (
        run bigint NOT NULL REFERENCES flyte_runs (key) ON DELETE CASCADE,
        id bytea NOT NULL,
        parent bytea,
        fan_out bytea,
        idx bigint,
        task text NOT NULL,
        version text NOT NULL DEFAULT '',
        grp text,
        state text NOT NULL,
        execution integer NOT NULL DEFAULT 1,
        attempts integer NOT NULL DEFAULT 0,
        claims integer NOT NULL DEFAULT 0,
        deaths integer NOT NULL DEFAULT 0,
        env text NOT NULL DEFAULT '',
        env_limit integer NOT NULL DEFAULT 0,
        input bytea,
        retries integer,
        timeout_ms bigint,
        output bytea,
        error bytea,
        origin smallint NOT NULL DEFAULT 0,
        worker bigint,
        waiter bigint,
        ran_on text,
        no_worker_ms bigint NOT NULL DEFAULT 60000,
        queued_at timestamptz,
        started_at timestamptz,
        ended_at timestamptz,
        seq bigserial,
        PRIMARY KEY (run, id)
    );
    CREATE INDEX flyte_actions_queued ON flyte_actions (seq) WHERE state = 'queued';
    CREATE INDEX flyte_actions_worker ON flyte_actions (worker) WHERE worker IS NOT NULL;
    CREATE INDEX flyte_actions_waiter ON flyte_actions (waiter) WHERE waiter IS NOT NULL;
    CREATE INDEX flyte_actions_run_seq ON flyte_actions (run, seq);

    CREATE TABLE flyte_fan_outs (
        run bigint NOT NULL REFERENCES flyte_runs (key) ON DELETE CASCADE,
        id bytea NOT NULL,
        record bytea NOT NULL,
        seq bigserial,
        PRIMARY KEY (run, id)
    );

    CREATE TABLE flyte_cache (
        key bytea PRIMARY KEY,
        task text NOT NULL,
        version text NOT NULL,
        output_type text NOT NULL,
        value bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    ",
    // 2: environments' rate limits across the fleet: starts allowed per
    // window, and the window; the claims of a window found by start time.
    r"
    ALTER TABLE flyte_actions
        ADD COLUMN rate_count integer NOT NULL DEFAULT 0,
        ADD COLUMN rate_per_ms bigint NOT NULL DEFAULT 0;
    CREATE INDEX flyte_actions_env_started ON flyte_actions (run, env, started_at)
        WHERE env_limit > 0 OR rate_count > 0;
    ",
    // 3: the token of the claim that took an action, so that a worker
    // whose claim's answer was lost (the connection dropped after the
    // server took it) finds what it holds. Indexes that find without
    // reading past what they look for: the queued actions of limited
    // environments (every claim asks), a waiter's ended actions (every
    // collection) and a worker's cancelled ones (every cancel check).
    r"
    ALTER TABLE flyte_actions ADD COLUMN claim_token bigint;
    CREATE INDEX flyte_actions_queued_limited ON flyte_actions (run, env)
        WHERE state = 'queued' AND (env_limit > 0 OR rate_count > 0);
    DROP INDEX flyte_actions_waiter;
    CREATE INDEX flyte_actions_waiter ON flyte_actions (waiter, state) WHERE waiter IS NOT NULL;
    DROP INDEX flyte_actions_worker;
    CREATE INDEX flyte_actions_worker ON flyte_actions (worker, state) WHERE worker IS NOT NULL;
    ",
    // 4: what tasks log (from every process of the fleet), and what a
    // driver's progress display shows, for `flyte logs` and `flyte watch`.
    r"
    CREATE TABLE flyte_logs (
        run bigint NOT NULL REFERENCES flyte_runs (key) ON DELETE CASCADE,
        seq bigserial,
        action bytea,
        at timestamptz NOT NULL,
        level text NOT NULL,
        target text NOT NULL,
        message text NOT NULL,
        stored_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run, seq)
    );
    CREATE TABLE flyte_progress (
        run bigint PRIMARY KEY REFERENCES flyte_runs (key) ON DELETE CASCADE,
        at timestamptz NOT NULL DEFAULT now(),
        lines text[] NOT NULL
    );
    ",
    // 5: the children of limited environments still to run, by parent: a
    // parent waiting on them does not count against its environment.
    r"
    CREATE INDEX flyte_actions_limited_children ON flyte_actions (run, parent)
        WHERE env_limit > 0 AND state IN ('queued', 'running');
    ",
    // 6: no statistics of the encoded values (no plan reads them), so that
    // analyzing the actions table, which a growing run asks for, reads
    // none of them.
    r"
    ALTER TABLE flyte_actions
        ALTER COLUMN input SET STATISTICS 0,
        ALTER COLUMN output SET STATISTICS 0,
        ALTER COLUMN error SET STATISTICS 0;
    ",
    // 7: the batched changes of actions by primary key, as loops of
    // one-row updates on the server. As one `UPDATE ... FROM unnest(...)`
    // the planner may take a filter (`waiter = 7`, `state = 'running'`)
    // for one row by statistics that predate the run, scan for it first
    // and compare every row of the batch with every row found: 3.3 s for
    // 4,096 outcomes, 16.7 million comparisons. An update by the whole
    // primary key has one plan, as long as no other condition matches an
    // index (a waiter's or worker's key is compared through `coalesce` for
    // that: as `waiter = $3` the planner walked the waiter's index, all of
    // its ended rows, once per row of the batch). One round trip all the
    // same.
    r"
    CREATE FUNCTION flyte_complete(runs bigint[], ids bytea[], claim_nos integer[],
            states text[], outputs bytea[], errors bytea[], attempt_counts integer[],
            origins smallint[], starts timestamptz[], ends timestamptz[])
        RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE
        done bigint := 0;
    BEGIN
        FOR i IN 1 .. coalesce(cardinality(runs), 0) LOOP
            UPDATE flyte_actions SET state = states[i], output = outputs[i],
                error = errors[i], attempts = attempt_counts[i], origin = origins[i],
                started_at = starts[i], ended_at = ends[i], worker = NULL
            WHERE run = runs[i] AND id = ids[i] AND claims = claim_nos[i]
              AND state = 'running';
            IF FOUND THEN
                done := done + 1;
            END IF;
        END LOOP;
        RETURN done;
    END $$;

    CREATE FUNCTION flyte_forget(runs bigint[], ids bytea[], waiter_key bigint)
        RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        FOR i IN 1 .. coalesce(cardinality(runs), 0) LOOP
            UPDATE flyte_actions SET waiter = NULL
            WHERE run = runs[i] AND id = ids[i] AND coalesce(waiter, 0) = waiter_key
              AND state IN ('succeeded', 'failed', 'cancelled');
        END LOOP;
    END $$;

    CREATE FUNCTION flyte_cancel(runs bigint[], ids bytea[], cancelled bytea)
        RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE
        done bigint := 0;
    BEGIN
        FOR i IN 1 .. coalesce(cardinality(runs), 0) LOOP
            UPDATE flyte_actions SET state = 'cancelled', error = cancelled,
                ended_at = now(), waiter = NULL
            WHERE run = runs[i] AND id = ids[i] AND state IN ('queued', 'running');
            IF FOUND THEN
                done := done + 1;
            END IF;
        END LOOP;
        RETURN done;
    END $$;

    CREATE FUNCTION flyte_release(runs bigint[], ids bytea[], claim_nos integer[],
            worker_key bigint)
        RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE
        done bigint := 0;
    BEGIN
        FOR i IN 1 .. coalesce(cardinality(runs), 0) LOOP
            UPDATE flyte_actions SET state = 'queued', worker = NULL, queued_at = now(),
                started_at = NULL
            WHERE run = runs[i] AND id = ids[i] AND claims = claim_nos[i]
              AND state = 'running' AND coalesce(worker, 0) = worker_key;
            IF FOUND THEN
                done := done + 1;
            END IF;
        END LOOP;
        RETURN done;
    END $$;

    CREATE FUNCTION flyte_seen_cancelled(runs bigint[], ids bytea[], worker_key bigint)
        RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        FOR i IN 1 .. coalesce(cardinality(runs), 0) LOOP
            UPDATE flyte_actions SET worker = NULL
            WHERE run = runs[i] AND id = ids[i] AND coalesce(worker, 0) = worker_key
              AND state <> 'running';
        END LOOP;
    END $$;

    CREATE FUNCTION flyte_join(runs bigint[], ids bytea[], waiter_key bigint)
        RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        FOR i IN 1 .. coalesce(cardinality(runs), 0) LOOP
            UPDATE flyte_actions SET waiter = waiter_key
            WHERE run = runs[i] AND id = ids[i] AND waiter IS DISTINCT FROM waiter_key;
        END LOOP;
    END $$;
    ",
];

/// Creates or migrates the tables.
pub(crate) async fn migrate(pool: &Pool, location: &str) -> Result<(), StoreError> {
    let fail = |e: tokio_postgres::Error| pg_error(location, e);
    let mut client = pool.get().await.map_err(|e| pg_error(location, e))?;
    let tx = client.transaction().await.map_err(fail)?;
    // One process migrates at a time; the others then find it done.
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7366111866);
         CREATE TABLE IF NOT EXISTS flyte_schema (version integer NOT NULL);",
    )
    .await
    .map_err(fail)?;
    let found: i32 = match tx
        .query_opt("SELECT version FROM flyte_schema", &[])
        .await
        .map_err(fail)?
    {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO flyte_schema VALUES (0)", &[])
                .await
                .map_err(fail)?;
            0
        }
    };
    let known = MIGRATIONS.len();
    if found as usize > known {
        return Err(StoreError::NewerSchema {
            found: found as u32,
            known: known as u32,
        });
    }
    for migration in &MIGRATIONS[found as usize..] {
        tx.batch_execute(migration).await.map_err(fail)?;
    }
    tx.execute("UPDATE flyte_schema SET version = $1", &[&(known as i32)])
        .await
        .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    if (found as usize) < known {
        // Tables just made have no statistics, and the planner takes a
        // table never analyzed for one of ten pages however it grows; one
        // analyzed empty is estimated by its real size. (Growth is
        // analyzed again as runs submit: `submit::analyze_on_growth`.)
        client
            .batch_execute("ANALYZE flyte_runs, flyte_actions, flyte_processes")
            .await
            .map_err(fail)?;
    }
    Ok(())
}
