"""The trace ids a run's task workers wrote on each task's log lines (plan E1: trace ids in every log line).

The reference app's workers log one JSON object per line, each with the
``trace_id`` current when it was written; Celery's own line at the end of each
run of a task (``Task <name>[<id>] succeeded in ...``, ``... retry: ...``,
``... raised ...``) names the task. Those lines are read here, from the stack's
log directory, so that trace-echoed can hold them against the task records:
a task record that carries the request's trace id while the task logs without
it breaks the chain from a request to its task's logs as surely as a record
without it. Lines that are not JSON (a process killed mid-line, a plain-text
app) and tasks with no such line are left out; no line at all gives None (an
app that does not log this way is not judged on its logs).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["TASK_LINE_LOGGER", "read_task_log_traces"]

#: The logger of Celery's line at the end of each run of a task.
TASK_LINE_LOGGER = "celery.app.trace"
_TASK_LINE = re.compile(r"^Task [\w.:-]+\[([0-9a-fA-F-]{8,})\] ")
#: Only lines that may be such a line are parsed (a log of a long run has a great many others).
_NEEDLE = b'"celery.app.trace"'


def read_task_log_traces(log_dir: Path | str | None) -> dict[str, tuple[str | None, ...]] | None:
    """Task id to the trace ids (None: a line without one) of its end-of-run lines, in every ``*.log`` of
    ``log_dir``; None when there is no directory or no such line in it."""
    if log_dir is None or not Path(log_dir).is_dir():
        return None
    seen: dict[str, list[str | None]] = {}
    for path in sorted(Path(log_dir).rglob("*.log")):
        try:
            with path.open("rb") as lines:
                for raw in lines:
                    if _NEEDLE not in raw:
                        continue
                    try:
                        line = json.loads(raw)
                    except ValueError:
                        continue
                    if not isinstance(line, dict) or line.get("logger") != TASK_LINE_LOGGER:
                        continue
                    match = _TASK_LINE.match(str(line.get("msg") or ""))
                    if match is None:
                        continue
                    trace = line.get("trace_id")
                    seen.setdefault(match.group(1), []).append(trace if isinstance(trace, str) and trace else None)
        except OSError:
            continue
    return {task: tuple(traces) for task, traces in seen.items()} or None
