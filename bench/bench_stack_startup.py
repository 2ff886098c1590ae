"""Time from start to ready of the whole stack: LocalStack (processes) beside DockerStack (containers).

Each run starts a stack with the same StackConfig (PostgreSQL, Redis, the
Shunya stub, the app and ``--task-workers`` Celery workers; DockerStack adds
the fault proxy), waits until everything answers, and stops it. Runs
alternate between the two so that both share the machine's noise; the table
shows the median (and min-max) of N runs of: start() until ready, and stop().
A column is skipped with the reason when its stack cannot run here (no Docker
daemon or images; no PostgreSQL binaries). Bounded: N is small and every
start has its own timeout.

    .venv/bin/python bench/bench_stack_startup.py [--runs 3] [--task-workers 1] [--app-workers 1]

DockerStack's images come from the STORMPROOF_IMAGE_* settings (see scripts/build-images.sh).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stormproof.harness.stack import LocalStack, StackConfig, StackError  # noqa: E402
from stormproof.harness.stack.docker import DockerImages, DockerStack, docker_unreachable_reason  # noqa: E402


def measure(make: Callable[[], LocalStack | DockerStack]) -> tuple[float, float]:
    """(seconds from start() to ready, seconds to stop()) of one run."""
    stack = make()
    started = time.monotonic()
    stack.start()
    ready = time.monotonic() - started
    started = time.monotonic()
    stack.stop()
    return ready, time.monotonic() - started


def summary(samples: list[float]) -> str:
    if not samples:
        return "-"
    return f"{statistics.median(samples):6.2f} s ({min(samples):.2f}-{max(samples):.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per stack (default 3)")
    parser.add_argument("--task-workers", type=int, default=1)
    parser.add_argument("--app-workers", type=int, default=1)
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be between 1 and 20")
    config = StackConfig(task_workers=args.task_workers, app_workers=args.app_workers)

    stacks: dict[str, Callable[[], LocalStack | DockerStack]] = {
        "LocalStack": lambda: LocalStack(config),
        "DockerStack": lambda: DockerStack(config),
    }
    skipped: dict[str, str] = {}
    reason = docker_unreachable_reason()
    if reason is not None:
        skipped["DockerStack"] = reason
    ready: dict[str, list[float]] = {name: [] for name in stacks}
    stop: dict[str, list[float]] = {name: [] for name in stacks}

    images = DockerImages.from_env()
    print(f"stack: {args.task_workers} task worker(s), {args.app_workers} app worker(s); {args.runs} run(s) each, alternating")
    print(f"docker images: postgres={images.postgres} redis={images.redis} proxy={images.proxy} app={images.app}")
    for run in range(args.runs):
        for name, make in stacks.items():
            if name in skipped:
                continue
            try:
                up, down = measure(make)
            except StackError as exc:
                skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                continue
            ready[name].append(up)
            stop[name].append(down)
            print(f"  run {run + 1} {name:<11} ready {up:6.2f} s  stop {down:5.2f} s", flush=True)

    names = list(stacks)
    print()
    print(f"{'':<22}" + "".join(f"{name:<28}" for name in names))
    print(f"{'start -> ready':<22}" + "".join(f"{summary(ready[n]):<28}" for n in names))
    print(f"{'stop':<22}" + "".join(f"{summary(stop[n]):<28}" for n in names))
    for name, why in skipped.items():
        print(f"\n{name} skipped: {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
