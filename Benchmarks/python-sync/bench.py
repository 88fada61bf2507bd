#!/usr/bin/env python3
"""Python through Flagpole's daemon, in one run (docs/benchmarks.md, "Python"):

  ns per evaluation through the OpenFeature SDK with
    (a) flagd's provider in-process against the daemon's flagd sync port,
    (b) the OFREP provider against the daemon's HTTP port,
    (c) flagd's provider in FILE mode on the same flags (the daemon's effective document, fetched
        once with FetchAllFlags): the floor for Python;
  and propagation from `flagctl set` (timed from just before the command starts) to 1, 10 and 100
  Python processes with the in-process provider (p50, p99).

  Needs a Redis with the environment synced and `flagctl daemon` running (tokens optional), and the
  venv of the interop tests (~/.cache/flagpole-python-venv, interop/python/requirements.txt):

  bench.py --flagctl PATH --redis URL --env ENV --flags DIR --sync-port N --ofrep-url URL [--token T]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "interop", "python"))

import grpc
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.schemas.protobuf.flagd.sync.v1 import sync_pb2, sync_pb2_grpc

FLAG, DEFAULT = "checkout-button-color", "#000000"
USER = EvaluationContext("u42", {"email": "bob@example.com", "plan": "business", "appVersion": "4.3.0"})


def credentials(token):
    if not token:
        return None
    return grpc.composite_channel_credentials(grpc.local_channel_credentials(), grpc.access_token_call_credentials(token))


def ns_per_eval(providers, rounds=7):
    """Median ns per evaluation of each provider, {name: (provider, n)}: every provider is set up
    first (each under its own domain), then the rounds alternate between them in rotating order, so
    that a change of the machine's load falls on all of them alike."""
    clients = {}
    for name, (provider, n) in providers.items():
        api.set_provider_and_wait(provider, name)
        client = api.get_client(name)
        for _ in range(min(n, 1000)):
            client.get_string_value(FLAG, DEFAULT, USER)
        clients[name] = (client, n)
    samples = {name: [] for name in providers}
    names = list(providers)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            client, n = clients[name]
            start = time.perf_counter_ns()
            for _ in range(n):
                client.get_string_value(FLAG, DEFAULT, USER)
            samples[name].append((time.perf_counter_ns() - start) / n)
    api.shutdown()
    return {name: statistics.median(values) for name, values in samples.items()}


WATCHER = r"""
import sys, threading, time
sys.path.insert(0, sys.argv[1])
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
import example_inprocess
example_inprocess.connect()
client = api.get_client()
user = EvaluationContext("u42", {"email": "bob@example.com"})
lock = threading.Lock()
want = [None]

def check(*_):
    # Called on every flag set the provider receives (and once per command): prints the wall clock
    # the first time the user is served the wanted variant by `flagctl set` (reason STATIC).
    with lock:
        if want[0] is None:
            return
        details = client.get_string_details("%s", "#000000", user)
        if details.variant == want[0] and details.reason == "STATIC":
            want[0] = None
            print(time.time_ns(), flush=True)

api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, check)
print("ready", flush=True)
for line in sys.stdin:
    with lock:
        want[0] = line.strip()
    check()
""" % FLAG


