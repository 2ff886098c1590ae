#!/usr/bin/env bash
# Install what Stormproof needs on Debian/Ubuntu, then the project itself:
#   - PostgreSQL server binaries (package postgresql), redis-server and promtool
#     (package prometheus, for the alert-rule tests), only when missing;
#   - a virtualenv in .venv with the project and its dev extra (editable).
# Safe to run again: it installs nothing that is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

have_initdb() {
    command -v initdb >/dev/null 2>&1 && return 0
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return 0
    command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]
}

missing=()
have_initdb || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
# promtool (Debian package prometheus) unit-tests the alert rules in the test suite.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# headless Chromium renders the HTML reports offline in tests/report/test_browser.py
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
fc-list 2>/dev/null | grep -qi dejavu || missing+=(fonts-dejavu-core)

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install.sh: error: ${missing[*]} missing and not root (no sudo): run 'apt-get install -y ${missing[*]}' as root" >&2
        exit 2
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install.sh: error: ${missing[*]} missing and this is not a Debian/Ubuntu system: install them with your package manager" >&2
        exit 2
    fi
    echo "install.sh: installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "install.sh: error: Python 3.11 or newer is required ($python is $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 2
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
# toxiproxy-node-client, for tests/faults/test_faults_node_client.py, into a project-local,
# git-ignored node_modules (tests/faults/node/package-lock.json pins it). Without node/npm the
# test skips on a laptop, but under CI (CI set) both this script and the test fail.
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
    npm ci --prefix tests/faults/node --no-audit --no-fund --silent
elif [ -n "${CI:-}" ]; then
    echo "install.sh: error: node and npm are required under CI (the toxiproxy-node-client compatibility test): apt-get install -y nodejs npm" >&2
    exit 2
else
    echo "install.sh: warning: node/npm not found: tests/faults/test_faults_node_client.py will be skipped" >&2
fi
echo "install.sh: ready (.venv/bin/stormproof)"
