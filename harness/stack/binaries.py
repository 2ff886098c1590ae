"""Finding server binaries: PATH first, then where Debian and pg_config put them."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from .errors import MissingBinaryError

__all__ = ["find_postgres_binary", "find_redis_server"]


def _pg_config_bindir() -> str | None:
    pg_config = shutil.which("pg_config")
    if not pg_config:
        return None
    try:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _version_key(path: str) -> tuple[int, ...]:
    parts = Path(path).parts
    for part in parts:
        if part.isdigit():
            return (int(part),)
    return (0,)


def find_postgres_binary(name: str) -> str:
    """Return the path of a PostgreSQL server binary such as ``initdb`` or ``postgres``.

    ``pg_config --bindir`` may belong to the client package only (Debian's
    libpq-dev), so every candidate is checked for the binary itself; the
    newest ``/usr/lib/postgresql/*/bin`` wins among Debian's versioned dirs.
    """
    override = os.environ.get("STORMPROOF_PG_BINDIR")
    candidates: list[str] = []
    if override:
        candidates.append(override)
    found = shutil.which(name)
    if found and not override:
        return found
    bindir = _pg_config_bindir()
    if bindir:
        candidates.append(bindir)
    candidates.extend(sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True))
    for directory in candidates:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    raise MissingBinaryError(name, "postgresql", ["PATH", *candidates])


def find_redis_server() -> str:
    """Return the path of ``redis-server``."""
    override = os.environ.get("STORMPROOF_REDIS_SERVER")
    if override:
        if os.access(override, os.X_OK):
            return override
        raise MissingBinaryError("redis-server", "redis-server", [override])
    found = shutil.which("redis-server")
    if found:
        return found
    for path in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if os.access(path, os.X_OK):
            return path
    raise MissingBinaryError("redis-server", "redis-server", ["PATH", "/usr/bin", "/usr/local/bin"])
