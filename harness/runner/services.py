"""Which of the stack's services stopped on their own during a run.

The nemesis restarts what it kills when a fault ends and heals everything when
the load stops, so once the faults are healed every service should be running.
One that is not crashed by itself (a worker's "Unrecoverable error", an app
that ran out of memory): the run cannot vouch for what that service should
have done after it died, and a release reviewer must hear of it by name,
rather than read "342 tasks still progressing" in a liveness verdict.

Only the services themselves are looked at (a worker's pool process is replaced
by the worker by design). A backend that offers no process targets (an external
app) is not looked at.
"""

from __future__ import annotations

from typing import Any

__all__ = ["exited_on_their_own", "describe_exits"]


def exited_on_their_own(stack: Any) -> list[str]:
    """Names of the stack's services that are not running now (call after the faults were healed)."""
    targets = getattr(stack, "fault_targets", None)
    if targets is None:
        return []
    down = []
    for name, target in targets().items():
        if name.endswith("-pool"):
            continue
        try:
            pid = target.pid
        except Exception:  # noqa: BLE001 - a container whose state cannot be read: not called down on a guess
            continue
        if pid is None:
            down.append(name)
    return sorted(down)


def describe_exits(names: list[str]) -> str:
    """One line for the run's error: who stopped, and where to look."""
    logs = ", ".join(f"logs/{name}.log" for name in names)
    return (f"{', '.join(names)} stopped during the run and no fault stopped {'it' if len(names) == 1 else 'them'}"
            f" (a crash of the system under test; see {logs}): verdicts after that moment cannot be trusted")
