"""What each backend lets a fault act on, known before anything starts.

The local stack proxies every link and runs every service as a child process
it can kill or pause; the docker stack proxies the same links but offers no
process faults yet (``DockerStack.fault_targets`` is empty); an external
backend (``--app-url``) offers nothing, since the harness neither proxies nor
started it. Checking a schedule against this table turns "404: proxy not
found" after the load into a plan error naming the fault and the target.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BACKENDS", "Targets", "targets_for"]

BACKENDS = ("local", "docker", "external")

#: The proxied links of both stacks (``LocalStack.links``, ``harness.stack.docker.PROXIES``).
LINKS = ("app", "postgres", "redis", "shunya", "webhook")
_SERVICES = ("postgres", "redis", "app", "shunya")


@dataclass(frozen=True)
class Targets:
    """The links network faults may act on, and the processes process faults may act on."""

    backend: str
    links: tuple[str, ...]
    processes: tuple[str, ...]


def targets_for(backend: str, task_workers: int) -> Targets:
    """What ``backend`` offers for a stack with ``task_workers`` Celery workers."""
    if backend == "local":
        workers = tuple(f"worker{i}" for i in range(1, task_workers + 1))
        return Targets(backend, LINKS, (*_SERVICES, *workers, *(f"{w}-pool" for w in workers)))
    if backend == "docker":
        return Targets(backend, LINKS, ())
    if backend == "external":
        return Targets(backend, (), ())
    raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
