"""Per-run temporary directories that are removed afterwards, even after a crash.

A directory carries an ``owner.pid`` file. Normal exit, exceptions and Ctrl-C
remove it through the context manager; if the harness was SIGKILLed, the next
harness start sweeps directories whose owner is gone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["make_run_dir", "remove_run_dir", "sweep_stale_run_dirs", "PREFIX"]

PREFIX = "stormproof-"


def _base() -> Path:
    return Path(os.environ.get("STORMPROOF_TMPDIR") or tempfile.gettempdir())


def make_run_dir(kind: str) -> Path:
    sweep_stale_run_dirs()
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-", dir=_base()))
    path.chmod(0o755)  # services running as an unprivileged user must traverse it
    (path / "owner.pid").write_text(str(os.getpid()))
    return path


def remove_run_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_run_dirs() -> list[Path]:
    """Remove run dirs whose owning process no longer exists; return what was removed."""
    removed: list[Path] = []
    try:
        entries = list(_base().glob(f"{PREFIX}*"))
    except OSError:
        return removed
    for path in entries:
        owner = path / "owner.pid"
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            remove_run_dir(path)
            removed.append(path)
    return removed
