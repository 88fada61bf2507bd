"""A Python service under a guarded rollout, for the outcome test
(Tests/FlagctlTests/PythonOutcomeTests.swift): flagd's provider in-process against the daemon's
sync port (example_inprocess.py), outcomes through flagpole.py. Not an example: docs/python.md
shows the module's use.

  outcome_traffic.py --flag KEY --rate N [--error-rate P] [--variant-error-rate VARIANT=P]
                     [--report-interval SECONDS]

Connects with the environment: FLAGPOLE_SYNC_PORT, FLAGPOLE_DAEMON_URL (OFREP and outcomes,
default http://127.0.0.1:8016), FLAGPOLE_DAEMON_TOKEN (optional). Evaluates KEY for a new user
N times a second and runs the "work" under `with flagpole.outcome(details):`, raising in it with
the variant's error rate (the exception is the caller's: this loop catches it). Prints
{"ready": true} once the provider has its flags, then one JSON line per report interval:
{"evaluations": n, "served": {variant: n}, "failed": n, "sent": total, "refused": total,
 "dropped": total, "queued": n, "last_error": text or null}. SIGTERM: flush, exit 0.
"""
import argparse
import json
import os
import random
import signal
import sys
import time

from openfeature import api
from openfeature.evaluation_context import EvaluationContext

import example_inprocess
import flagpole


class WorkFailed(Exception):
    pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--flag", required=True)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--variant-error-rate", action="append", default=[])
    parser.add_argument("--report-interval", type=float, default=0.5)
    args = parser.parse_args()
    error_rates = {}
    for entry in args.variant_error_rate:
        variant, rate = entry.split("=", 1)
        error_rates[variant] = float(rate)

    try:
        example_inprocess.connect()
    except Exception as error:
        print(json.dumps({"ready": False, "error": f"{type(error).__name__}: {error}"}), flush=True)
        sys.exit(1)
    reporter = flagpole.configure(
        os.environ.get("FLAGPOLE_DAEMON_URL", "http://127.0.0.1:8016"),
        token=os.environ.get("FLAGPOLE_DAEMON_TOKEN"),
        interval=0.25,
    )
    api.add_hooks([flagpole.OutcomeHook()])
    client = api.get_client()

    stopping = []

    def stop(*_):
        stopping.append(True)
        print("outcome_traffic: SIGTERM, flushing", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, stop)
    # A child inherits its parent's blocked signals (a Swift test process blocks SIGTERM in its
    # threads): without this, SIGTERM would stay pending until the SIGKILL.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    print(json.dumps({"ready": True}), flush=True)

    rng = random.Random(7)
    period = 1.0 / args.rate
    next_at = time.monotonic()
    report_at = next_at + args.report_interval
    evaluations, failed, served, n = 0, 0, {}, 0
    while not stopping:
        n += 1
        details = client.get_boolean_details(args.flag, False, EvaluationContext(f"user-{n}", {"plan": "business"}))
        served[str(details.variant)] = served.get(str(details.variant), 0) + 1
        evaluations += 1
        try:
            with flagpole.outcome(details):
                if rng.random() < error_rates.get(details.variant, args.error_rate):
                    raise WorkFailed()
        except WorkFailed:
            failed += 1
        now = time.monotonic()
        if now >= report_at:
            report = {
                "evaluations": evaluations, "served": served, "failed": failed, "sent": reporter.sent,
                "refused": reporter.refused, "dropped": reporter.dropped, "queued": reporter.queued, "last_error": reporter.last_error,
            }
            print(json.dumps(report), flush=True)
            evaluations, failed, served = 0, 0, {}
            report_at = now + args.report_interval
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()
    reporter.close()
    api.shutdown()
    print(f"outcome_traffic: stopped, {reporter.sent} outcomes sent, {reporter.queued} left", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
