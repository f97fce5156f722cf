#!/usr/bin/env bash
# bench/cachemiss.sh: verification latency on a cache miss with KEYS keys in
# the store (default 1,000,000), on SQLite (a fresh file in a temporary
# directory) and on PostgreSQL (a fresh schema, dropped at the end). Each of
# SAMPLES random keys is verified once by a new verify.Engine, one at a time,
# so every verification misses the cache; the store's KeyByHash alone is
# timed beside it on other random keys. Prints p50/p90/p99/p999.
#
#   bench/cachemiss.sh                                  # 1M keys, SQLite and PostgreSQL
#   KEYS=100000 SAMPLES=5000 STORES=sqlite bench/cachemiss.sh
#
# PostgreSQL: KEYWARD_TEST_POSTGRES_URL (skipped when unset). Seeding a store
# stops after SEED_TIMEOUT (default 8m); the report then says at how many keys
# the latencies were measured. Target (docs/benchmarks.md, targets): p99 < 2 ms.
set -euo pipefail

KEYS=${KEYS:-1000000}
SAMPLES=${SAMPLES:-20000}
STORES=${STORES:-sqlite,postgres}
SEED_TIMEOUT=${SEED_TIMEOUT:-8m}

cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/cachemiss" ./bench/cachemiss
"$work/cachemiss" -keys "$KEYS" -samples "$SAMPLES" -stores "$STORES" -seed-timeout "$SEED_TIMEOUT" -dir "$work" "$@"
