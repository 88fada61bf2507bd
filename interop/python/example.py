# Read Flagpole flags from Python through `flagctl daemon` (OFREP), and report how the work went.
#
#   pip install -r interop/python/requirements.txt
#   flagctl daemon --env prod &                  # serves http://127.0.0.1:8016
#   python3 interop/python/example.py
import json
import os
import sys
import urllib.error
import urllib.request

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

DAEMON = os.environ.get("FLAGPOLE_DAEMON_URL", "http://127.0.0.1:8016")
TOKEN = os.environ.get("FLAGPOLE_DAEMON_TOKEN")  # needed when the daemon has tokens
HEADERS = {"Authorization": f"Bearer {TOKEN}"} if TOKEN else {}

api.set_provider(OFREPProvider(DAEMON, headers_factory=lambda: HEADERS))
flags = api.get_client()

# Every evaluation is one HTTP request to the daemon, which answers from memory.
user = EvaluationContext("u42", {"email": "ann@flagpole.dev", "plan": "business", "appVersion": "4.3.0"})
checkout = flags.get_boolean_details("new-checkout", False, user)
color = flags.get_string_details("checkout-button-color", "#000000", user)
upload_mb = flags.get_integer_details("max-upload-mb", 10, user)
weight = flags.get_float_details("search-ranking-weight", 1.0, user)
banner = flags.get_object_details("homepage-banner", {}, user)


def report_outcome(flag, variant, success, duration_ms=None):
    """Counts the work done under a flag's variant, so that errors here can stop a rollout."""
    outcome = {"flag": flag, "variant": variant, "success": success, "durationMs": duration_ms}
    request = urllib.request.Request(
        f"{DAEMON}/flagpole/v1/outcomes",
        data=json.dumps({"outcomes": [outcome]}).encode(),
        headers={"Content-Type": "application/json", **HEADERS},
    )
    try:
        urllib.request.urlopen(request, timeout=2).close()
    except urllib.error.HTTPError as error:  # 400 bad report, 401/403 token
        sys.exit(f"outcome not recorded: HTTP {error.code}: {error.read().decode()}")


for details in (checkout, color, upload_mb, weight, banner):
    print(json.dumps({
        "flag": details.flag_key, "value": details.value, "variant": details.variant,
        "reason": details.reason, "error": details.error_code, "message": details.error_message,
    }))

report_outcome("new-checkout", checkout.variant, success=True, duration_ms=42.0)
