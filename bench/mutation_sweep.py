"""How many unnamed bugs the scenarios catch: source mutants of the reference app, each run through its scenario.

The weakenings prove that each checker catches the bug it was written for; this measures the harness against
bugs nobody named. Each mutant changes one spot of ``reference_app`` (services, routes, worker): a guard whose
body raises removed (``guard``: the check an engineer forgets), a comparison flipped (``cmp``), ``and``/``or``
swapped (``boolop``), a row lock, a commit or a relay nudge dropped (``dropcall``), one criterion of a query's
``where`` dropped (``dropwhere``: the forgotten ``company_id`` or status filter, the multi-tenant backend's classic
bug; a ``where`` of one criterion is dropped whole), a refusal answered with the wrong problem (``refusal``: a
``Problem("not-found")`` raised as ``"forbidden"``, a conflict as a malformed request: the bug a checker that judges
only the successes lets through). Spots inside a weakening's
own branch are left alone (they switch a named weakening on). The mutant runs through the scenario where its
file's promises are at risk, then ``smoke`` if that passed; a run that ends VIOLATION or ERROR caught it.

A survivor is not always a gap: a guard backed by a database constraint (defense in depth), a branch only a
race the load cannot provoke reaches, or a mutant equivalent to the original. Each survivor is read by hand;
the gaps found so became promise rows with weakenings of their own (docs/PROMISES.md: "Found ... by a
source-mutation sweep").

The mutants are written into ``--clone``, a checkout with its own ``.venv`` (``bash scripts/install.sh``
there): never this checkout. Every file is restored after each mutant, and on exit, Ctrl-C included.

    git clone . /tmp/sweep && (cd /tmp/sweep && bash scripts/install.sh)
    .venv/bin/python bench/mutation_sweep.py --clone /tmp/sweep --list
    .venv/bin/python bench/mutation_sweep.py --clone /tmp/sweep --kinds guard --out /tmp/sweep-runs
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Mutant", "mutants", "apply", "restore"]

#: Where the mutants are made (paths inside the clone).
DIRS = ("reference_app/services", "reference_app/api/routes", "reference_app/worker", "reference_app/api")
#: Files left alone: the OpenAPI document builder (a mutant there breaks the probes' contract, not a promise).
SKIP = frozenset({"__init__.py", "openapi.py"})
_SWAP: dict[type, type] = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
                           ast.GtE: ast.Gt, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn,
                           ast.NotIn: ast.In}
#: Calls whose removal is a bug an engineer writes: a row lock, a commit, a relay nudge.
_DROPPED = frozenset({"with_for_update", "commit", "nudge"})
#: Query methods whose criteria a ``dropwhere`` mutant drops one at a time.
_FILTERS = frozenset({"where", "filter"})
#: ``refusal`` mutants: each problem kind -> the plausible wrong one an engineer writes instead (another status,
#: or for a 409 whose type tells the client what to do, another 409). The server's own errors are left alone.
WRONG_REFUSAL: dict[str, str] = {
    "not-found": "forbidden", "forbidden": "not-found", "unauthenticated": "forbidden",
    "malformed-request": "validation-error", "validation-error": "malformed-request",
    "idempotency-key-missing": "validation-error", "idempotency-key-invalid": "validation-error",
    "idempotency-key-mismatch": "conflict", "idempotency-key-in-flight": "conflict", "resource-busy": "conflict",
    "active-session-exists": "malformed-request", "appointment-already-assigned": "malformed-request",
    "rep-double-booked": "malformed-request", "conflict": "malformed-request", "consent-required": "forbidden",
    "deletion-not-pending": "not-found", "confirmation-token-invalid": "forbidden", "rate-limited": "resource-busy",
    "payload-too-large": "malformed-request", "unsupported-media-type": "malformed-request",
    "method-not-allowed": "not-found", "unavailable": "resource-busy",
}
#: The scenario where a file's promises are at risk (first match of the file name's end); smoke otherwise.
SCENARIOS: tuple[tuple[str, str], ...] = (
    ("assignments.py", "assignment-storm"), ("consent.py", "lifecycle-under-load"),
    ("consents.py", "lifecycle-under-load"), ("deletion.py", "lifecycle-under-load"),
    ("retention.py", "lifecycle-under-load"), ("lifecycle.py", "lifecycle-under-load"),
    ("idempotency.py", "idempotency-replay-storm"), ("locks.py", "webhook-poll-storm"),
    ("shunya_jobs.py", "webhook-poll-storm"), ("shunya_webhook.py", "webhook-poll-storm"),
    ("rate_limit.py", "noisy-tenant"), ("deps.py", "noisy-tenant"), ("recording_sessions.py", "session-start-storm"),
    ("recordings.py", "session-start-storm"), ("shunya_client.py", "shunya-quota"),
    ("task_queue.py", "task-dedupe-storm"), ("tasks.py", "task-dedupe-storm"), ("outbox.py", "relay-worker-kill"),
    ("broker_restart.py", "relay-worker-kill"), ("tenancy.py", "tenant-probe"), ("reps.py", "tenant-probe"),
    ("dead_letters.py", "tenant-probe"), ("schemas.py", "tenant-probe"),
)
_NOOP = ("\n\nclass _SweepNoop:\n    def __await__(self):\n        if False:\n            yield\n        return None\n\n\n"
         "def _sweep_noop(*args, **kwargs):\n    return _SweepNoop()\n")


@dataclass(frozen=True, slots=True)
class Mutant:
    number: int
    file: str           # relative to the clone
    line: int
    kind: str           # guard, cmp, boolop, dropcall, dropwhere, refusal
    what: str           # the original code, shortened
    path: tuple[tuple[str, int | None], ...]  # fields and indices from the module to the node

    @property
    def scenario(self) -> str:
        return next((name for end, name in SCENARIOS if self.file.endswith(end)), "smoke")


def _in_weakening(node: ast.AST) -> bool:
    return "weakened" in ast.unparse(node)


def _is_filter(node: ast.AST) -> bool:
    """A ``.where(...)``/``.filter(...)`` call with positional criteria only: what a ``dropwhere`` mutant edits."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _FILTERS \
        and not node.keywords


