#!/usr/bin/env bash
# Build every Stormproof image locally, from a Debian bookworm base image, without any registry.
#
#   scripts/build-images.sh [--base IMAGE] [--verbose]
#
# Images (names are fixed; point the STORMPROOF_IMAGE_* settings at them, as printed at the end):
#   stormproof/app:latest          reference app, Celery worker, Shunya stub (docker/app, target app)
#   stormproof/fault-proxy:latest  our Toxiproxy-API fault proxy (the app image, proxy by default)
#   stormproof/postgres:15         PostgreSQL 15 from Debian (docker/postgres)
#   stormproof/redis:7             Redis 7 from Debian (docker/redis)
#
# The base defaults to stormproof/debian:bookworm, created with debootstrap (needs root and the
# debootstrap package) when it is missing; --base takes any Debian bookworm image with apt instead.
# Builds use the host network (docker build --network=host), the host's CA bundle and pip index
# settings (copied into a temporary build context, deleted afterwards, only in the builder stage),
# and Docker's layer cache: a second run with unchanged sources takes seconds.
#
# Environment: DOCKER_HOST (the daemon), STORMPROOF_DEBIAN_MIRROR (debootstrap mirror, default:
# the Debian mirror of the host's apt sources), http_proxy/https_proxy/no_proxy (passed to builds).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
DEFAULT_BASE="stormproof/debian:bookworm"
BASE="$DEFAULT_BASE"
VERBOSE=0
IMAGE_APP="stormproof/app:latest"
IMAGE_PROXY="stormproof/fault-proxy:latest"
IMAGE_POSTGRES="stormproof/postgres:15"
IMAGE_REDIS="stormproof/redis:7"

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

while [ "$#" -gt 0 ]; do
    case "$1" in
        --base) [ "$#" -ge 2 ] || { echo "error: --base needs an image name" >&2; exit 2; }; BASE="$2"; shift 2 ;;
        --base=*) BASE="${1#--base=}"; shift ;;
        --verbose | -v) VERBOSE=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/stormproof-build-XXXXXX")"
cleanup() {
    # --one-file-system: never descend into a /proc or /dev an interrupted debootstrap left mounted.
    if [ -d "$WORK/rootfs" ]; then
        grep -o " $WORK/rootfs[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r mnt; do
            umount -l "$mnt" 2>/dev/null || true
        done
    fi
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { date +%s%3N; }
elapsed() { local ms=$(( $(now_ms) - $1 )); printf '%d.%01ds' $((ms / 1000)) $(((ms % 1000) / 100)); }
TIMINGS=()

# -- Docker ------------------------------------------------------------------------------------
if ! command -v docker > /dev/null 2>&1; then
    echo "error: the docker command is not installed. Install it with: apt-get install -y docker.io" >&2
    exit 1
fi
if ! server_version="$(timeout 20 docker version --format '{{.Server.Version}}' 2>&1)"; then
    cat >&2 <<EOF
error: cannot reach a Docker daemon at DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock (default)}:
  $server_version
Start one (as root) with its own data dir and socket, then point DOCKER_HOST at it:
  d=\$(mktemp -d); dockerd --iptables=false --ip-forward=false --data-root \$d/data \\
      --host unix://\$d/docker.sock --exec-root \$d/exec --pidfile \$d/docker.pid > \$d/dockerd.log 2>&1 &
  export DOCKER_HOST=unix://\$d/docker.sock
or run scripts/docker-lane.sh, which starts one for the duration of the docker tests.
EOF
    exit 1
fi
echo "build-images: Docker daemon $server_version at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
export DOCKER_BUILDKIT=0  # the classic builder: present in every daemon, needs no buildx plugin

BUILD_ARGS=(--network=host --force-rm --build-arg "BASE=$BASE")
for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    if [ -n "${!var:-}" ]; then BUILD_ARGS+=(--build-arg "$var"); fi
done

# -- Base image ----------------------------------------------------------------------------------
debian_mirror() {
    if [ -n "${STORMPROOF_DEBIAN_MIRROR:-}" ]; then echo "$STORMPROOF_DEBIAN_MIRROR"; return; fi
    local uri
    # deb822 sources ("URIs: ...") first, then one-line sources ("deb URI suite ...").
    uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }')"
    if [ -z "$uri" ]; then
        uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\/.*\/debian\/?$/) { print $i; exit } }')"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

