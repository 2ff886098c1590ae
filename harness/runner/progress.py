"""A one-line progress display: elapsed time, users, requests per second, errors, active faults."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Reads the load's progress file and the nemesis's active faults; redraws in place on a terminal."""

    def __init__(self, path: Path, faults: Callable[[], list[str]], *, total_s: float,
                 stream: TextIO | None = None) -> None:
        self._path = path
        self._faults = faults
        self._total = total_s
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def line(self) -> str:
        try:
            state = json.loads(self._path.read_text())
        except (OSError, ValueError):
            state = {}
        faults = ", ".join(self._faults()) or "none"
        return (f"[{state.get('elapsed_s', 0):6.1f}s/{self._total:.0f}s] users {state.get('users', 0):4} "
                f"rps {state.get('rps', 0):7.1f} requests {state.get('requests', 0):7} "
                f"errors {state.get('failures', 0):5}  faults: {faults}")

    def _run(self) -> None:
        interval = 1.0 if self._tty else 5.0
        while not self._stop.wait(interval):
            if self._tty:
                self._stream.write("\r\033[K" + self.line())
            else:
                self._stream.write(self.line() + "\n")
            self._stream.flush()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._tty:
            self._stream.write("\r\033[K" + self.line() + "\n")
            self._stream.flush()


