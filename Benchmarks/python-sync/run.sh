#!/usr/bin/env bash
# Python through Flagpole's daemon (bench.py): starts its own redis-server (unix socket, temporary
# folder), syncs the repository's flags/prod into it, runs `flagctl daemon` (OFREP and flagd sync on
# free ports, no watcher), runs bench.py against it, stops all.
#
#   Benchmarks/python-sync/run.sh                    # release flagctl; 20,000 evaluations a mode, 10 rounds
#   N=5000 ROUNDS=5 Benchmarks/python-sync/run.sh    # shorter
#   CONFIG=debug Benchmarks/python-sync/run.sh       # the debug build (no release build needed)
#   TOKEN=1 Benchmarks/python-sync/run.sh            # with a token on both ports
#   PROCESSES=1,10 Benchmarks/python-sync/run.sh     # propagation to 1 and 10 processes only
#   FLAGCTL=.build/debug/flagctl Benchmarks/python-sync/run.sh   # that flagctl, no build
#
# Needs redis-server and the interop tests' virtualenv (~/.cache/flagpole-python-venv with
# interop/python/requirements.txt; PYTHON overrides the interpreter). SCRATCH names the build folder
# of flagctl (default: .build of the package).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
scratch=${SCRATCH:-$root/.build}
config=${CONFIG:-release}
python=${PYTHON:-$HOME/.cache/flagpole-python-venv/bin/python}

. "$here/../lib.sh"
bench_need python-sync redis-server curl
"$python" -c 'import openfeature.contrib.provider.flagd, openfeature.contrib.provider.ofrep' 2>/dev/null || {
    echo "python-sync: $python cannot import the flagd and OFREP providers; run: $python -m pip install -r interop/python/requirements.txt" >&2
    exit 1
}

if [ -n "${FLAGCTL:-}" ]; then
    flagctl=$FLAGCTL  # a flagctl already built: no build
    config="given ($FLAGCTL)"
else
    (cd "$root" && swift build -c "$config" --product flagctl --scratch-path "$scratch" >&2)
    flagctl="$scratch/$config/flagctl"
fi

bench_start_redis
"$flagctl" sync --env prod --flags "$root/flags" --redis "$redis" >/dev/null

token_args=()
daemon_env=()
if [ -n "${TOKEN:-}" ]; then
    TOKEN="python-sync-benchmark-token-$RANDOM$RANDOM$RANDOM"
    daemon_env=("FLAGPOLE_DAEMON_TOKENS=$TOKEN")
    token_args=(--token "$TOKEN")
fi
bench_start_daemon python-sync "${daemon_env[@]}" -- --env prod --redis "$redis" --flags "$root/flags" --port 0 --sync-port 0 --no-watcher

echo "flagctl $config build; daemon: OFREP http://127.0.0.1:$port, flagd sync 127.0.0.1:$sync_port; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" "$here/bench.py" --flagctl "$flagctl" --redis "$redis" --env prod --flags "$root/flags" \
    --sync-port "$sync_port" --ofrep-url "http://127.0.0.1:$port" --n "${N:-20000}" --rounds "${ROUNDS:-10}" \
    --processes "${PROCESSES:-1,10,100}" "${token_args[@]}"
