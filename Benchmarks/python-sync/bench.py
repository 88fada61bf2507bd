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
  venv of the interop tests (~/.cache/flagpole-ofrep-venv, interop/python/requirements.txt):

  bench.py --flagctl PATH --redis URL --env ENV --flags DIR --sync-port N --ofrep-url URL [--token T]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

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


def ns_per_eval(provider, n):
    api.set_provider_and_wait(provider)
    client = api.get_client()
    for _ in range(min(n, 1000)):
        client.get_string_value(FLAG, DEFAULT, USER)
    best = None
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(n):
            client.get_string_value(FLAG, DEFAULT, USER)
        per = (time.perf_counter_ns() - start) / n
        best = per if best is None else min(best, per)
    api.shutdown()
    return best


WATCHER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
import example_inprocess
example_inprocess.connect()
client = api.get_client()
user = EvaluationContext("u42", {"email": "bob@example.com"})
print("ready", flush=True)
for line in sys.stdin:
    want = line.strip()
    while client.get_string_details("%s", "#000000", user).variant != want:
        time.sleep(0.0002)
    print(time.time_ns(), flush=True)
""" % FLAG


def propagation(args, count, rounds):
    env = dict(os.environ, FLAGPOLE_SYNC_PORT=str(args.sync_port), FLAGPOLE_DAEMON_TOKEN=args.token or "")
    procs = [subprocess.Popen([sys.executable, "-c", WATCHER, os.path.join(HERE, "..", "..", "interop", "python")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) for _ in range(count)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    delays = []
    for i in range(rounds):
        variant = "green" if i % 2 == 0 else "blue"
        for p in procs:
            p.stdin.write(variant + "\n")
            p.stdin.flush()
        start = time.time_ns()
        subprocess.run([args.flagctl, "set", FLAG, variant, "--env", args.env, "--redis", args.redis, "--flags", args.flags],
                       check=True, capture_output=True)
        for p in procs:
            delays.append((int(p.stdout.readline()) - start) / 1e6)
    for p in procs:
        p.stdin.close()
        p.terminate()
    delays.sort()
    return statistics.median(delays), delays[min(len(delays) - 1, int(len(delays) * 0.99))]


def main():
    ap = argparse.ArgumentParser()
    for name in ("flagctl", "redis", "env", "flags", "ofrep-url"):
        ap.add_argument("--" + name, required=True)
    ap.add_argument("--sync-port", type=int, required=True)
    ap.add_argument("--token")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()

    channel = grpc.secure_channel(f"127.0.0.1:{args.sync_port}", credentials(args.token)) if args.token else grpc.insecure_channel(f"127.0.0.1:{args.sync_port}")
    document = sync_pb2_grpc.FlagSyncServiceStub(channel).FetchAllFlags(sync_pb2.FetchAllFlagsRequest()).flag_configuration
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(document)
        path = f.name

    inprocess = ns_per_eval(FlagdProvider(resolver_type=ResolverType.IN_PROCESS, port=args.sync_port, channel_credentials=credentials(args.token), deadline_ms=5000), args.n)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    ofrep = ns_per_eval(OFREPProvider(args.ofrep_url, headers_factory=lambda: headers), max(200, args.n // 50))
    filemode = ns_per_eval(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=path, deadline_ms=5000), args.n)
    print("| Python, OpenFeature SDK | ns per evaluation | vs FILE mode |")
    print("|---|---:|---:|")
    for name, ns in (("(a) flagd in-process, daemon's sync port", inprocess), ("(b) OFREP, daemon's HTTP port", ofrep), ("(c) flagd FILE mode, same flags", filemode)):
        print(f"| {name} | {ns:,.0f} | {ns / filemode:.2f}x |")
    print(f"\n(b) / (a) = {ofrep / inprocess:.1f}x")
    print("\n| processes | p50 ms | p99 ms |  (from `flagctl set`'s start, flagctl's start-up included)")
    print("|---:|---:|---:|")
    for count in (1, 10, 100):
        p50, p99 = propagation(args, count, args.rounds)
        print(f"| {count} | {p50:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main()
