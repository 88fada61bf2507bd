#!/usr/bin/env bash
# OFREP over HTTP: single evaluations through `flagctl daemon` (release build) over HTTP/1.1
# keep-alive. Starts its own redis-server (unix socket, temporary folder), syncs the repository's
# flags/prod into it, runs the daemon on a free port, warms up, measures, stops all.
# Two measurements of the same request (evaluate.lua's):
#   1. wrk, closed loop: as many requests as the daemon answers (throughput; its latency is just
#      connections / throughput);
#   2. ofrep-load (Benchmarks/Sources/OFREPLoad), open loop: RATE requests per second spread over
#      the same connections, latency counted from when each request was due (wrk2's correction
#      for coordinated omission). Exits non-zero if it achieves less than 95% of RATE.
#
#   Benchmarks/ofrep-benchmark/run.sh                       # wrk -t2 -c50 -d10s, then 20,000 req/s; flag new-checkout
#   FLAG=checkout-button-color CONNECTIONS=100 DURATION=30s Benchmarks/ofrep-benchmark/run.sh
#   RATE=10000 Benchmarks/ofrep-benchmark/run.sh            # the open-loop rate, requests per second (default 20000)
#   TOKEN=1 Benchmarks/ofrep-benchmark/run.sh               # with bearer-token authentication on
#
# Needs wrk (Debian: apt-get install -y wrk) and redis-server. SCRATCH names the build folder of
# flagctl (default: .build of the package), BENCH_SCRATCH the one of ofrep-load (default:
# Benchmarks/.build). THREADS is wrk's thread count (default 2); ofrep-load uses one thread.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
scratch=${SCRATCH:-$root/.build}
threads=${THREADS:-2}
connections=${CONNECTIONS:-50}
duration=${DURATION:-10s}
rate=${RATE:-20000}
bench_scratch=${BENCH_SCRATCH:-$root/Benchmarks/.build}
export FLAG=${FLAG:-new-checkout}

. "$here/../lib.sh"
bench_need ofrep-benchmark wrk redis-server curl

(cd "$root" && swift build -c release --product flagctl --static-swift-stdlib --scratch-path "$scratch" >&2)
flagctl="$scratch/release/flagctl"
swift build -c release --product ofrep-load --package-path "$root/Benchmarks" --scratch-path "$bench_scratch" >&2
ofrep_load="$bench_scratch/release/ofrep-load"

bench_start_redis
"$flagctl" sync --env prod --flags "$root/flags" --redis "$redis" >/dev/null

daemon_env=()
if [ -n "${TOKEN:-}" ]; then
    export TOKEN="ofrep-benchmark-token-$RANDOM$RANDOM$RANDOM"
    daemon_env=("FLAGPOLE_DAEMON_TOKENS=$TOKEN")
fi
bench_start_daemon ofrep-benchmark "${daemon_env[@]}" -- --env prod --redis "$redis" --flags "$root/flags" --port 0 --no-sync --no-watcher
url="http://127.0.0.1:$port"
body='{"context":{"targetingKey":"user-42","email":"ann@example.com","plan":"business","appVersion":"4.3.0"}}'  # as in evaluate.lua

echo "flag $FLAG, one answer:"
curl -s -X POST "$url/ofrep/v1/evaluate/flags/$FLAG" -H 'Content-Type: application/json' \
    ${TOKEN:+-H "Authorization: Bearer $TOKEN"} \
    -d "$body"
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
wrk -t"$threads" -c"$connections" -d2s -s "$here/evaluate.lua" "$url" >/dev/null   # warm-up
echo "wrk -t$threads -c$connections -d$duration --latency -s evaluate.lua $url/ofrep/v1/evaluate/flags/$FLAG"
wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$here/evaluate.lua" "$url"
echo
# The same request as evaluate.lua's, at a constant rate.
load_args=(--url "$url/ofrep/v1/evaluate/flags/$FLAG" --method POST --header 'Content-Type: application/json' --body "$body")
if [ -n "${TOKEN:-}" ]; then load_args+=(--header "Authorization: Bearer $TOKEN"); fi
echo "ofrep-load --connections $connections --rate $rate --duration $duration --url $url/ofrep/v1/evaluate/flags/$FLAG"
load_status=0
"$ofrep_load" "${load_args[@]}" --connections "$connections" --rate "$rate" --duration "$duration" || load_status=$?
echo
# The request counters that moved (a zero series for every endpoint and status would push the
# figures above out of run-all's report, which keeps each benchmark's last 60 lines).
curl -s "$url/metrics" | grep -E '^flagpole_daemon_requests_total' | grep -v ' 0$'
exit "$load_status"
