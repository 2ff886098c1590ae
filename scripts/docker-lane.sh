#!/usr/bin/env bash
# CI's docker lane, self-contained: a private Docker daemon, the images built locally, the docker
# tests (a skip is a failure here), then the daemon stopped by its PID and its directory removed,
# on success, failure and Ctrl-C alike. Prints how long each phase took. Needs root (dockerd).
#
#   bash scripts/docker-lane.sh                    the docker tests, then scenario runs on --backend docker
#   bash scripts/docker-lane.sh -- COMMAND [ARG...]  COMMAND instead, with the daemon up and the images built
#                                                    (scripts/nightly.sh runs its docker half this way)
#
# STORMPROOF_DOCKER_CACHE_DIR=<dir>  keep the daemon's data (images, layer cache) there between runs
#                                    instead of a temporary directory: later runs skip debootstrap
#                                    and reuse every cached build step.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

PHASES=()
phase_started=0
phase_name=""
now_ms() { date +%s%3N; }
phase() {  # phase NAME: end the current phase (if any) and start NAME
    end_phase
    phase_name="$1"
    phase_started=$(now_ms)
    echo "== docker-lane: $phase_name"
}
end_phase() {
    if [ -n "$phase_name" ]; then
        local ms=$(( $(now_ms) - phase_started ))
        PHASES+=("$(printf '%-28s %6d.%01ds' "$phase_name" $((ms / 1000)) $(((ms % 1000) / 100)))")
        phase_name=""
    fi
}

