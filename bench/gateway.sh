#!/usr/bin/env bash
# bench/gateway.sh: keyward over HTTP against bare net/http baselines, each
# pair loaded in the same run by the same wrk with the same concurrency:
#
#   - "keyward gateway" (keys verified in process, cache hit) against a bare
#     httputil.ReverseProxy to the same upstream (docs/benchmarks.md target:
#     >= 85% of its requests/s);
#   - POST /v1/keys/verify of "keyward serve" against a bare net/http JSON
#     handler (bench/benchserver json) answering the same request with the
#     same JSON (target: >= 60% of its requests/s);
#   - POST /v2/keys.verifyKey of "keyward serve" (the Unkey v2 API,
#     docs/unkey.md) against its own POST /v1/keys/verify for the same key
#     (target: >= 90% of its requests/s);
#   - /v1/forward-auth of "keyward serve", beside the bare upstream handler
#     (200 "ok") for scale (no target).
#
# Rounds interleave the targets, so a noisy neighbour hits all of them.
# Loopback only; every run is bounded by DURATION.
#
#   bench/gateway.sh                 # defaults: 3 rounds of 4s per target, 64 connections
#   DURATION=10s CONNS=32 ROUNDS=2 bench/gateway.sh
#   RESULTS=out.txt bench/gateway.sh # also write "target req/s p50_ms p99_ms" per round
#
# Needs wrk (Debian: apt-get install wrk). Load generator, servers and
# upstream share the machine: compare the columns of one run, not runs on
# different machines. KEYWARD_BIN may name a keyward binary already built.
set -euo pipefail

