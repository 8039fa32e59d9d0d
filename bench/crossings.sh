#!/usr/bin/env bash
# How many times one map item's path crosses from one source file of the
# workspace to another: a recorded map of 1,000 and of 3,000 trivial async
# items (benches/crossings.rs, a debug build: nothing inlined) under
# valgrind's callgrind; the calls between files in the larger run, less
# those in the smaller, over the 2,000 items between them.
# Usage: bash bench/crossings.sh   (needs valgrind; about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
small=1000 large=3000
cargo build --profile dev --bench crossings --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "crossings" and m.get("executable"):
        print(m["executable"])' > /tmp/flyte-crossings-bin
bin=$(cat /tmp/flyte-crossings-bin)
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
for n in $small $large; do
  FLYTE_HOME="$work/home-$n" FLYTE_PROGRESS=none valgrind --tool=callgrind \
    --callgrind-out-file="$work/$n.out" "$bin" "$n" >/dev/null 2>"$work/$n.log" \
    || { cat "$work/$n.log"; exit 1; }
done
python3 bench/crossings.py "$work/$small.out" "$work/$large.out" $((large - small)) .