make_base() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: creating $DEFAULT_BASE needs root (debootstrap). Run as root, or pass --base IMAGE (a Debian bookworm image with apt)." >&2
        exit 1
    fi
    if ! command -v debootstrap > /dev/null 2>&1; then
        echo "error: debootstrap is not installed. Install it with: apt-get install -y debootstrap (or pass --base IMAGE)." >&2
        exit 1
    fi
    local mirror rootfs start security
    mirror="$(debian_mirror)"
    security="${mirror%/debian}/debian-security"
    rootfs="$WORK/rootfs"
    echo "build-images: debootstrap --variant=minbase bookworm from $mirror"
    start=$(now_ms)
    if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$WORK/debootstrap.log" 2>&1; then
        tail -n 30 "$WORK/debootstrap.log" >&2
        echo "error: debootstrap failed (log above); check that $mirror is reachable, or set STORMPROOF_DEBIAN_MIRROR." >&2
        exit 1
    fi
    TIMINGS+=("debootstrap $(elapsed "$start")")
    # Slim it like Debian's own container images: no docs, man pages or translations, no apt caches.
    cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
    cat > "$rootfs/etc/dpkg/dpkg.cfg.d/stormproof-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    cat > "$rootfs/etc/apt/apt.conf.d/90stormproof-container" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs/usr/share/man/"* "$rootfs/usr/share/info/"* "$rootfs/usr/share/locale/"* \
        "$rootfs/var/cache/apt/"*.bin "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"* \
        "$rootfs/var/log/"*.log "$rootfs/var/log/apt/"*
    : > "$rootfs/etc/hostname"
    : > "$rootfs/etc/resolv.conf"
    start=$(now_ms)
    tar -C "$rootfs" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        --message "debootstrap --variant=minbase bookworm $mirror" - "$DEFAULT_BASE" > /dev/null
    TIMINGS+=("import $DEFAULT_BASE $(elapsed "$start")")
    rm -rf --one-file-system "$rootfs"
}

if docker image inspect "$BASE" > /dev/null 2>&1; then
    echo "build-images: base image $BASE present"
elif [ "$BASE" = "$DEFAULT_BASE" ]; then
    make_base
else
    echo "build-images: base image $BASE not present; pulling it"
    if ! docker pull "$BASE"; then
        echo "error: base image $BASE is neither present nor pullable; build or load it first, or omit --base to debootstrap $DEFAULT_BASE." >&2
        exit 1
    fi
fi

# -- Build contexts ----------------------------------------------------------------------------------
# The app image needs the project sources and, for pip in the builder stage only, the host's CA bundle
# and index settings. Everything goes into a temporary context that is deleted on exit.
app_context() {
    local ctx="$WORK/app-context" cert
    mkdir -p "$ctx/src" "$ctx/build"
    cp "$REPO/docker/app/entrypoint.sh" "$ctx/"
    local paths=(pyproject.toml setup.py README.md harness reference_app scenarios)
    if git -C "$REPO" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
        # Tracked files plus new untracked ones, never ignored ones (.venv, caches, reports).
        git -C "$REPO" ls-files -z --cached --others --exclude-standard -- "${paths[@]}" \
            | (cd "$REPO" && while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done) \
            | tar -C "$REPO" --null -T - -cf - | tar -C "$ctx/src" -xf -
    else
        (cd "$REPO" && tar --exclude='__pycache__' --exclude='*.pyc' -cf - "${paths[@]}") | tar -C "$ctx/src" -xf -
    fi
    cert="${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}"
    if [ -z "$cert" ] && command -v python3 > /dev/null 2>&1; then
        cert="$(python3 -m pip config get global.cert 2>/dev/null || true)"
    fi
    [ -n "$cert" ] && [ -f "$cert" ] || cert=/etc/ssl/certs/ca-certificates.crt
    if [ -f "$cert" ]; then
        cp "$cert" "$ctx/build/ca-bundle.crt"
    else
        : > "$ctx/build/ca-bundle.crt"
    fi
    # pip settings that make sense inside the build: http(s) indexes only (file:// and find-links
    # point at host directories the build cannot see).
    python3 - "$ctx/build/pip.conf" "$([ -s "$ctx/build/ca-bundle.crt" ] && echo yes || echo no)" <<'EOF'
import os, re, subprocess, sys
out, have_cert = sys.argv[1], sys.argv[2] == "yes"
found = {}
try:
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=30).stdout
except (OSError, subprocess.SubprocessError):
    listing = ""
