"""Drives flagd's Python provider in in-process mode against `flagctl daemon`'s sync port, for the
interop tests (Tests/FlagctlTests/PythonInProcessTests.swift). Not an example: docs/python.md and
example_inprocess.py show the provider's setup for an app.

Connects with the environment: FLAGPOLE_SYNC_HOST (default 127.0.0.1), FLAGPOLE_SYNC_PORT
(default 8015), FLAGPOLE_DAEMON_TOKEN (optional). Prints {"ready": true} once the first flag set
has arrived (else {"ready": false, "status": S} and exit status 1: a refused token, no daemon),
then answers one JSON line on stdout per JSON line on stdin:

  {"op": "eval", "cases": [{"flag": K, "type": "boolean|string|integer|float|object",
                            "default": V, "context": {"targetingKey": ..., ...}}, ...]}
      -> {"results": [{"value": V, "variant": V, "reason": R, "error": E}, ...]}
  {"op": "watch", "case": {...one case...}, "expect": {"variant": V, "reason": R}, "timeout": SECONDS}
      -> {"seen": true, "at_ns": WALL_CLOCK_NS} as soon as an evaluation gives every expected
         field (checked every half millisecond), else {"seen": false, "last": {...}} after the timeout
"""
import json
import os
import sys
import time

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider import ProviderStatus

import example_inprocess  # the provider's setup, as docs/python.md shows it

EVALUATE = {
    "boolean": "get_boolean_details",
    "string": "get_string_details",
    "integer": "get_integer_details",
    "float": "get_float_details",
    "object": "get_object_details",
}


def evaluate(client, case):
    context = dict(case.get("context") or {})
    key = context.pop("targetingKey", None)
    details = getattr(client, EVALUATE[case["type"]])(case["flag"], case["default"], EvaluationContext(key, context))
    error = details.error_code.value if details.error_code is not None else None
    reason = details.reason.value if hasattr(details.reason, "value") else details.reason
    return {"value": details.value, "variant": details.variant, "reason": reason, "error": error}


def main():
    try:
        example_inprocess.connect()
    except Exception as error:  # no flag set within the deadline: a refused token, no daemon
        print(json.dumps({"ready": False, "error": f"{type(error).__name__}: {error}"}), flush=True)
        api.shutdown()
        sys.exit(1)
    client = api.get_client()
    # A provider that initialized but is not READY (an error event since) cannot be compared either.
    status = client.get_provider_status()
    if status != ProviderStatus.READY:
        print(json.dumps({"ready": False, "status": status.value}), flush=True)
        api.shutdown()
        sys.exit(1)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        if command["op"] == "eval":
            answer = {"results": [evaluate(client, case) for case in command["cases"]]}
        elif command["op"] == "watch":
            deadline = time.monotonic() + float(command.get("timeout", 10))
            answer = None
            while time.monotonic() < deadline:
                last = evaluate(client, command["case"])
                if all(last.get(k) == v for k, v in command["expect"].items()):
                    answer = {"seen": True, "at_ns": time.time_ns()}
                    break
                time.sleep(0.0005)
            if answer is None:
                answer = {"seen": False, "last": evaluate(client, command["case"])}
        else:
            answer = {"error": f"unknown op {command['op']!r}"}
        print(json.dumps(answer), flush=True)
    api.shutdown()


if __name__ == "__main__":
    main()
