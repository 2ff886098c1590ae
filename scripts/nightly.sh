#!/usr/bin/env bash
# The nightly job: every built-in scenario, longer than CI runs them, on both backends; run
# directories, an index of runs with trends, and one combined JUnit file per backend as artifacts.
# The same entry point for GitHub Actions (.github/workflows/nightly.yml), GitLab CI, Jenkins or cron.
#
#   bash scripts/nightly.sh [--short] [--backend local|docker|both] [--out DIR] [--duration S]
#
#   --short          a quick local check of the job itself: 10 s per scenario (unless --duration)
#   --backend        local processes, containers, or both (default: both)
#   --out DIR        where everything goes (default: reports/nightly); kept between nights, so the
#                    index shows trends; DIR/<backend>/latest/<scenario> is the newest run of each
#   --duration S     seconds of load per scenario (default: 180, or 10 with --short)
#
# On the local backend (not with --short) it then runs the whole sensitivity matrix, the promise
# table's cells included (`stormproof verify --tries 3`, runs at each scenario's own duration): CI
# gates only on the cells the scenario files declare, so the nightly is where a promise cell that
# escapes shows up (DIR/verify/verify.html, verify.json).
#
# Artifacts, per backend B: DIR/B/<run dirs>/ (report.html, result.json, junit.xml, history.jsonl,
# logs), DIR/B/junit.xml (every scenario of tonight), DIR/B/summary.txt (the table), and
# DIR/index.html (every run of every night, with trends).
#
# Exit: 0 every scenario passed on every backend; 1 a violation; 2 an error (a run that could not
# start, a daemon that did not answer...). Every backend runs even when an earlier one failed.
#
# Docker: the docker half uses the daemon at DOCKER_HOST when one answers (the STORMPROOF_IMAGE_*
# settings pick the images; their defaults are the public ones). Otherwise, as root, it runs under
# scripts/docker-lane.sh, which starts a private dockerd, builds the images locally and stops the
# daemon afterwards (set STORMPROOF_DOCKER_CACHE_DIR to keep its image cache between nights).
set -uo pipefail
cd "$(dirname "$0")/.."

SHORT=0
BACKEND=both
OUT=reports/nightly
DURATION=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --short) SHORT=1; shift ;;
        --backend) BACKEND="${2:-}"; shift 2 ;;
        --backend=*) BACKEND="${1#--backend=}"; shift ;;
        --out) OUT="${2:-}"; shift 2 ;;
        --out=*) OUT="${1#--out=}"; shift ;;
        --duration) DURATION="${2:-}"; shift 2 ;;
        --duration=*) DURATION="${1#--duration=}"; shift ;;
        -h | --help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "nightly: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$BACKEND" in
    local) BACKENDS=(local) ;;
    docker) BACKENDS=(docker) ;;
    both) BACKENDS=(local docker) ;;
    *) echo "nightly: --backend must be local, docker or both, not '$BACKEND'" >&2; exit 2 ;;
esac
if [ -z "$DURATION" ]; then
    if [ "$SHORT" -eq 1 ]; then DURATION=10; else DURATION=180; fi
fi
[ -n "$OUT" ] || { echo "nightly: --out needs a directory" >&2; exit 2; }

if [ ! -x .venv/bin/stormproof ]; then
    bash scripts/install.sh || exit 2
fi
STORMPROOF="$(pwd)/.venv/bin/stormproof"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

run_backend() {  # run_backend B: every scenario on backend B; its exit code
    local backend="$1"
    local dir="$OUT/$backend"
    mkdir -p "$dir"
    echo "== nightly: every scenario on --backend $backend, ${DURATION}s each, into $dir"
    local command=("$STORMPROOF" run --all --backend "$backend" --duration "$DURATION" --quiet
                   --out "$dir" --junit "$dir/junit.xml")
    if [ "$backend" = docker ] && ! timeout 10 docker info > /dev/null 2>&1; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "nightly: no Docker daemon answers at DOCKER_HOST=${DOCKER_HOST:-<default>}, and starting a" \
                 "private one needs root: start Docker, or run with --backend local" >&2
            return 2
        fi
        echo "nightly: no Docker daemon answers; running the docker half under scripts/docker-lane.sh"
        command=(bash scripts/docker-lane.sh -- "${command[@]}")
    fi
    local status
    "${command[@]}" 2>&1 | tee "$dir/nightly.log"
    status=${PIPESTATUS[0]}
    # The table run --all printed last, kept as a file next to the runs.
    awk '/^scenario +verdict/{keep=1; buf=""} keep{buf=buf $0 "\n"} END{printf "%s", buf}' "$dir/nightly.log" \
        > "$dir/summary.txt"
    return "$status"
}

worst=0
for backend in "${BACKENDS[@]}"; do
    run_backend "$backend"
    status=$?
    echo "== nightly: --backend $backend exited $status"
    if [ "$status" -gt "$worst" ]; then worst=$status; fi
    if [ "$status" -gt 2 ]; then worst=2; fi  # a crash or a signal counts as an error
    if [ "$backend" = local ] && [ "$SHORT" -eq 0 ]; then
        echo "== nightly: the whole sensitivity matrix (scenario files and promise table), 3 tries per cell"
        rm -rf "$OUT/verify"
        "$STORMPROOF" verify --tries "${STORMPROOF_VERIFY_TRIES:-3}" --out "$OUT/verify" 2>&1 | tee "$OUT/verify.log"
        status=${PIPESTATUS[0]}
        echo "== nightly: verify exited $status"
        if [ "$status" -gt "$worst" ]; then worst=$status; fi
        if [ "$status" -gt 2 ]; then worst=2; fi
    fi
done

# One index over every run kept in OUT, both backends, every night: trends per scenario.
dirs=()
for backend in "${BACKENDS[@]}"; do [ -d "$OUT/$backend" ] && dirs+=("$OUT/$backend"); done
if [ "${#dirs[@]}" -gt 0 ]; then
    "$STORMPROOF" report --index "$OUT/index.html" "${dirs[@]}" || worst=2
fi
echo "== nightly: artifacts in $OUT (index.html; <backend>/junit.xml, summary.txt, latest/<scenario>)"
for backend in "${BACKENDS[@]}"; do
    [ -s "$OUT/$backend/summary.txt" ] && { echo "-- $backend"; cat "$OUT/$backend/summary.txt"; }
done
echo "== nightly: exit $worst"
exit "$worst"
