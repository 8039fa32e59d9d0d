#!/usr/bin/env bash
# Side-by-side per-item costs: Python's parallel-map tools and flyte-rs, on
# the same 10,000-item workload. Not part of CI (it installs from PyPI).
# Usage: bash bench/peers/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet fastcore flytekit || echo "flytekit did not install; it will be skipped"
    "$venv/bin/pip" install --quiet "flyte>=2" || echo "the Flyte 2 SDK did not install; it will be skipped"
fi
"$venv/bin/python" "$here/peers.py"
echo
echo "flyte-rs on the same workload:"
cd "$here/../.."
cargo bench --quiet --bench map_vs_joinset -- --peers