DAEMON_DIR=""
DOCKERD_PID=""
OWN_DAEMON=0  # 1 once the daemon answering DOCKER_HOST is known to be ours (its pidfile names it)
CREATED_DOCKER0=0
cleanup() {
    local status=$?
    set +e
    end_phase
    if [ -n "$DOCKERD_PID" ]; then
        phase "stop dockerd (pid $DOCKERD_PID)"
        # Our daemon, our containers: anything a failed test left is removed with it. Only when
        # the daemon answering is known to be ours, never another one's.
        if [ "$OWN_DAEMON" -eq 1 ]; then
            left="$(timeout 20 docker ps -aq 2>/dev/null)"
            if [ -n "$left" ]; then
                echo "docker-lane: removing containers left behind: $left" >&2
                timeout 60 docker rm -f $left > /dev/null 2>&1
            fi
            timeout 30 docker network prune -f > /dev/null 2>&1  # their bridges, if a test left any
        fi
        kill -TERM "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 1 300); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$DOCKERD_PID" 2>/dev/null; then
            echo "docker-lane: dockerd $DOCKERD_PID did not stop in 30s; killing it" >&2
            kill -KILL "$DOCKERD_PID" 2>/dev/null
            containerd_pid="$(cat "$DAEMON_DIR/exec/containerd/containerd.pid" 2>/dev/null)"
            [ -n "$containerd_pid" ] && kill -KILL "$containerd_pid" 2>/dev/null
        fi
        wait "$DOCKERD_PID" 2>/dev/null
        if [ "$CREATED_DOCKER0" -eq 1 ] && ip link show docker0 > /dev/null 2>&1; then
            ip link delete docker0
        fi
        end_phase
    fi
    if [ -n "$DAEMON_DIR" ]; then
        # Unmount whatever the daemon left mounted under its directory, deepest first, then remove
        # it without ever crossing into another file system.
        grep -o " $DAEMON_DIR/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r mnt; do
            umount -l "$mnt" 2>/dev/null
        done
        if [ -n "${STORMPROOF_DOCKER_CACHE_DIR:-}" ]; then
            [ "$OWN_DAEMON" -eq 1 ] && rm -rf --one-file-system "$DAEMON_DIR/exec" "$DAEMON_DIR/docker.sock" "$DAEMON_DIR/docker.pid"
        else
            rm -rf --one-file-system "$DAEMON_DIR"
        fi
    fi
    echo "== docker-lane: timings"
    for p in "${PHASES[@]}"; do echo "  $p"; done
    if [ "$status" -eq 0 ]; then echo "== docker-lane: passed"; else echo "== docker-lane: FAILED (exit $status)" >&2; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

COMMAND=()
if [ "${1:-}" = "--" ]; then
    shift
    COMMAND=("$@")
    [ "${#COMMAND[@]}" -gt 0 ] || { echo "docker-lane: nothing after --" >&2; exit 2; }
elif [ "$#" -gt 0 ]; then
    echo "docker-lane: unknown argument $1 (usage: docker-lane.sh [-- COMMAND...])" >&2
    exit 2
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "docker-lane: needs root to run its own dockerd (and to debootstrap the base image)." >&2
    exit 1
fi

phase "install docker.io debootstrap"
if ! command -v dockerd > /dev/null || ! command -v docker > /dev/null || ! command -v debootstrap > /dev/null; then
    apt-get install -y -q docker.io debootstrap > /dev/null \
        || { apt-get update -q > /dev/null && apt-get install -y -q docker.io debootstrap > /dev/null; }
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import testcontainers, docker' 2> /dev/null; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install -q -e '.[dev]'
fi

phase "start dockerd"
if [ -n "${STORMPROOF_DOCKER_CACHE_DIR:-}" ]; then
    mkdir -p "$STORMPROOF_DOCKER_CACHE_DIR"
    cache_dir="$(cd "$STORMPROOF_DOCKER_CACHE_DIR" && pwd)"
    # One daemon per data root. A second lane on the same cache would otherwise clean up (remove
    # containers, the socket, the exec root) under the first one's running tests.
    other="$(cat "$cache_dir/docker.pid" 2> /dev/null || true)"
    if [ -n "$other" ] && kill -0 "$other" 2> /dev/null; then
        echo "docker-lane: dockerd pid $other already uses STORMPROOF_DOCKER_CACHE_DIR=$cache_dir" \
             "(another docker-lane run?): wait for it to end, or choose another cache directory." >&2
        exit 1
    fi
    DAEMON_DIR="$cache_dir"
else
    DAEMON_DIR="$(mktemp -d "${TMPDIR:-/tmp}/stormproof-dockerd-XXXXXX")"
fi
# No iptables rules and no IP forwarding: containers talk over their own user-defined bridge, the
# host reaches published ports on 127.0.0.1 through docker-proxy, builds use the host network.
# Not --bridge=none: that makes dockerd delete an existing docker0, which may be another daemon's.
# Instead the default bridge is left alone if it exists, and removed afterwards if we created it.
if command -v ip > /dev/null && ! ip link show docker0 > /dev/null 2>&1; then CREATED_DOCKER0=1; fi
# Its own session: a Ctrl-C at the terminal reaches the tests (which then clean up through this
# daemon) but not the daemon, which is stopped last, by PID.
setsid dockerd --iptables=false --ip-forward=false \
    --data-root "$DAEMON_DIR/data" --exec-root "$DAEMON_DIR/exec" \
    --host "unix://$DAEMON_DIR/docker.sock" --pidfile "$DAEMON_DIR/docker.pid" \
    > "$DAEMON_DIR/dockerd.log" 2>&1 &
DOCKERD_PID=$!  # setsid execs dockerd in place (a background job is no group leader): same PID
export DOCKER_HOST="unix://$DAEMON_DIR/docker.sock"
echo "docker-lane: dockerd pid $DOCKERD_PID, DOCKER_HOST=$DOCKER_HOST"
ready=0
for _ in $(seq 1 120); do
    if ! kill -0 "$DOCKERD_PID" 2> /dev/null; then break; fi
    if timeout 5 docker info > /dev/null 2>&1; then ready=1; break; fi
    sleep 0.5
done
if [ "$ready" -ne 1 ]; then
    tail -n 30 "$DAEMON_DIR/dockerd.log" >&2
    echo "docker-lane: dockerd did not answer within 60s (its log above)." >&2
    exit 1
fi
if [ "$(cat "$DAEMON_DIR/docker.pid" 2> /dev/null)" != "$DOCKERD_PID" ]; then
    echo "docker-lane: dockerd's pidfile does not name pid $DOCKERD_PID; refusing to guess which process to stop." >&2
    exit 1
fi
OWN_DAEMON=1

phase "build images"
bash scripts/build-images.sh

export TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_CONNECTION_MODE=docker_host \
    TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 STORMPROOF_REQUIRE_DOCKER=1 \
    STORMPROOF_IMAGE_POSTGRES=stormproof/postgres:15 STORMPROOF_IMAGE_REDIS=stormproof/redis:7 \
    STORMPROOF_IMAGE_PROXY=stormproof/fault-proxy:latest STORMPROOF_IMAGE_APP=stormproof/app:latest

if [ "${#COMMAND[@]}" -gt 0 ]; then
    phase "command: ${COMMAND[*]}"
    set +e
    "${COMMAND[@]}"
    status=$?
    set -e
    exit "$status"
fi

phase "docker tests"
set +e
.venv/bin/python -m pytest tests/stack/test_docker.py tests/stack/test_recipe.py -p no:cacheprovider
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "docker-lane: pytest collected no tests: failing" >&2
    exit 1
fi
[ "$status" -eq 0 ] || exit "$status"

# On --backend docker: every built-in scenario with every fix on, 10 s of load each (about 7 min;
# a false alarm or a scenario that breaks on containers fails CI here), then the sensitivity check
# of session-start-storm: its scenario file's weakening must be caught on containers too. The whole
# weakening matrix on docker (about 25 min more) is the nightly job's (scripts/nightly.sh).
phase "every scenario on --backend docker"
rm -rf reports/docker-lane
.venv/bin/stormproof run --all --backend docker --duration 10 --quiet --out reports/docker-lane/runs \
    --junit reports/docker-lane/junit.xml
phase "verify session-start-storm on --backend docker"
.venv/bin/stormproof verify --tries 1 --backend docker --scenario session-start-storm --source scenarios --no-all-on \
    --out reports/docker-lane/verify-session-start-storm
