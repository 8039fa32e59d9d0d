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
    // 8: the queue apart from the record. An action's row in
    // `flyte_actions` is written twice: when it is submitted and when it
    // ends, and the second write changes no indexed column, so PostgreSQL
    // updates it in place (a HOT update: no index entry, the old version
    // pruned with the page), with room left on each page for it. What
    // changes while it waits and runs (its state, its worker, who waits
    // for it) lives in `flyte_queue`, a narrow row per unfinished action
    // (deleted when it ends), and an ended action's outcome is addressed
    // to its waiter by a row of `flyte_outcomes` (deleted when collected).
    // Before: an insert and three updates of the wide row, each writing an
    // entry into every index of it (2.7 KB of WAL an action).
    r"
    CREATE TABLE flyte_queue (
        run bigint NOT NULL,
        id bytea NOT NULL,
        -- The action's place in the order of claims (its record's seq).
        seq bigint NOT NULL,
        -- name@version, as workers register their tasks.
        task text NOT NULL,
        -- queued, running, or cancelled (kept until its worker saw it).
        state text NOT NULL,
        env text NOT NULL,
        env_limit integer NOT NULL,
        rate_count integer NOT NULL,
        rate_per_ms bigint NOT NULL,
        parent bytea,
        claims integer NOT NULL,
        claim_token bigint,
        deaths integer NOT NULL,
        worker bigint,
        ran_on text,
        waiter bigint,
        no_worker_ms bigint NOT NULL,
        queued_at timestamptz NOT NULL,
        started_at timestamptz,
        PRIMARY KEY (run, id)
    );
    CREATE INDEX flyte_queue_queued ON flyte_queue (seq) WHERE state = 'queued';
    CREATE INDEX flyte_queue_worker ON flyte_queue (worker) WHERE worker IS NOT NULL;
    CREATE INDEX flyte_queue_limited ON flyte_queue (run, env)
        WHERE env_limit > 0 OR rate_count > 0;
    CREATE INDEX flyte_queue_limited_children ON flyte_queue (run, parent)
        WHERE env_limit > 0;

    -- An ended action whose waiter has not collected its outcome (its
    -- claim, for people reading). No unique key: an insert that may
    -- conflict writes twice (it is confirmed), and two rows for one action
    -- (ended, queued again, ended again before its waiter looked) are
    -- read as one.
    CREATE TABLE flyte_outcomes (
        waiter bigint NOT NULL,
        run bigint NOT NULL,
        id bytea NOT NULL,
        claims integer NOT NULL
    );
    CREATE INDEX flyte_outcomes_waiter ON flyte_outcomes (waiter);

    -- When actions of rate-limited environments were claimed, for the
    -- window of their rate (older ones are deleted as claims look).
    CREATE TABLE flyte_starts (
        run bigint NOT NULL,
        env text NOT NULL,
        at timestamptz NOT NULL
    );
    CREATE INDEX flyte_starts_at ON flyte_starts (run, env, at);

    INSERT INTO flyte_queue (run, id, seq, task, state, env, env_limit, rate_count,
        rate_per_ms, parent, claims, claim_token, deaths, worker, ran_on, waiter,
        no_worker_ms, queued_at, started_at)
    SELECT run, id, seq, task || '@' || version, state, env, env_limit, rate_count,
        rate_per_ms, parent, claims, claim_token, deaths, worker, ran_on, waiter,
        no_worker_ms, coalesce(queued_at, now()), started_at
    FROM flyte_actions
    WHERE state IN ('queued', 'running') OR (state = 'cancelled' AND worker IS NOT NULL);
    UPDATE flyte_actions SET state = 'queued' WHERE state = 'running';
    INSERT INTO flyte_outcomes (waiter, run, id, claims)
    SELECT waiter, run, id, claims FROM flyte_actions
    WHERE waiter IS NOT NULL AND state IN ('succeeded', 'failed', 'cancelled');
    INSERT INTO flyte_starts (run, env, at)
    SELECT run, env, started_at FROM flyte_actions
    WHERE rate_count > 0 AND started_at IS NOT NULL;

    DROP INDEX flyte_actions_queued, flyte_actions_worker, flyte_actions_waiter,
        flyte_actions_env_started, flyte_actions_queued_limited,
        flyte_actions_limited_children;
    -- Room on each page for the record's update when it ends (45%: a
    -- batch of completions updates the rows of a page in one transaction,
    -- and each new version needs room until it commits). No foreign key
    -- to the run: its check locked the run's row once per action (a WAL
    -- record each time); a run's actions are deleted with it by
    -- `delete_runs`.
    ALTER TABLE flyte_actions
        DROP CONSTRAINT flyte_actions_run_fkey,
        DROP COLUMN worker, DROP COLUMN waiter, DROP COLUMN claim_token,
        SET (fillfactor = 45);
    DROP FUNCTION flyte_complete, flyte_forget, flyte_cancel, flyte_release,
        flyte_seen_cancelled, flyte_join;

    -- Each changes the actions of a batch by primary key, one row at a
    -- time on the server, as migration 7 explains, walking the batch's
    -- arrays with `unnest` (in order: `ids[i]` of an array of bytea reads
    -- every element before the i-th, and a loop of those is quadratic).

    -- Completions, each guarded by its claim: the queue row goes, the
    -- record takes the outcome, the waiter gets an outcome row.
    CREATE FUNCTION flyte_complete(runs bigint[], ids bytea[], claim_nos integer[],
            states text[], outputs bytea[], errors bytea[], attempt_counts integer[],
            origins smallint[], starts timestamptz[], ends timestamptz[])
        RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE
        done bigint := 0;
        c record;
        q record;
    BEGIN
        FOR c IN SELECT * FROM unnest(runs, ids, claim_nos, states, outputs, errors,
                attempt_counts, origins, starts, ends)
                AS t(run, id, claim, state, output, error, attempts, origin, started, ended)
        LOOP
            DELETE FROM flyte_queue
            WHERE run = c.run AND id = c.id AND claims = c.claim AND state = 'running'
            RETURNING waiter, deaths, ran_on INTO q;
            IF FOUND THEN
                UPDATE flyte_actions SET state = c.state, output = c.output, error = c.error,
                    attempts = c.attempts, origin = c.origin, started_at = c.started,
                    ended_at = c.ended, claims = c.claim, deaths = q.deaths, ran_on = q.ran_on
                WHERE run = c.run AND id = c.id;
                IF q.waiter IS NOT NULL THEN
                    INSERT INTO flyte_outcomes (waiter, run, id, claims)
                    VALUES (q.waiter, c.run, c.id, c.claim);
                END IF;
                done := done + 1;
            END IF;
        END LOOP;
        RETURN done;
    END $$;

    -- Ends queued actions for good with `error` as `state` (a waiter that
    -- went away cancels; nothing can run it fails), and tells their
    -- waiters; running ones of `state` 'cancelled' are kept for their
    -- workers to see. Returns how many ended.
    CREATE FUNCTION flyte_end(runs bigint[], ids bytea[], end_state text, end_error bytea,
            tell_waiter boolean)
        RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE
        done bigint := 0;
        a record;
        q record;
    BEGIN
        FOR a IN SELECT * FROM unnest(runs, ids) AS t(run, id) LOOP
            DELETE FROM flyte_queue
            WHERE run = a.run AND id = a.id AND state = 'queued'
            RETURNING waiter, claims, deaths INTO q;
            IF NOT FOUND AND end_state = 'cancelled' THEN
                UPDATE flyte_queue SET state = 'cancelled', waiter = NULL
                WHERE run = a.run AND id = a.id AND state = 'running'
                RETURNING waiter, claims, deaths INTO q;
            END IF;
            IF FOUND THEN
                UPDATE flyte_actions SET state = end_state, error = end_error,
                    ended_at = now(), deaths = q.deaths
                WHERE run = a.run AND id = a.id;
                IF tell_waiter AND q.waiter IS NOT NULL THEN
                    INSERT INTO flyte_outcomes (waiter, run, id, claims)
                    VALUES (q.waiter, a.run, a.id, q.claims);
                END IF;
                done := done + 1;
            END IF;
        END LOOP;
        RETURN done;
    END $$;

    -- A claim of the oldest queued actions (in environments without a
    -- fleet-wide limit) of the tasks `tasks` (as name@version), at most
    -- `most`, for worker `worker_key` on `host_pid` with token `token`;
    -- see `work::CLAIM_LIMITED` for the lease it checks. The planner must walk
    -- the queued index in order and stop at `most`: sorting every queued
    -- row to take the first few (what it does when it believes few rows
    -- have the worker's tasks, as with no statistics) makes a claim cost
    -- the length of the queue, and a run the square of its width. Bitmap
    -- scans and sorts are off for this function's plans only.
    CREATE FUNCTION flyte_claim(worker_key bigint, tasks text[], most bigint, host_pid text,
            token bigint)
        RETURNS TABLE (run bigint, id bytea, parent bytea, idx bigint, task text, grp text,
            input bytea, claims integer, execution integer, retries integer,
            timeout_ms bigint, no_worker_ms bigint)
        LANGUAGE plpgsql SET enable_bitmapscan = off SET enable_sort = off AS $$
    BEGIN
        RETURN QUERY
        WITH me AS MATERIALIZED (
            SELECT p.key FROM flyte_processes p
            WHERE p.key = worker_key AND p.lease_until > now()
            FOR SHARE
        ), picked AS (
            SELECT q.run, q.id FROM flyte_queue q
            WHERE q.state = 'queued' AND q.task = ANY (tasks) AND q.env_limit = 0
              AND q.rate_count = 0 AND EXISTS (SELECT 1 FROM me)
            ORDER BY q.seq LIMIT most
            FOR UPDATE SKIP LOCKED
        ), took AS (
            UPDATE flyte_queue u SET state = 'running', worker = worker_key,
                claims = u.claims + 1, started_at = now(), ran_on = host_pid,
                claim_token = token
            FROM picked WHERE u.run = picked.run AND u.id = picked.id
            RETURNING u.run, u.id, u.claims, u.no_worker_ms
        )
        SELECT a.run, a.id, a.parent, a.idx, a.task, a.grp, a.input, took.claims,
            a.execution, a.retries, a.timeout_ms, took.no_worker_ms
        FROM took, LATERAL (SELECT * FROM flyte_actions r
                            WHERE r.run = took.run AND r.id = took.id LIMIT 1) a;
    END $$;

    -- Claims a worker gives back: queued again, for any worker.
    CREATE FUNCTION flyte_release(runs bigint[], ids bytea[], claim_nos integer[],
            worker_key bigint)
        RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE
        done bigint := 0;
        c record;
    BEGIN
        FOR c IN SELECT * FROM unnest(runs, ids, claim_nos) AS t(run, id, claim) LOOP
            UPDATE flyte_queue SET state = 'queued', worker = NULL, queued_at = now(),
                started_at = NULL, ran_on = NULL
            WHERE run = c.run AND id = c.id AND claims = c.claim
              AND state = 'running' AND worker = worker_key;
            IF FOUND THEN
                done := done + 1;
            END IF;
        END LOOP;
        RETURN done;
    END $$;

    -- Cancellations a worker saw.
    CREATE FUNCTION flyte_seen_cancelled(runs bigint[], ids bytea[], worker_key bigint)
        RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        a record;
    BEGIN
        FOR a IN SELECT * FROM unnest(runs, ids) AS t(run, id) LOOP
            DELETE FROM flyte_queue
            WHERE run = a.run AND id = a.id AND worker = worker_key AND state = 'cancelled';
        END LOOP;
    END $$;

    -- Submitted actions that were there already and not queued again:
    -- waiter `waiter_key` waits for them now, and gets the outcome of
    -- those that ended.
    CREATE FUNCTION flyte_join(runs bigint[], ids bytea[], waiter_key bigint)
        RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        j record;
    BEGIN
        FOR j IN SELECT * FROM unnest(runs, ids) AS t(run, id) LOOP
            UPDATE flyte_queue SET waiter = waiter_key
            WHERE run = j.run AND id = j.id AND state IN ('queued', 'running');
            IF NOT FOUND THEN
                INSERT INTO flyte_outcomes (waiter, run, id, claims)
                SELECT waiter_key, a.run, a.id, a.claims FROM flyte_actions a
                WHERE a.run = j.run AND a.id = j.id
                  AND a.state IN ('succeeded', 'failed', 'cancelled');
            END IF;
        END LOOP;
    END $$;
    ",
    // 9: completions as three set-based statements a batch instead of
    // three one-row statements a completion (26-38 us an action alone,
    // now 17-23). Migration 7 made them loops because the planner, free to
    // choose, took plans whose cost grew with the table; here the only
    // plan left to it is the one the loop had: for each completion of the
    // batch, in order, a probe of the primary key (hash, merge, bitmap and
    // sequential scans, sorts and materializing are off for this function)
    // and it plans each call afresh with the batch's real length, so that
    // no plan made for a small queue is kept for a large one. And claims
    // update the rows they locked by the address the lock returned (a TID
    // scan) instead of finding each again through the primary key.
    r"
    CREATE OR REPLACE FUNCTION flyte_complete(runs bigint[], ids bytea[], claim_nos integer[],
            states text[], outputs bytea[], errors bytea[], attempt_counts integer[],
            origins smallint[], starts timestamptz[], ends timestamptz[])
        RETURNS bigint LANGUAGE plpgsql
        SET enable_hashjoin = off SET enable_mergejoin = off SET enable_bitmapscan = off
        SET enable_seqscan = off SET enable_sort = off SET enable_material = off
        SET plan_cache_mode = force_custom_plan AS $$
    DECLARE
        done bigint;
    BEGIN
        WITH c AS MATERIALIZED (
            SELECT * FROM unnest(runs, ids, claim_nos, states, outputs, errors,
                attempt_counts, origins, starts, ends)
                AS t(run, id, claim, state, output, error, attempts, origin, started, ended)
        ), gone AS (
            DELETE FROM flyte_queue q USING c
            WHERE q.run = c.run AND q.id = c.id AND q.claims = c.claim
              AND q.state = 'running'
            RETURNING q.run, q.id, q.waiter, q.deaths, q.ran_on, c.claim, c.state, c.output,
                c.error, c.attempts, c.origin, c.started, c.ended
        ), recorded AS (
            UPDATE flyte_actions a SET state = g.state, output = g.output, error = g.error,
                attempts = g.attempts, origin = g.origin, started_at = g.started,
                ended_at = g.ended, claims = g.claim, deaths = g.deaths, ran_on = g.ran_on
            FROM gone g WHERE a.run = g.run AND a.id = g.id
        ), told AS (
            INSERT INTO flyte_outcomes (waiter, run, id, claims)
            SELECT waiter, run, id, claim FROM gone WHERE waiter IS NOT NULL
        )
        SELECT count(*) INTO done FROM gone;
        RETURN done;
    END $$;

    CREATE OR REPLACE FUNCTION flyte_claim(worker_key bigint, tasks text[], most bigint,
            host_pid text, token bigint)
        RETURNS TABLE (run bigint, id bytea, parent bytea, idx bigint, task text, grp text,
            input bytea, claims integer, execution integer, retries integer,
            timeout_ms bigint, no_worker_ms bigint)
        LANGUAGE plpgsql SET enable_bitmapscan = off SET enable_sort = off AS $$
    BEGIN
        RETURN QUERY
        WITH me AS MATERIALIZED (
            SELECT p.key FROM flyte_processes p
            WHERE p.key = worker_key AND p.lease_until > now()
            FOR SHARE
        ), picked AS (
            SELECT q.ctid AS at FROM flyte_queue q
            WHERE q.state = 'queued' AND q.task = ANY (tasks) AND q.env_limit = 0
              AND q.rate_count = 0 AND EXISTS (SELECT 1 FROM me)
            ORDER BY q.seq LIMIT most
            FOR UPDATE SKIP LOCKED
        ), took AS (
            UPDATE flyte_queue u SET state = 'running', worker = worker_key,
                claims = u.claims + 1, started_at = now(), ran_on = host_pid,
                claim_token = token
            FROM picked WHERE u.ctid = picked.at
            RETURNING u.run, u.id, u.claims, u.no_worker_ms
        )
        SELECT a.run, a.id, a.parent, a.idx, a.task, a.grp, a.input, took.claims,
            a.execution, a.retries, a.timeout_ms, took.no_worker_ms
        FROM took, LATERAL (SELECT * FROM flyte_actions r
                            WHERE r.run = took.run AND r.id = took.id LIMIT 1) a;
    END $$;
    ",
    // 10: each attempt's times, for an action of more than one attempt
    // (the codec's encoding of a list of start and end times; NULL for
    // one attempt, which ran from started_at to ended_at). queued_at,
    // started_at and ended_at already keep microseconds.
    "ALTER TABLE flyte_actions ADD COLUMN attempt_times bytea;",
    // 11: a completion carries each attempt's times (for an action retried
    // on its worker): flyte_complete of migration 9 with one more array,
    // NULL for an action of one attempt; without it (a worker of the
    // version before, during an upgrade) no attempt's times are kept.
    r"
    DROP FUNCTION flyte_complete(bigint[], bytea[], integer[], text[], bytea[], bytea[],
        integer[], smallint[], timestamptz[], timestamptz[]);
    CREATE FUNCTION flyte_complete(runs bigint[], ids bytea[], claim_nos integer[],
            states text[], outputs bytea[], errors bytea[], attempt_counts integer[],
            origins smallint[], starts timestamptz[], ends timestamptz[],
            attempts_times bytea[] DEFAULT NULL)
        RETURNS bigint LANGUAGE plpgsql
        SET enable_hashjoin = off SET enable_mergejoin = off SET enable_bitmapscan = off
        SET enable_seqscan = off SET enable_sort = off SET enable_material = off
        SET plan_cache_mode = force_custom_plan AS $$
    DECLARE
        done bigint;
    BEGIN
        WITH c AS MATERIALIZED (
            SELECT * FROM unnest(runs, ids, claim_nos, states, outputs, errors,
                attempt_counts, origins, starts, ends, attempts_times)
                AS t(run, id, claim, state, output, error, attempts, origin, started, ended,
                    attempt_times)
        ), gone AS (
            DELETE FROM flyte_queue q USING c
            WHERE q.run = c.run AND q.id = c.id AND q.claims = c.claim
              AND q.state = 'running'
            RETURNING q.run, q.id, q.waiter, q.deaths, q.ran_on, c.claim, c.state, c.output,
                c.error, c.attempts, c.origin, c.started, c.ended, c.attempt_times
        ), recorded AS (
            UPDATE flyte_actions a SET state = g.state, output = g.output, error = g.error,
                attempts = g.attempts, origin = g.origin, started_at = g.started,
                ended_at = g.ended, attempt_times = g.attempt_times, claims = g.claim,
                deaths = g.deaths, ran_on = g.ran_on
            FROM gone g WHERE a.run = g.run AND a.id = g.id
        ), told AS (
            INSERT INTO flyte_outcomes (waiter, run, id, claims)
            SELECT waiter, run, id, claim FROM gone WHERE waiter IS NOT NULL
        )
        SELECT count(*) INTO done FROM gone;
        RETURN done;
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
            location: location.to_owned(),
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
            .batch_execute(
                "ANALYZE flyte_runs, flyte_actions, flyte_processes, flyte_queue, flyte_outcomes",
            )
            .await
            .map_err(fail)?;
    }
    Ok(())
}
