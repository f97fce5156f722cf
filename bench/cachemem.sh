#!/usr/bin/env bash
# bench/cachemem.sh: memory per cached key of the verification cache (100k and
# 1M realistic keys put in through KeyChanged; docs/benchmarks.md target:
# under 512 B) and its hit rate when 1M keys are picked by a Zipf
# distribution, with the default 30 s TTL and an injected clock at 100, 1k
# and 10k requests/s, each with the cache unbounded and bounded to 25% of the
# working set (-shares). No database needed; a few minutes and 2 GB of memory.
#
#   bench/cachemem.sh
#   bench/cachemem.sh -mode mem -mem-keys 100000 -memprofile /tmp/cache.pprof
#   go tool pprof -sample_index=inuse_space -top /tmp/cache.pprof
#   bench/cachemem.sh -mode hit -zipf-s 1.3 -rates 1000   # flags: -h
#   bench/cachemem.sh -mode flood -flood-keys 1000000 -flood-max-bytes 33554432
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/cachemem" ./bench/cachemem
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/cachemem" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
