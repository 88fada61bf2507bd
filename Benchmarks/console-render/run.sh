#!/usr/bin/env bash
# The web console's server time per page with 10,000 flags and a rollout whose chart covers one
# hour. Starts its own redis-server (unix socket, temporary folder), syncs FLAGS generated flags
# (default 10000) into environment `bench`, starts a rollout and moves its start an hour back, fills
# that hour's outcome counters (60 minutes, treatment and control), runs `flagctl daemon` on a free
# port without tokens (loopback), asks each page REQUESTS times (default 30, after 3 warm-ups) and
# prints the median and 90th percentile of the daemon's `Server-Timing: render;dur=…` (Redis reads
# and rendering, in the daemon) and of curl's total time. Goal: under 50 ms server time.
#
#   Benchmarks/console-render/run.sh                     # release build of flagctl
#   CONFIGURATION=debug Benchmarks/console-render/run.sh # the debug build (slower; say so when quoting it)
#   FLAGS=1000 REQUESTS=100 Benchmarks/console-render/run.sh
#
# Needs redis-server, redis-cli, curl and python3. SCRATCH names flagctl's build folder (default: .build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
scratch=${SCRATCH:-$root/.build}
configuration=${CONFIGURATION:-release}
flags=${FLAGS:-10000}
requests=${REQUESTS:-30}

. "$here/../lib.sh"
bench_need console-render redis-server redis-cli curl python3
(cd "$root" && swift build -c "$configuration" --product flagctl --scratch-path "$scratch" >&2)
flagctl="$scratch/$configuration/flagctl"

bench_start_redis
export FLAGPOLE_REDIS_URL="$redis"
cli() { redis-cli -s "$redis_socket" "$@"; }

mkdir -p "$work/flags/bench"
python3 - "$work/flags/bench/flags.json" "$flags" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
flags = {}
for i in range(n):
    flag = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}
    if i % 3 == 0:
        flag["targeting"] = {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", None]}
    flags[f"flag-{i:05d}"] = flag
flags["new-checkout"] = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}
json.dump({"flags": flags}, open(path, "w"))
PY
"$flagctl" sync --env bench --flags "$work/flags" --reason benchmark >/dev/null
"$flagctl" rollout start new-checkout --to on --steps 25,100 --watch 2h --env bench --flags "$work/flags" --dry-run >/dev/null
now=$(date +%s)
# The rollout began an hour ago: move its start back, and fill the hour's outcome counters.
record=$(cli HGET 'flagpole:{bench}:rollouts' new-checkout)
moved=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["startedAt"]=int(sys.argv[2])-3600; r["stepStartedAt"]=int(sys.argv[2])-3600; print(json.dumps(r))' "$record" "$now")
cli HSET 'flagpole:{bench}:rollouts' new-checkout "$moved" >/dev/null
minute=$((now / 60))
for m in $(seq $((minute - 70)) "$minute"); do
    cli HSET "flagpole:{bench}:outcomes:$m:new-checkout" "off|ok" 2970 "off|err" 30 "on|ok" 950 "on|err" $((20 + m % 9)) >/dev/null
done

bench_start_daemon console-render -- --env bench --flags "$work/flags" --port 0 --no-sync --no-alerts
base="http://127.0.0.1:$port"
# A session (no tokens: the console is open on loopback and hands out a cookie).
cookie=$(curl -fsS -D - -o /dev/null "$base/console" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(flagpole_console=[^;]*\).*/\1/p' | head -1)

echo "console render time: $flags flags, a 1-hour rollout chart; flagctl $configuration build; $(nproc) cores"
printf '%-42s %14s %14s %14s %14s\n' page "server p50 ms" "server p90 ms" "total p50 ms" "total p90 ms"
for page in /console /console/flags "/console/flags?q=flag-0999" /console/flags/flag-00003 /console/rollouts /console/rollouts/new-checkout /console/audit; do
    for _ in 1 2 3; do curl -fsS -o /dev/null -H "Cookie: $cookie" "$base$page"; done
    : >"$work/times"
    for _ in $(seq 1 "$requests"); do
        curl -fsS -o /dev/null -D "$work/headers" -w '%{time_total}\n' -H "Cookie: $cookie" "$base$page" >>"$work/total"
        tr -d '\r' <"$work/headers" | sed -n 's/^[Ss]erver-[Tt]iming: render;dur=//p' >>"$work/times"
    done
    python3 - "$page" "$work/times" "$work/total" <<'PY'
import sys
def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]
page, server, total = sys.argv[1], [float(x) for x in open(sys.argv[2]) if x.strip()], [float(x) * 1000 for x in open(sys.argv[3]) if x.strip()]
print(f"{page:42s} {pct(server, .5):14.1f} {pct(server, .9):14.1f} {pct(total, .5):14.1f} {pct(total, .9):14.1f}")
PY
    : >"$work/total"
done
