"""The trace ids on the app's error log lines (plan E1: "add trace ID to all error logs").

The reference app logs one JSON object per line, each with the ``trace_id``
current when it was written; an error no handler maps is logged at level
``error`` while its request is served, so its line carries the request's
trace id. Those lines are read here, from the stack's log directory, so that
trace-echoed can hold each 500 the clients saw against them: a request
answered 500 whose trace id is on no error line cannot be found from its
trace, which is what the trace id is for. Lines that are not JSON (a process
killed mid-line, a plain-text app) are left out; no error line at all gives
None (an app that does not log this way is not judged on its logs).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

__all__ = ["ERROR_LEVELS", "read_error_log_traces"]

#: The levels of an error line (Python's names, as the JSON formatter writes them, lower or upper case).
ERROR_LEVELS = frozenset({"error", "critical"})
#: Only lines that may be error lines are parsed (a log of a long run has a great many others).
_NEEDLES = tuple(f'"level":{space}"{level}"'.encode() for space in ("", " ")
                 for name in sorted(ERROR_LEVELS) for level in (name, name.upper()))


def read_error_log_traces(log_dir: Path | str | None) -> Counter[str | None] | None:
    """How many error lines carry each trace id (None: a line without one), over every ``*.log`` of
    ``log_dir``; None when there is no directory or no JSON error line in it."""
    if log_dir is None or not Path(log_dir).is_dir():
        return None
    seen: Counter[str | None] = Counter()
    for path in sorted(Path(log_dir).rglob("*.log")):
        try:
            with path.open("rb") as lines:
                for raw in lines:
                    if not any(needle in raw for needle in _NEEDLES):
                        continue
                    try:
                        line = json.loads(raw)
                    except ValueError:
                        continue
                    if not isinstance(line, dict) or str(line.get("level", "")).lower() not in ERROR_LEVELS:
                        continue
                    trace = line.get("trace_id")
                    seen[trace if isinstance(trace, str) and trace else None] += 1
        except OSError:
            continue
    return seen or None
