#!/usr/bin/env bash
# flyte-rs's fleet beside PostgreSQL job queues, on the same server and the
# same workload: 20,000 trivial jobs queued at once, 2 worker processes, 8
# at once per worker and wide (256); the median of 3 trials each.
# graphile-worker (npm) with its defaults and with its documented local
# queue, procrastinate (PyPI); then flyte's bench lines (`fleet WxS
# tasks/s N`). Installs the peers into bench/peers/.queues; not in CI.
# Usage: FLYTE_BENCH_POSTGRES_URL=postgres://user:pw@localhost/postgres bash bench/peers/queues.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scratch="$here/.queues"
admin="${FLYTE_BENCH_POSTGRES_URL:?set FLYTE_BENCH_POSTGRES_URL to a role that may create databases}"
base="${admin%/*}"
jobs="${QUEUES_JOBS:-20000}"
trials="${QUEUES_TRIALS:-3}"

mkdir -p "$scratch"
if [ ! -d "$scratch/node_modules/graphile-worker" ]; then
    echo '{"name": "flyte-queues-bench", "private": true}' > "$scratch/package.json"
    (cd "$scratch" && npm install --silent --no-audit --no-fund graphile-worker@^0.17)
fi
if [ ! -x "$scratch/venv/bin/procrastinate" ]; then
    python3 -m venv "$scratch/venv"
    "$scratch/venv/bin/pip" install --quiet "procrastinate>=3"
fi
cp "$here/queues/"* "$scratch/"

fresh_db() {
    psql "$admin" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -qc "CREATE DATABASE $1" >/dev/null
}

# Runs `workers` worker commands until `remaining_sql` says 0; prints seconds.
time_until_empty() {
    local url=$1 remaining_sql=$2
    shift 2
    local start pids=()
    start=$(date +%s.%N)
    for cmd in "$@"; do
        bash -c "$cmd" >/dev/null 2>&1 &
        pids+=($!)
    done
    local remaining
    while remaining=$(psql "$url" -qAtc "$remaining_sql") && [ "$remaining" != 0 ]; do sleep 0.05; done
    if [ "$remaining" != 0 ]; then
        echo "cannot count what remains ($remaining_sql)" >&2
        exit 1
    fi
    local end
    end=$(date +%s.%N)
    for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "$end - $start" | bc -l
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

graphile() { # slots, local queue size (0: off), completion batch delay in ms (-1: off)
    local slots=$1 lq=$2 batch=${3:--1} db="queues_gw_$$" times=()
    for _ in $(seq "$trials"); do
        fresh_db "$db"
        node "$scratch/gw_setup.js" "$base/$db"
        psql "$base/$db" -qAtc "SELECT count(graphile_worker.add_job('t', '{}'::json)) FROM generate_series(1, $jobs)" >/dev/null
        local w="cd $scratch && node gw_worker.js $base/$db $slots $lq $batch"
        times+=("$(time_until_empty "$base/$db" "SELECT count(*) FROM graphile_worker.jobs" "$w" "$w")")
    done
    psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    printf '%s\n' "${times[@]}" | median
}

procrastinate() { # slots
    local slots=$1 db="queues_pq_$$" times=()
    for _ in $(seq "$trials"); do
        fresh_db "$db"
        export PQ_URL="$base/$db"
        (cd "$scratch" && PYTHONPATH=. venv/bin/procrastinate --app=pq_tasks.app schema --apply >/dev/null)
        (cd "$scratch" && PYTHONPATH=. venv/bin/python pq_defer.py "$jobs")
        local w="cd $scratch && PQ_URL=$PQ_URL PYTHONPATH=. venv/bin/procrastinate --app=pq_tasks.app worker --concurrency $slots"
        times+=("$(time_until_empty "$base/$db" "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')" "$w" "$w")")
    done
    psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    printf '%s\n' "${times[@]}" | median
}

rate() { echo "$jobs / $1" | bc; }

echo "PostgreSQL job queues, $jobs trivial jobs queued at once, 2 workers, median of $trials ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)):"
for slots in 8 256; do
    echo "graphile-worker 2x$slots (defaults) jobs/s $(rate "$(graphile "$slots" 0)")"
    echo "graphile-worker 2x$slots (local queue of 500) jobs/s $(rate "$(graphile "$slots" 500)")"
    # Its performance guide's setup: a local queue and batched completions.
    echo "graphile-worker 2x$slots (local queue of 500, completions batched: 0 ms) jobs/s $(rate "$(graphile "$slots" 500 0)")"
    echo "graphile-worker 2x$slots (local queue of 500, completions batched: 250 ms) jobs/s $(rate "$(graphile "$slots" 500 250)")"
    echo "procrastinate 2x$slots jobs/s $(rate "$(procrastinate "$slots")")"
done
echo
echo "flyte-rs on the same server (cargo bench --bench fleet):"
cd "$here/../.."
cargo bench --quiet --features postgres --bench fleet 2>/dev/null | grep -E '^fleet 2x(8|256) '
