#!/usr/bin/env bash
# bench/servemem.sh: resident memory of `keyward serve` per cached key after a
# Zipf run, all of the server's state included (verification cache, usage
# counters, abuse detection's tables, HTTP): the target (docs/benchmarks.md) is under 600 B
# of RSS per cached key after a Zipf(1.1) run over 1M keys.
#
# It seeds KEYS keys into a SQLite store (bench/cachemiss -keep-sqlite; about
# a minute for 1M on 2 cores), starts `keyward serve` on it, and sends
# REQUESTS requests through /v1/forward-auth, each for a key picked by
# Zipf(ZIPF_S) (bench/fill -zipf), for at most DURATION. bench/fill reads the
# server's VmRSS after its start, before any request, and again after the
# last, and prints the growth per key in the verification cache
# (keyward_verify_cache_entries at the end), beside the sizes of the bounded
# tables from /metrics. The cache TTL is CACHE_TTL (1h: every key asked stays
# cached, so the RSS growth is divided by every key it holds; at the default
# 30 s the keys of the run's start expire while the heap keeps their memory).
#
#   bench/servemem.sh                                 # 1M keys, 3M requests, at most 5 min
#   DATA=DIR bench/servemem.sh                        # seeds DIR once, reuses it after (kept)
#   KEYS=100000 REQUESTS=300000 DURATION=60s bench/servemem.sh
#
# BIN may name a directory holding keyward, cachemiss and fill already built
# (bench/run passes its own); PORT is the server's loopback port. Loopback
# only; the load is bounded by REQUESTS and DURATION.
set -euo pipefail

KEYS=${KEYS:-1000000}
REQUESTS=${REQUESTS:-3000000}
DURATION=${DURATION:-5m}
ZIPF_S=${ZIPF_S:-1.1}
CACHE_TTL=${CACHE_TTL:-1h}
SEED_TIMEOUT=${SEED_TIMEOUT:-10m}
PORT=${PORT:-18491}
CONNS=${CONNS:-32}

cd "$(dirname "$0")/.."
work=$(mktemp -d)
serve_pid=
cleanup() {
	[ -z "$serve_pid" ] || { kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT

bin=${BIN:-$work}
if [ -z "${BIN:-}" ]; then
	go build -o "$bin/keyward" ./cmd/keyward
	for t in cachemiss fill; do go build -o "$bin/$t" "./bench/$t"; done
fi
data=${DATA:-$work/data}
if [ ! -s "$data/secrets.txt" ]; then
	[ ! -e "$data" ] || { echo "bench/servemem.sh: $data exists without secrets.txt: name a new directory or one a previous run seeded" >&2; exit 1; }
	"$bin/cachemiss" -keys "$KEYS" -samples 100 -stores sqlite -seed-timeout "$SEED_TIMEOUT" -keep-sqlite "$data"
fi

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
KEYWARD_LOG_LEVEL=warn "$bin/keyward" serve --data "$data" --listen "127.0.0.1:$PORT" --cache-ttl "$CACHE_TTL" \
	>"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/metrics" && break; sleep 0.2; done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/metrics" || { echo "bench/servemem.sh: keyward serve did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }
"$bin/fill" -url "http://127.0.0.1:$PORT" -secrets "$data/secrets.txt" -n "$KEYS" -conns "$CONNS" \
	-zipf "$REQUESTS" -zipf-s "$ZIPF_S" -duration "$DURATION" -pid "$serve_pid"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# A loaded machine shows here first (e.g. usage writes timing out, which
# keeps their batch in memory): the figures of such a run are not comparable.
echo "server log: $(grep -c 'level=WARN' "$work/serve.log") warnings, $(grep -c 'level=ERROR' "$work/serve.log") errors"
sed -n 's/.*level=\(WARN\|ERROR\) msg="\([^"]*\)".*/  \1 \2/p' "$work/serve.log" | sort | uniq -c | sort -rn | head -5 || true