def propagation(args, count, rounds):
    """Delays from just before `flagctl set` starts to each of `count` processes serving the new
    variant, over `rounds` sets (alternating green and blue), after one untimed set to blue."""
    env = dict(os.environ, FLAGPOLE_SYNC_PORT=str(args.sync_port), FLAGPOLE_DAEMON_TOKEN=args.token or "")
    interop = os.path.join(HERE, "..", "..", "interop", "python")
    procs = [subprocess.Popen([sys.executable, "-c", WATCHER, interop], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(count)]
    for p in procs:
        line = p.stdout.readline().strip()
        if line != "ready":
            sys.exit(f"bench.py: a watcher process did not get ready (printed {line!r})")
    # The daemon's own stream, read raw: when the Swift client inside the daemon has the change and
    # has pushed it (the Python processes add their receive, parse and evaluate on top).
    arrivals = []
    stream_channel = (grpc.secure_channel(f"127.0.0.1:{args.sync_port}", credentials(args.token)) if args.token
                      else grpc.insecure_channel(f"127.0.0.1:{args.sync_port}"))
    stream = sync_pb2_grpc.FlagSyncServiceStub(stream_channel).SyncFlags(sync_pb2.SyncFlagsRequest())

    def read_stream():
        try:
            for _ in stream:
                arrivals.append(time.time_ns())
        except grpc.RpcError:
            pass  # cancelled at the end

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    delays, pushed = [], []
    for i in range(rounds + 1):
        variant = "blue" if i % 2 == 0 else "green"
        for p in procs:
            p.stdin.write(variant + "\n")
            p.stdin.flush()
        start = time.time_ns()
        subprocess.run([args.flagctl, "set", FLAG, variant, "--env", args.env, "--redis", args.redis, "--flags", args.flags],
                       check=True, capture_output=True)
        seen = [(int(p.stdout.readline()) - start) / 1e6 for p in procs]
        if i > 0:  # the first set only brings every process to a known variant
            delays.extend(seen)
            first = next((t for t in list(arrivals) if t >= start), None)
            if first is not None:
                pushed.append((first - start) / 1e6)
    for p in procs:
        p.stdin.close()
        p.terminate()
    for p in procs:
        p.wait()
    stream.cancel()
    stream_channel.close()
    return percentiles(delays), percentiles(pushed)


def percentiles(values):
    if not values:
        return float("nan"), float("nan")
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, int(len(values) * 0.99))]


def main():
    ap = argparse.ArgumentParser()
    for name in ("flagctl", "redis", "env", "flags", "ofrep-url"):
        ap.add_argument("--" + name, required=True)
    ap.add_argument("--sync-port", type=int, required=True)
    ap.add_argument("--token")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--processes", default="1,10,100", help="comma-separated process counts for propagation")
    args = ap.parse_args()

    channel = grpc.secure_channel(f"127.0.0.1:{args.sync_port}", credentials(args.token)) if args.token else grpc.insecure_channel(f"127.0.0.1:{args.sync_port}")
    document = sync_pb2_grpc.FlagSyncServiceStub(channel).FetchAllFlags(sync_pb2.FetchAllFlagsRequest()).flag_configuration
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(document)
        path = f.name

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    figures = ns_per_eval({
        "inprocess": (FlagdProvider(resolver_type=ResolverType.IN_PROCESS, port=args.sync_port, channel_credentials=credentials(args.token), deadline_ms=5000), args.n),
        "ofrep": (OFREPProvider(args.ofrep_url, headers_factory=lambda: headers), max(200, args.n // 50)),
        "file": (FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=path, deadline_ms=5000), args.n),
    })
    inprocess, ofrep, filemode = figures["inprocess"], figures["ofrep"], figures["file"]
    print(f"Evaluation of {FLAG} (targeting: ends_with on email) through the OpenFeature SDK; median of 7 interleaved rounds:\n")
    print("| Python, OpenFeature SDK | ns per evaluation | vs FILE mode |")
    print("|---|---:|---:|")
    for name, ns in (("(a) flagd in-process, daemon's sync port", inprocess), ("(b) OFREP, daemon's HTTP port", ofrep), ("(c) flagd FILE mode, same flags", filemode)):
        print(f"| {name} | {ns:,.0f} | {ns / filemode:.2f}x |")
    print(f"\n(b) / (a) = {ofrep / inprocess:.1f}x")
    print(f"\nPropagation of `flagctl set` ({args.rounds} sets; ms from just before flagctl starts, its start-up included):\n")
    print("| Python processes (flagd in-process) | Python p50 | Python p99 | daemon's stream p50 | daemon's stream p99 |")
    print("|---:|---:|---:|---:|---:|")
    for count in (int(c) for c in args.processes.split(",")):
        (p50, p99), (s50, s99) = propagation(args, count, args.rounds)
        print(f"| {count} | {p50:.1f} | {p99:.1f} | {s50:.1f} | {s99:.1f} |")
    print("\n(daemon's stream: a raw SyncFlags stream in this process, i.e. when the daemon's Swift client had the change and pushed it)")


if __name__ == "__main__":
    main()