DURATION=${DURATION:-4s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
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

if [ -n "${KEYWARD_BIN:-}" ]; then
	cp "$KEYWARD_BIN" "$work/keyward"
else
	go build -o "$work/keyward" ./cmd/keyward
fi
go build -o "$work/benchserver" ./bench/benchserver

up=127.0.0.1:$BASE_PORT
bare=127.0.0.1:$((BASE_PORT + 1))
api=127.0.0.1:$((BASE_PORT + 2))
gw=127.0.0.1:$((BASE_PORT + 3))
barejson=127.0.0.1:$((BASE_PORT + 4))

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

# The verify endpoint's request, and keyward's answer to it, which the bare
# JSON handler returns for every request.
export WRK_BODY="{\"key\":\"$key\",\"permissions\":[\"bench:read\"]}"
curl -sf -X POST -H "Authorization: Bearer $root" -H 'Content-Type: application/json' -d "$WRK_BODY" \
	"http://$api/v1/keys/verify" >"$work/verify.json" || { echo "bench/gateway.sh: POST /v1/keys/verify failed" >&2; exit 1; }
grep -q '"valid": *true' "$work/verify.json" || { echo "bench/gateway.sh: the key did not verify: $(cat "$work/verify.json")" >&2; exit 1; }
# The same verification through the Unkey v2 API (post.lua reads WRK_BODY,
# which run's callers set per target).
V2_BODY="{\"key\":\"$key\",\"permissions\":\"bench:read\"}"
curl -sf -X POST -H "Authorization: Bearer $root" -H 'Content-Type: application/json' -d "$V2_BODY" \
	"http://$api/v2/keys.verifyKey" | grep -q '"code": *"VALID"' || { echo "bench/gateway.sh: POST /v2/keys.verifyKey did not verify the key" >&2; exit 1; }
"$work/benchserver" json "$barejson" "$work/verify.json" 2>"$work/barejson.log" & pids+=($!)
wait_port "$barejson"

# Check the setup before measuring: a key passes, none is refused.
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code -H "Authorization: Bearer $key" "http://$gw/x")" = 200 ] || { echo "gateway refused the key" >&2; exit 1; }
[ "$(code "http://$gw/x")" = 401 ] || { echo "gateway let a request without a key through" >&2; exit 1; }
[ "$(code -H "Authorization: Bearer $key" -H "X-Original-URI: /x" "http://$api/v1/forward-auth")" = 200 ] || { echo "forward-auth refused the key" >&2; exit 1; }
[ "$(code -X POST -d "$WRK_BODY" "http://$barejson/v1/keys/verify")" = 200 ] || { echo "the bare JSON handler failed" >&2; exit 1; }

ms() { # ms LATENCY: wrk's "850.00us", "1.20ms" or "1.02s" in milliseconds
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		printf "%.3f", u == "us" ? n / 1000 : u == "s" ? n * 1000 : u == "m" ? n * 60000 : n
	}'
}

run() { # run NAME URL [wrk args...]: prints "NAME req/s p50_ms p99_ms"
	local name=$1 url=$2
	shift 2
	local out
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "$url")
	local errs
	errs=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' <<<"$out")
	[ -z "$errs" ] || { echo "bench/gateway.sh: $name: $errs non-2xx responses" >&2; exit 1; }
	printf '%s %s %s %s\n' "$name" \
		"$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")" \
		"$(ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")" \
		"$(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
}

results=$work/results
wrk -t1 -c8 -d2s "http://$bare/x" >/dev/null # warm up
wrk -t1 -c8 -d2s -H "Authorization: Bearer $key" "http://$gw/x" >/dev/null
wrk -t1 -c8 -d1s -s bench/post.lua -H "Authorization: Bearer $root" "http://$api/v1/keys/verify" >/dev/null
wrk -t1 -c8 -d1s -s bench/post.lua "http://$barejson/v1/keys/verify" >/dev/null
WRK_BODY=$V2_BODY wrk -t1 -c8 -d1s -s bench/post.lua -H "Authorization: Bearer $root" "http://$api/v2/keys.verifyKey" >/dev/null
for round in $(seq "$ROUNDS"); do
	echo "round $round of $ROUNDS: 7 targets x $DURATION" >&2
	run bare-proxy "http://$bare/x" >>"$results"
	run gateway "http://$gw/x" -H "Authorization: Bearer $key" >>"$results"
	run bare-json "http://$barejson/v1/keys/verify" -s bench/post.lua >>"$results"
	run verify "http://$api/v1/keys/verify" -s bench/post.lua -H "Authorization: Bearer $root" >>"$results"
	WRK_BODY=$V2_BODY run unkey-verify "http://$api/v2/keys.verifyKey" -s bench/post.lua -H "Authorization: Bearer $root" >>"$results"
	run bare-handler "http://$up/x" >>"$results"
	run forward-auth "http://$api/v1/forward-auth" -H "Authorization: Bearer $key" -H "X-Original-URI: /x" >>"$results"
done
[ -z "${RESULTS:-}" ] || cp "$results" "$RESULTS"

echo "keyward over HTTP: $ROUNDS rounds x $DURATION per target, $CONNS connections, $THREADS wrk threads, $(nproc) CPUs, $(go env GOVERSION)"
awk '
	function median(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	{ rps[$1] = rps[$1] " " $2; p50[$1] = p50[$1] " " $3; p99[$1] = p99[$1] " " $4 }
	END {
		printf "%-14s %14s %10s %10s   %s\n", "target", "req/s (median)", "p50 ms", "p99 ms", "req/s per round"
		split("bare-proxy gateway bare-json verify unkey-verify bare-handler forward-auth", order, " ")
		for (i = 1; i <= 7; i++) { t = order[i]; printf "%-14s %14.0f %10.3f %10.3f  %s\n", t, median(rps[t]), median(p50[t]), median(p99[t]), rps[t] }
		printf "gateway / bare proxy:        %.1f%% (target >= 85%%)\n", 100 * median(rps["gateway"]) / median(rps["bare-proxy"])
		printf "verify / bare JSON handler:  %.1f%% (target >= 60%%)\n", 100 * median(rps["verify"]) / median(rps["bare-json"])
		printf "unkey-verify / verify:       %.1f%% (target >= 90%%)\n", 100 * median(rps["unkey-verify"]) / median(rps["verify"])
		printf "forward-auth / bare handler: %.1f%% (no target)\n", 100 * median(rps["forward-auth"]) / median(rps["bare-handler"])
	}' "$results"
