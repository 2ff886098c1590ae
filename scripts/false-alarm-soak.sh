#!/usr/bin/env bash
# False-alarm soak (issue 11): every built-in scenario with every fix on, N times (default 5).
# Prints one line per scenario (passes/N, longest quiescence) and exits non-zero on any non-pass.
#
#   scripts/false-alarm-soak.sh [-n N] [--scenarios a,b] [--hog] [--backend local|docker] [--duration S]
#
# Each run takes /tmp/sp-heavy.lock (or --lock PATH) so that runs sharing a machine take turns.
# See bench/false_alarm_soak.py for every option.
set -euo pipefail
cd "$(dirname "$0")/.."
python=".venv/bin/python"
[ -x "$python" ] || python="python3"
exec "$python" bench/false_alarm_soak.py "$@"
