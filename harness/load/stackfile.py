"""Read the stack's connection file, waiting for ``stormproof up`` to write it.

``stormproof up --json-file stack.json &`` followed at once by ``locust`` is
the way Locust users start: the stack needs some seconds before the file
appears (atomically, whole). So the load waits for a complete JSON object, up
to ``STORMPROOF_STACK_WAIT_S`` seconds (default 120), instead of failing on a
missing or half-written file. ``stormproof up --json > stack.json &`` works
the same way: the shell creates the file empty at once, and it is read only
once it holds the whole object.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["wait_for_stack_file"]


def wait_for_stack_file(path: str | os.PathLike[str], timeout_s: float | None = None) -> dict[str, Any]:
    """The JSON object in ``path`` once it is complete; a RuntimeError naming the fix after ``timeout_s``."""
    path = Path(path)
    if timeout_s is None:
        timeout_s = float(os.environ.get("STORMPROOF_STACK_WAIT_S", "120"))
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        try:
            value = json.loads(path.read_text())
            if isinstance(value, dict):
                return value
        except (FileNotFoundError, ValueError):
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"{path} held no complete stack description after {timeout_s:.0f}s: start the stack with "
                f"`stormproof up --json-file {path}` (and keep it running), or raise STORMPROOF_STACK_WAIT_S"
            )
        if not told:
            print(f"stormproof: waiting for {path} (written by `stormproof up` once the stack is ready)",
                  file=sys.stderr, flush=True)
            told = True
        time.sleep(0.2)
