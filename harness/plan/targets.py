"""What each backend lets a fault act on, known before anything starts.

Both stacks launch one recipe (``stormproof.harness.stack.recipe``), which declares the
proxied links and the services a fault may kill or pause; the plan asks it,
so a service added to the recipe is a target on both backends at once. An
external backend (``--app-url``) offers nothing, since the harness neither
proxies nor started it. Checking a schedule against this turns "404: proxy
not found" after the load into a plan error naming the fault and the target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stormproof.harness.stack import StackConfig

    from .scenario import StackSpec

__all__ = ["BACKENDS", "Targets", "stack_config", "targets_for"]

BACKENDS = ("local", "docker", "external")


@dataclass(frozen=True)
class Targets:
    """The links network faults may act on, and the processes process faults may act on."""

    backend: str
    links: tuple[str, ...]
    processes: tuple[str, ...]


def stack_config(stack: StackSpec, *, weakenings: Sequence[str] = (),
                 app_command: tuple[str, ...] | None = None) -> StackConfig:
    """The stack a run starts for ``stack`` (the one place a scenario's stack becomes a ``StackConfig``)."""
    from stormproof.harness.stack import StackConfig

    return StackConfig(
        weakenings=tuple(weakenings), app_workers=stack.app_workers, task_workers=stack.task_workers,
        worker_concurrency=stack.worker_concurrency, retention_beat_s=stack.retention_beat_s, tenants=stack.tenants, reps=stack.reps,
        appointments=stack.appointments, shunya=dict(stack.shunya), env=dict(stack.env), app_command=app_command,
    )


def targets_for(backend: str, stack: StackSpec) -> Targets:
    """What ``backend`` offers for a run whose stack is ``stack``."""
    if backend == "external":
        return Targets(backend, (), ())
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    from stormproof.harness.stack.recipe import targets_for as recipe_targets

    offered = recipe_targets(backend, stack_config(stack))
    return Targets(backend, offered.links, offered.processes)
