#!/usr/bin/env bash
# bench/capacity.sh: checks the capacity model of docs/scaling.md on a real
# fleet: 1, 2 and 4 instances of the keyward binary on one fresh PostgreSQL
# database and a private redis-server, counting key lookups, PostgreSQL
# transactions, Redis commands and bus messages per pass (bench/capacity).
# Counts, not times: the figures hold on a busy machine. Loopback only;
# every wait is bounded.
#
#   bench/capacity.sh                                 # 20,000 keys, N = 1, 2, 4
#   bench/capacity.sh -instances 1,2 -keys 100000     # flags of bench/capacity (-h)
#
# Needs PostgreSQL (KEYWARD_TEST_POSTGRES_URL, default
# postgres://postgres@127.0.0.1:5432/test?sslmode=disable; the user may
# create databases) and redis-server on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/keyward" ./cmd/keyward
go build -o "$work/capacity" ./bench/capacity
"$work/capacity" -binary "$work/keyward" "$@"
