#!/usr/bin/env bash
# The fleet's fault suite at full size, on release builds: a worker paused
# past its lease 10 times, every connection cut, 10 workers killed under a
# supervisor, a server out of connections for 20 s, a transaction left open
# for a whole run, a burst of 100,000 queued items. CI runs the same tests
# small (fixtures/flyte-demo/tests/fleet_faults.rs). Each prints what it
# measured (recovery, throughput during the fault); BENCHMARKS.md quotes them.
# Usage: FLYTE_TEST_POSTGRES_URL=postgres://user:pw@localhost/postgres bash bench/faults.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FLYTE_TEST_POSTGRES_URL:?set FLYTE_TEST_POSTGRES_URL to a role that may create databases}"
export FLYTE_FAULT_ROUNDS="${FLYTE_FAULT_ROUNDS:-10}"
export FLYTE_FAULT_BURST="${FLYTE_FAULT_BURST:-100000}"
echo "fault suite: rounds $FLYTE_FAULT_ROUNDS, burst $FLYTE_FAULT_BURST, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
cargo test --release -p flyte-demo --test fleet_faults -- --nocapture --test-threads 1 2>&1 |
    grep -E '^(test |round |[0-9]+ (items|kills|connections|trace)|Executions|test result)'
