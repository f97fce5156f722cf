#!/usr/bin/env bash
# bench/gateway.sh: throughput and p99 latency of "keyward gateway" (keys
# verified in process, cache hit) against a bare httputil.ReverseProxy to the
# same upstream, in the same run, plus /v1/forward-auth requests/s. Loopback
# only; every run is bounded by DURATION.
#
#   bench/gateway.sh                 # defaults: 10s per run, 64 connections
#   DURATION=5s CONNS=32 ROUNDS=3 bench/gateway.sh
#
# Needs wrk (Debian: apt-get install wrk). Load generator, proxies and upstream
# share the machine: compare the columns of one run, not runs on different
# machines. Target (DESIGN.md section 9): the gateway at >= 85% of the bare
# proxy's throughput.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
BASE_PORT=${BASE_PORT:-18480}

command -v wrk >/dev/null || { echo "bench/gateway.sh: wrk not found: apt-get install wrk" >&2; exit 1; }
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/keyward" ./cmd/keyward
go build -o "$work/benchserver" ./bench/benchserver

up=127.0.0.1:$BASE_PORT
bare=127.0.0.1:$((BASE_PORT + 1))
api=127.0.0.1:$((BASE_PORT + 2))
gw=127.0.0.1:$((BASE_PORT + 3))

wait_port() { # wait_port ADDR: until something accepts on ADDR (at most 20s)
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench/gateway.sh: nothing listens on $1" >&2
	exit 1
}

export KEYWARD_DATA=$work/data KEYWARD_LOG_LEVEL=warn
"$work/benchserver" upstream "$up" 2>"$work/upstream.log" & pids+=($!)
"$work/benchserver" bareproxy "$bare" "http://$up" 2>"$work/bare.log" & pids+=($!)
"$work/keyward" serve --listen "$api" >"$work/serve.out" 2>"$work/serve.log" & pids+=($!)
wait_port "$up"; wait_port "$bare"; wait_port "$api"
root=$(sed -n 's/^root key: //p' "$work/serve.out")
acct=$(KEYWARD_URL=http://$api KEYWARD_API_KEY=$root "$work/keyward" accounts create --name bench -o json | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | head -1)
key=$(KEYWARD_URL=http://$api KEYWARD_API_KEY=$root "$work/keyward" keys create --account "$acct" --role account_admin \
	--permission bench:read -o json | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')
[ -n "$key" ] || { echo "bench/gateway.sh: could not create a key" >&2; exit 1; }
"$work/keyward" gateway --listen "$gw" --upstream "http://$up" --permission bench:read 2>"$work/gateway.log" & pids+=($!)
wait_port "$gw"

# Check the setup before measuring: a key passes, none is refused.
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code -H "Authorization: Bearer $key" "http://$gw/x")" = 200 ] || { echo "gateway refused the key" >&2; exit 1; }
[ "$(code "http://$gw/x")" = 401 ] || { echo "gateway let a request without a key through" >&2; exit 1; }
[ "$(code -H "Authorization: Bearer $key" -H "X-Original-URI: /x" "http://$api/v1/forward-auth")" = 200 ] || { echo "forward-auth refused the key" >&2; exit 1; }

run() { # run NAME URL [wrk args...]: prints "NAME req/s p50 p99"
	local name=$1 url=$2
	shift 2
	local out
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "$url")
	local errs
	errs=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' <<<"$out")
	[ -z "$errs" ] || { echo "bench/gateway.sh: $name: $errs non-2xx responses" >&2; exit 1; }
	printf '%s %s %s %s\n' "$name" \
		"$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")" \
		"$(awk '$1 == "50%" {print $2}' <<<"$out")" \
		"$(awk '$1 == "99%" {print $2}' <<<"$out")"
}

results=$work/results
wrk -t1 -c8 -d2s "http://$bare/x" >/dev/null # warm up
wrk -t1 -c8 -d2s -H "Authorization: Bearer $key" "http://$gw/x" >/dev/null
for round in $(seq "$ROUNDS"); do
	run bare "http://$bare/x" >>"$results"
	run gateway "http://$gw/x" -H "Authorization: Bearer $key" >>"$results"
	run forward-auth "http://$api/v1/forward-auth" -H "Authorization: Bearer $key" -H "X-Original-URI: /x" >>"$results"
done

echo "keyward gateway benchmark: $ROUNDS rounds x $DURATION, $CONNS connections, $THREADS wrk threads, $(nproc) CPUs, $(go env GOVERSION)"
awk '
	{ n[$1]++; rps[$1] += $2; if (n[$1] == 1 || $4 > "") p99[$1] = p99[$1] (p99[$1] ? " " : "") $4; p50[$1] = p50[$1] (p50[$1] ? " " : "") $3 }
	END {
		printf "%-14s %12s  %-22s %s\n", "target", "req/s (mean)", "p50 per round", "p99 per round"
		split("bare gateway forward-auth", order, " ")
		for (i = 1; i <= 3; i++) { t = order[i]; printf "%-14s %12.0f  %-22s %s\n", t, rps[t] / n[t], p50[t], p99[t] }
		printf "gateway / bare proxy: %.1f%% (target >= 85%%)\n", 100 * rps["gateway"] / rps["bare"]
	}' "$results"