def _refused_kind(node: ast.AST) -> str | None:
    """The problem kind of a ``Problem("kind", ...)`` call a ``refusal`` mutant changes, else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Problem" and node.args \
            and isinstance(node.args[0], ast.Constant) and node.args[0].value in WRONG_REFUSAL:
        return str(node.args[0].value)
    return None


def _sites(tree: ast.Module) -> list[tuple[tuple[tuple[str, int | None], ...], str, int, str]]:
    found: list[tuple[tuple[tuple[str, int | None], ...], str, int, str]] = []

    def walk(node: ast.AST, path: tuple[tuple[str, int | None], ...], guarded: bool) -> None:
        for field, value in ast.iter_fields(node):
            for i, child in enumerate(value if isinstance(value, list) else [value]):
                if not isinstance(child, ast.AST):
                    continue
                at = path + ((field, i if isinstance(value, list) else None),)
                # Inside a weakening's branch: mutating it switches a named weakening on, which is known.
                inside = guarded or (isinstance(child, (ast.If, ast.IfExp, ast.BoolOp)) and _in_weakening(
                    child.test if isinstance(child, (ast.If, ast.IfExp)) else child))
                line = getattr(child, "lineno", 0)
                if not inside:
                    if isinstance(child, ast.If) and any(isinstance(s, ast.Raise) for s in child.body):
                        found.append((at, "guard", line, "if " + ast.unparse(child.test)[:80]))
                    if isinstance(child, ast.Compare) and len(child.ops) == 1 and type(child.ops[0]) in _SWAP:
                        found.append((at, "cmp", line, ast.unparse(child)[:90]))
                    if isinstance(child, ast.BoolOp):
                        found.append((at, "boolop", line, ast.unparse(child)[:90]))
                    if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) \
                            and child.func.attr in _DROPPED:
                        found.append((at, "dropcall", line, f".{child.func.attr}()"))
                    if _is_filter(child) and child.args:  # type: ignore[attr-defined]
                        if len(child.args) == 1:
                            found.append((at, "dropwhere", line, f".{child.func.attr}({ast.unparse(child.args[0])[:70]})"))
                        else:
                            for i, criterion in enumerate(child.args):
                                found.append((at + (("args", i),), "dropwhere", line,
                                              f"drop {ast.unparse(criterion)[:80]}"))
                    kind = _refused_kind(child)
                    if kind is not None:
                        found.append((at, "refusal", line, f"Problem({kind!r}) -> {WRONG_REFUSAL[kind]!r}"))
                walk(child, at, inside)

    walk(tree, (), False)
    return found


def _original(clone: Path, rel: str) -> str:
    saved = clone / (rel + ".orig")
    return (saved if saved.exists() else clone / rel).read_text()


def mutants(clone: Path) -> list[Mutant]:
    """Every mutant of the clone's app, numbered in file order (stable while the app's code is)."""
    out: list[Mutant] = []
    for folder in DIRS:
        for file in sorted((clone / folder).glob("*.py")):
            if file.name in SKIP:
                continue
            rel = str(file.relative_to(clone))
            for path, kind, line, what in _sites(ast.parse(_original(clone, rel))):
                out.append(Mutant(len(out), rel, line, kind, what, path))
    return out


def _node(tree: ast.AST, path: tuple[tuple[str, int | None], ...]) -> ast.AST:
    for field, index in path:
        value = getattr(tree, field)
        tree = value[index] if index is not None else value
    return tree


def _replace(tree: ast.AST, path: tuple[tuple[str, int | None], ...], new: ast.AST) -> None:
    parent, (field, index) = _node(tree, path[:-1]), path[-1]
    if index is None:
        setattr(parent, field, new)
    else:
        getattr(parent, field)[index] = new


def apply(clone: Path, mutant: Mutant) -> None:
    """Write ``mutant`` into the clone (the original kept beside it as ``FILE.orig``)."""
    target = clone / mutant.file
    saved = clone / (mutant.file + ".orig")
    if not saved.exists():
        target.rename(saved)
    tree = ast.parse(saved.read_text())
    node = _node(tree, mutant.path)
    if mutant.kind == "guard":
        node.body = [ast.Pass()]  # type: ignore[attr-defined]
    elif mutant.kind == "cmp":
        node.ops = [_SWAP[type(node.ops[0])]()]  # type: ignore[attr-defined]
    elif mutant.kind == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()  # type: ignore[attr-defined]
    elif mutant.kind == "dropwhere":
        parent = _node(tree, mutant.path[:-1])
        if _is_filter(parent) and len(parent.args) > 1:  # type: ignore[attr-defined]
            del parent.args[mutant.path[-1][1]]  # type: ignore[attr-defined]  # one criterion of several
        else:  # a where of one criterion: dropped whole
            _replace(tree, mutant.path, node.func.value)  # type: ignore[attr-defined]
    elif mutant.kind == "refusal":
        node.args[0] = ast.Constant(WRONG_REFUSAL[node.args[0].value])  # type: ignore[attr-defined]
    elif mutant.kind == "dropcall":
        func = node.func  # type: ignore[attr-defined]
        _replace(tree, mutant.path, func.value if func.attr == "with_for_update"
                 else ast.Call(ast.Name("_sweep_noop", ast.Load()), [], []))
    source = ast.unparse(ast.fix_missing_locations(tree))
    if "_sweep_noop(" in source:
        source += _NOOP
    target.write_text(source + "\n")


def restore(clone: Path) -> None:
    """Put every original back."""
    for folder in DIRS:
        for saved in (clone / folder).glob("*.py.orig"):
            saved.replace(saved.with_suffix(""))


def _run(clone: Path, scenario: str, out: Path, timeout_s: float) -> tuple[str, list[str]]:
    """Run ``scenario`` in the clone: (PASS, VIOLATION, ERROR or TIMEOUT; the invariants not valid)."""
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"{scenario}.log"
    with log.open("w") as sink:
        try:
            subprocess.run([str(clone / ".venv/bin/stormproof"), "run", scenario, "--out", str(out)], cwd=clone,
                           stdout=sink, stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return "TIMEOUT", []
    results = sorted(out.glob(f"{scenario}-*/result.json"))
    if not results:
        return "ERROR", []
    result = json.loads(results[-1].read_text())
    failed = [v["invariant"] for v in result.get("verdicts") or () if v.get("status") != "valid"]
    return str(result.get("verdict", "error")).upper(), failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clone", type=Path, required=True, help="a checkout with its own .venv (mutated!)")
    parser.add_argument("--kinds", default="guard,dropcall", help="comma-separated: guard,cmp,boolop,dropcall,dropwhere,refusal")
    parser.add_argument("--only", default="", help="comma-separated mutant numbers (from --list)")
    parser.add_argument("--sample", type=int, default=0, help="at most this many, drawn with --seed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--list", action="store_true", help="print the mutants and stop")
    parser.add_argument("--out", type=Path, default=Path("/tmp/stormproof-mutation-sweep"))
    parser.add_argument("--timeout", type=float, default=400.0, help="seconds a scenario run may take")
    parser.add_argument("--scenario", default="", help="run every mutant through this scenario (then smoke)")
    args = parser.parse_args(argv)
    clone = args.clone.resolve()
    if not (clone / ".venv/bin/stormproof").exists() or clone == Path(__file__).resolve().parents[1]:
        parser.error(f"{clone} is not a separate checkout with its own .venv (git clone, then scripts/install.sh)")
    restore(clone)
    every = mutants(clone)
    kinds = {k.strip() for k in args.kinds.split(",") if k.strip()}
    chosen = [m for m in every if m.kind in kinds]
    if args.only:
        wanted = {int(n) for n in args.only.split(",")}
        chosen = [m for m in every if m.number in wanted]
    if args.sample and len(chosen) > args.sample:
        chosen = sorted(random.Random(args.seed).sample(chosen, args.sample), key=lambda m: m.number)
    if args.list:
        for m in chosen:
            print(f"{m.number}\t{m.kind}\t{m.file}:{m.line}\t{m.scenario}\t{m.what}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # restore on a kill too (finally below)
    rows = []
    began = time.monotonic()
    try:
        for m in chosen:
            restore(clone)
            apply(clone, m)
            verdicts = []
            for scenario in dict.fromkeys((args.scenario or m.scenario, "smoke")):
                verdict, failed = _run(clone, scenario, args.out / str(m.number), args.timeout)
                verdicts.append(f"{scenario}={verdict}" + (f"[{','.join(failed)}]" if failed else ""))
                if verdict != "PASS":
                    break
            caught = not verdicts[-1].split("=", 1)[1].startswith("PASS")
            rows.append((m, caught, " ".join(verdicts)))
            print(f"{m.number}\t{'caught' if caught else 'SURVIVED'}\t{m.kind}\t{m.file}:{m.line}\t{m.what}\t"
                  f"{' '.join(verdicts)}", flush=True)
    finally:
        restore(clone)
    caught = sum(1 for _, c, _ in rows if c)
    print(f"\n{caught} of {len(rows)} mutants caught in {time.monotonic() - began:.0f} s; survivors (read each: a "
          "guard a constraint backs, a race the load cannot provoke, or a gap):")
    for m, c, verdicts in rows:
        if not c:
            print(f"  {m.number}\t{m.kind}\t{m.file}:{m.line}\t{m.what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
