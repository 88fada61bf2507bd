"""Report how work under a flag went to `flagctl daemon`, from Python, without hand-written HTTP.

Outcomes are the evidence Flagpole's rollout watcher judges a rollout on: a Python service that
reports them guards its own rollouts as the Swift client library does. Two ways:

    import flagpole

    reporter = flagpole.configure("http://127.0.0.1:8016", token=os.environ.get("FLAGPOLE_DAEMON_TOKEN"))

    details = client.get_boolean_details("new-checkout", False, user)
    with flagpole.outcome(details):          # success unless the block raises; timed
        checkout(user)

    api.add_hooks([flagpole.OutcomeHook()])  # or: every evaluation's error counts as a failure

Nothing here blocks or raises in the caller: outcomes go into a bounded in-memory queue (the oldest
dropped past `max_queue`, counted in `reporter.dropped`), and a daemon thread posts them in batches
to POST /flagpole/v1/outcomes every `interval` seconds. A refused batch (4xx) is dropped and
counted in `reporter.refused` with the daemon's reason in `reporter.last_error`; a daemon that does
not answer keeps the batch for the next round. `reporter.flush()` sends what is queued now
(call it at shutdown; `close()` flushes and stops the thread).
"""
import collections
import json
import threading
import time
import urllib.error
import urllib.request

__all__ = ["Reporter", "OutcomeHook", "configure", "outcome", "reporter"]

_MAX_DURATION_MS = 3_600_000.0  # the daemon refuses longer outcomes


class Reporter:
    """Batches outcomes and posts them to the daemon in the background."""

    def __init__(self, daemon_url="http://127.0.0.1:8016", token=None, interval=1.0, max_batch=1000, max_queue=100_000, timeout=2.0):
        self.url = daemon_url.rstrip("/") + "/flagpole/v1/outcomes"
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.interval = interval
        self.max_batch = max_batch
        self.timeout = timeout
        self.queue = collections.deque(maxlen=max_queue)
        self.sent = 0
        self.refused = 0
        self.dropped = 0
        self.last_error = None
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="flagpole-outcomes", daemon=True)
        self._thread.start()

    @property
    def queued(self):
        """The outcomes waiting to be sent."""
        with self._lock:
            return len(self.queue)

    def record(self, flag, variant, success, duration_ms=None):
        """Queues one outcome; never blocks, never raises."""
        try:
            entry = {"flag": str(flag), "variant": variant, "success": bool(success)}
            if duration_ms is not None:
                entry["durationMs"] = min(max(float(duration_ms), 0.0), _MAX_DURATION_MS)
            with self._lock:
                if len(self.queue) == self.queue.maxlen:
                    self.dropped += 1
                self.queue.append(entry)
        except Exception as error:  # a caller's odd value must not break its request
            self.last_error = f"outcome not queued: {error}"

    def flush(self):
        """Sends everything queued now (blocking this caller only); True when all was delivered."""
        with self._send_lock:
            while True:
                with self._lock:
                    batch = [self.queue.popleft() for _ in range(min(self.max_batch, len(self.queue)))]
                if not batch:
                    return True
                if not self._post(batch):
                    with self._lock:  # the daemon did not answer: keep the batch for the next round
                        self.queue.extendleft(reversed(batch))
                    return False

    def close(self):
        """Flushes and stops the background thread."""
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=self.timeout * 2 + 1)
        self.flush()

    def _post(self, batch):
        request = urllib.request.Request(self.url, data=json.dumps({"outcomes": batch}).encode(), headers=self.headers)
        try:
            urllib.request.urlopen(request, timeout=self.timeout).close()
            self.sent += len(batch)
            return True
        except urllib.error.HTTPError as error:
            if error.code == 429 or error.code >= 500:  # try again later
                self.last_error = f"HTTP {error.code}"
                return False
            self.refused += len(batch)  # 400/401/403/415: sending it again would not help
            try:
                self.last_error = f"HTTP {error.code}: {error.read().decode(errors='replace')}"
            except Exception:
                self.last_error = f"HTTP {error.code}"
            return True
        except Exception as error:  # refused connection, timeout
            self.last_error = f"daemon unreachable: {error}"
            return False

    def _run(self):
        while not self._stopped:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception as error:
                self.last_error = f"flush failed: {error}"


reporter = None


def configure(daemon_url="http://127.0.0.1:8016", token=None, **options):
    """Makes the module's reporter (used by `outcome` and `OutcomeHook` without one) and returns it."""
    global reporter
    if reporter is not None:
        reporter.close()
    reporter = Reporter(daemon_url, token, **options)
    return reporter


class outcome:
    """`with flagpole.outcome(details): …` records success, or failure when the block raises (the
    exception goes on), with the block's duration. `details` is an OpenFeature FlagEvaluationDetails."""

    def __init__(self, details, reporter=None):
        self.details = details
        self.reporter = reporter
        self.failed = False

    def fail(self):
        """Marks the work failed without raising."""
        self.failed = True

    def __enter__(self):
        self.started = time.perf_counter()
        return self

    def __exit__(self, kind, value, traceback):
        target = self.reporter or reporter
        if target is not None and getattr(self.details, "flag_key", None):
            duration = (time.perf_counter() - self.started) * 1000
            target.record(self.details.flag_key, self.details.variant, kind is None and not self.failed, duration)
        return False  # never swallows the caller's exception


try:
    from openfeature.hook import Hook
except ImportError:  # the module works without the SDK; the hook needs it
    Hook = object


class OutcomeHook(Hook):
    """An OpenFeature hook: an evaluation that ends in an error (the provider's or the flag's)
    counts as a failure of the variant served. Successes are the work's to report (`outcome`)."""

    def __init__(self, reporter=None):
        self.reporter = reporter

    def error(self, hook_context, exception, hints):
        target = self.reporter or reporter
        if target is not None:
            target.record(hook_context.flag_key, None, False)

    def after(self, hook_context, details, hints):
        target = self.reporter or reporter
        if target is not None and details.error_code is not None and details.variant is not None:
            target.record(details.flag_key, details.variant, False)
