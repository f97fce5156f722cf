#!/usr/bin/env bash
# bench/propagation.sh: how long a revocation made on one keyward instance
# takes to be seen by another, over the Redis pub/sub bus and over PostgreSQL
# LISTEN/NOTIFY (docs/benchmarks.md, targets: p99 under 100 ms). Two instances run in
# one process (bench/propagation): each with its own PostgreSQL pool on one
# fresh schema (dropped at the end), its own engine, bus client and
# Broadcaster. Loopback only; every wait is bounded.
#
#   bench/propagation.sh                      # 200 revocations per bus
#   bench/propagation.sh -n 500 -bus notify   # flags of bench/propagation (-h)
#
# Needs PostgreSQL and Redis:
#   KEYWARD_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable)
#   KEYWARD_TEST_REDIS_URL    (default redis://127.0.0.1:6379/0)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/propagation" ./bench/propagation
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/propagation" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