for line in listing.splitlines():
    m = re.match(r"^[^.]*\.(index-url|extra-index-url|trusted-host)='(.*)'$", line)
    if m:
        found[m.group(1)] = m.group(2)
for key in ("index-url", "extra-index-url", "trusted-host"):
    env = os.environ.get("PIP_" + key.upper().replace("-", "_"))
    if env:
        found[key] = env
lines = ["[global]", "timeout = 120"]
if have_cert:
    lines.append("cert = /etc/stormproof-build/ca-bundle.crt")
for key in ("index-url", "extra-index-url"):
    urls = [u for u in found.get(key, "").split() if u.startswith(("http://", "https://"))]
    if urls:
        lines.append(f"{key} = {' '.join(urls)}")
if found.get("trusted-host"):
    lines.append(f"trusted-host = {found['trusted-host']}")
with open(out, "w") as fh:
    fh.write("\n".join(lines) + "\n")
EOF
    echo "$ctx"
}

build() {  # build NAME TAG CONTEXT DOCKERFILE [docker build args...]
    local name="$1" tag="$2" ctx="$3" dockerfile="$4" start log old_id new_id status
    shift 4
    log="$WORK/build-$name.log"
    old_id="$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
    start=$(now_ms)
    echo "build-images: building $tag"
    if [ "$VERBOSE" -eq 1 ]; then
        docker build "${BUILD_ARGS[@]}" -f "$dockerfile" -t "$tag" "$@" "$ctx" 2>&1 | tee "$log"
        status=${PIPESTATUS[0]}
    else
        set +e
        docker build "${BUILD_ARGS[@]}" -f "$dockerfile" -t "$tag" "$@" "$ctx" > "$log" 2>&1
        status=$?
        set -e
    fi
    if [ "$status" -ne 0 ]; then
        [ "$VERBOSE" -eq 1 ] || tail -n 40 "$log" >&2
        echo "error: building $tag failed (docker build exit $status; output above)." >&2
        exit 1
    fi
    local steps cached
    steps=$(grep -c '^Step ' "$log" || true)
    cached=$(grep -c 'Using cache' "$log" || true)
    TIMINGS+=("$tag $(elapsed "$start") ($cached of $steps steps cached)")
    # The image this tag replaced is now untagged and only takes space (kept if a container uses it).
    new_id="$(docker image inspect --format '{{.Id}}' "$tag")"
    if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
        docker image rm "$old_id" > /dev/null 2>&1 || true
    fi
}

build postgres "$IMAGE_POSTGRES" "$REPO/docker/postgres" "$REPO/docker/postgres/Dockerfile"
build redis "$IMAGE_REDIS" "$REPO/docker/redis" "$REPO/docker/redis/Dockerfile"
CTX="$(app_context)"
build app "$IMAGE_APP" "$CTX" "$REPO/docker/app/Dockerfile" --target app
build fault-proxy "$IMAGE_PROXY" "$CTX" "$REPO/docker/app/Dockerfile" --target fault-proxy
rm -rf "$CTX"

echo
echo "build-images: done"
for t in "${TIMINGS[@]}"; do echo "  $t"; done
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E '^stormproof/' | sed 's/^/  /' || true
cat <<EOF

Use them (elsewhere the defaults are the registry images postgres:15, redis:7, ghcr.io/shopify/toxiproxy:2.12.0):
  export STORMPROOF_IMAGE_POSTGRES=$IMAGE_POSTGRES STORMPROOF_IMAGE_REDIS=$IMAGE_REDIS \\
         STORMPROOF_IMAGE_PROXY=$IMAGE_PROXY STORMPROOF_IMAGE_APP=$IMAGE_APP
EOF
