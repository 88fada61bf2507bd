#!/usr/bin/env bash
# Installs what Flagpole needs from Debian when it is missing: hiredis (libhiredis-dev), Redis
# (redis-server, redis-tools), the tz database (tzdata, for freeze windows in time zones), curl (./run waits for the daemon with it), Python with venv
# (the OFREP interop test uses the OpenFeature SDK from PyPI in a virtualenv), Prometheus (the
# rollout tests with a real Prometheus start their own on a free port), and Chromium with its
# WebDriver (the web console's browser test drives it with Selenium from the same virtualenv).
# Then makes that virtualenv (~/.cache/flagpole-python-venv) from interop/python/requirements.txt.
# Needs root or sudo for apt-get; does nothing when all is there.
set -euo pipefail

need=()
pkg-config --exists hiredis 2>/dev/null || need+=(libhiredis-dev pkg-config)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v wrk >/dev/null 2>&1 || need+=(wrk)  # Benchmarks/ofrep-benchmark's closed-loop load
# Freeze windows in IANA time zones (timezone: Europe/Berlin) read the system's tz database.
[ -f /usr/share/zoneinfo/Europe/Berlin ] || need+=(tzdata)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3 python3-venv)
# Without its recommended node exporter: the tests need the server alone.
bare=()
command -v prometheus >/dev/null 2>&1 || bare+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)

if [ ${#need[@]} -gt 0 ] || [ ${#bare[@]} -gt 0 ]; then
  echo "flagpole: installing ${need[*]} ${bare[*]} with apt-get" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  [ ${#need[@]} -eq 0 ] || $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  [ ${#bare[@]} -eq 0 ] || $sudo apt-get install -y -qq --no-install-recommends "${bare[@]}" >/dev/null
fi

# The Debian redis-server and prometheus packages start system services (ports 6379, 9090) where
# they can; Flagpole never relies on them: the tests start their own servers on free ports and
# ./run starts a Redis under .flagpole/.
# The tests' Python: the OpenFeature SDK (OFREP interop) and Selenium (the console's browser test).
venv="${HOME:-/tmp}/.cache/flagpole-python-venv"
requirements="$(cd "$(dirname "$0")/.." && pwd)/interop/python/requirements.txt"
if ! "$venv/bin/python" -c 'import openfeature.api, openfeature.contrib.provider.ofrep, openfeature.contrib.provider.flagd, selenium.webdriver' >/dev/null 2>&1; then
  echo "flagpole: making the Python virtualenv $venv (pip install -r interop/python/requirements.txt)" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check --quiet -r "$requirements"
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "flagpole: the Swift toolchain (swift 6) is not on PATH; install it from swift.org or add it to PATH" >&2
  exit 1
fi
