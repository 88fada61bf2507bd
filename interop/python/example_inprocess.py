# Read Flagpole flags from Python in-process: flagd's provider receives the environment's flags from
# `flagctl daemon`'s flagd sync port (gRPC) and evaluates them locally, with no request per
# evaluation; every `flagctl set`, rollout step or revert reaches it within milliseconds.
#
#   pip install -r interop/python/requirements.txt
#   flagctl daemon --env prod &                  # flagd sync on 127.0.0.1:8015
#   python3 interop/python/example_inprocess.py
import os

import grpc
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext

HOST = os.environ.get("FLAGPOLE_SYNC_HOST", "127.0.0.1")
PORT = int(os.environ.get("FLAGPOLE_SYNC_PORT", "8015"))
TOKEN = os.environ.get("FLAGPOLE_DAEMON_TOKEN")  # needed when the daemon has tokens


def connect():
    credentials = None
    if TOKEN:
        # gRPC sends a token only over a secure channel: local credentials count as one on
        # loopback; across machines use grpc.ssl_channel_credentials() behind a TLS proxy.
        credentials = grpc.composite_channel_credentials(
            grpc.local_channel_credentials(), grpc.access_token_call_credentials(TOKEN)
        )
    # Waits for the first flag set (up to deadline_ms); raises when none came (no daemon, a refused token).
    api.set_provider_and_wait(
        FlagdProvider(
            resolver_type=ResolverType.IN_PROCESS,
            host=HOST,
            port=PORT,
            channel_credentials=credentials,
            deadline_ms=5000,  # wait up to 5 s for the first flag set
            retry_backoff_ms=200,  # reconnect quickly after the daemon restarts
            retry_backoff_max_ms=1000,
        )
    )


if __name__ == "__main__":
    connect()
    flags = api.get_client()
    user = EvaluationContext("u42", {"email": "ann@flagpole.dev", "plan": "business", "appVersion": "4.3.0"})
    print(flags.get_boolean_details("new-checkout", False, user))
    print(flags.get_string_value("checkout-button-color", "#000000", user))
    api.shutdown()
