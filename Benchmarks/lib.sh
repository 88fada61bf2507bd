# Shared by the benchmark scripts (source it; bash only): a temporary folder, a private
# redis-server on a unix socket in it, `flagctl daemon` on free ports, and their cleanup on exit.
#
#   . "$(dirname "$0")/../lib.sh"
#   bench_need NAME redis-server curl       # fails, naming the tool and its Debian package, if one is missing
#   bench_start_redis                       # sets work, redis (unix://…), redis_socket
#   bench_start_daemon NAME [ENV=VALUE …] -- ARGS…   # runs `$flagctl daemon ARGS…` with the given
#                                           # environment; sets port (HTTP) and, when the daemon
#                                           # serves flagd sync, sync_port; fails with its log if it
#                                           # does not announce its port or answer /readyz in 20 s
# Everything started is stopped and the folder removed when the script exits.

bench_need() {
    local name=$1
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$name: $tool not found (Debian: apt-get install -y $tool)" >&2; exit 1; }
    done
}

work=$(mktemp -d)
redis_pid=""
daemon_pid=""
bench_cleanup() {
    if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true; fi
    if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap bench_cleanup EXIT

bench_start_redis() {
    redis_socket="$work/redis.sock"
    redis-server --port 0 --unixsocket "$redis_socket" --unixsocketperm 700 --save "" --appendonly no \
        --dir "$work" --logfile "$work/redis.log" --daemonize no &
    redis_pid=$!
    redis="unix://$redis_socket"
    for _ in $(seq 100); do [ -S "$redis_socket" ] && return 0; sleep 0.05; done
    echo "redis-server did not create $redis_socket in 5 s:" >&2
    cat "$work/redis.log" >&2
    exit 1
}

bench_start_daemon() {
    local name=$1
    shift
    local environment=()
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do environment+=("$1"); shift; done
    shift
    env "${environment[@]}" "$flagctl" daemon "$@" >"$work/daemon.out" 2>"$work/daemon.err" &
    daemon_pid=$!
    port="" sync_port=""
    local wants_sync=1
    case " $* " in *" --no-sync "*) wants_sync="" ;; esac
    for _ in $(seq 200); do
        port=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$work/daemon.out" 2>/dev/null | head -1 | sed 's/.*://' || true)
        sync_port=$(grep -o 'flagd sync ([^)]*) on 127.0.0.1:[0-9]*' "$work/daemon.out" 2>/dev/null | head -1 | sed 's/.*://' || true)
        if [ -n "$port" ] && { [ -z "$wants_sync" ] || [ -n "$sync_port" ]; } &&
            curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; then
            return 0
        fi
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$name: the daemon did not start (or did not become ready in 20 s):" >&2
    cat "$work/daemon.out" "$work/daemon.err" >&2
    exit 1
}
