#!/bin/sh
# One image, every Python role of the stack; the first argument picks the role.
#
#   serve [args]    python -m stormproof.reference_app serve --host 0.0.0.0 --port 8000 [args]
#   migrate|seed    python -m stormproof.reference_app migrate|seed [args]
#   worker [args]   celery -A stormproof.reference_app.worker.main worker -Q shunya [args]
#   shunya [args]   python -m stormproof.harness.shunya --host 0.0.0.0 --port 8090 [args]
#   proxy [args]    python -m stormproof.harness.faults --host 0.0.0.0 --port 8474 [args]
#   anything else   run as given (e.g. "sh")
#
# Later arguments win over the defaults, so "serve --port 9000" works.
set -eu

if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    # The app and its workers need this directory to exist (and be empty) before they start.
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi

role="${1:-serve}"
[ "$#" -gt 0 ] && shift

case "$role" in
    serve)
        exec python -m stormproof.reference_app serve --host 0.0.0.0 --port 8000 "$@" ;;
    migrate | seed)
        exec python -m stormproof.reference_app "$role" "$@" ;;
    worker)
        exec celery -A stormproof.reference_app.worker.main worker -Q shunya "$@" ;;
    shunya)
        exec python -m stormproof.harness.shunya --host 0.0.0.0 --port 8090 "$@" ;;
    proxy)
        exec python -m stormproof.harness.faults --host 0.0.0.0 --port 8474 "$@" ;;
    *)
        exec "$role" "$@" ;;
esac
