"""result.json: the machine-readable outcome of one run (schema version 1).

The runner builds a ``RunResult`` with ``build_result`` and writes it with
``write_result``; the report, the JUnit file and the index of runs are all
rendered from it (plus ``history.jsonl`` for evidence and charts), so a run
can be re-rendered long after it ran. The schema is documented in
``result.schema.json`` beside this module (JSON Schema 2020-12); bump
``SCHEMA_VERSION`` on any incompatible change, because nightly jobs keep
old run directories and the index reads them all.

Reading is strict about what the report needs and tolerant of extra keys,
so a newer writer's additions do not break an older reader.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from stormproof.harness.history import History
from stormproof.harness.invariants.verdict import Overall, Verdict, Violation, overall, verdict_to_dict
from stormproof.harness.promises import coverage as promise_coverage
from stormproof.harness.promises.run import coverage_entries
from stormproof.harness.invariants.snapshot import Quiescence
from stormproof.harness.report.stats import fault_windows, summarise_history

__all__ = [
    "RESULT_FILE",
    "SCHEMA_VERSION",
    "Backend",
    "FaultPlan",
    "ResultError",
    "RunFiles",
    "RunInfo",
    "RunResult",
    "RunVerdict",
    "ScenarioInfo",
    "SLOTargets",
    "build_result",
    "decide",
    "load_result",
    "result_from_dict",
    "result_to_dict",
    "schema_path",
    "verdict_from_dict",
    "write_result",
]

SCHEMA_VERSION = 1
RESULT_FILE = "result.json"

Backend = Literal["local", "docker", "external"]
RunVerdict = Literal["pass", "violation", "error"]

_BACKENDS = ("local", "docker", "external")
_EXIT_CODES: Mapping[str, int] = MappingProxyType({"pass": 0, "violation": 1, "error": 2})


class ResultError(ValueError):
    """A result.json that is missing, unreadable or not of a known schema."""


def schema_path() -> Path:
    """The JSON Schema of result.json, shipped with the package."""
    return Path(__file__).with_name("result.schema.json")


def _ro(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """One fault of the scenario's schedule (what was asked, not what happened)."""

    at_s: float
    duration_s: float
    fault: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _ro(self.params))


@dataclass(frozen=True, slots=True)
class SLOTargets:
    """The SLO thresholds the run was held to (plan E5)."""

    error_rate_max: float
    latency_p95_ms: float


@dataclass(frozen=True, slots=True)
class ScenarioInfo:
    """The scenario as run: load mix, fault schedule, invariants, SLOs and seed."""

    name: str
    description: str
    seed: int
    duration_s: float
    users: int
    spawn_rate: float
    weights: Mapping[str, float]
    faults: tuple[FaultPlan, ...]
    invariants: tuple[str, ...]
    slo: SLOTargets

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", _ro(self.weights))
        object.__setattr__(self, "faults", tuple(self.faults))
        object.__setattr__(self, "invariants", tuple(self.invariants))


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Where, when and how the run happened, and how to run it again."""

    id: str
    started_at: str
    finished_at: str
    duration_s: float
    backend: Backend
    weakenings: tuple[str, ...]
    command: str
    version: str
    commit: str | None
    host: str

    def __post_init__(self) -> None:
        if self.backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {self.backend!r}")
        object.__setattr__(self, "weakenings", tuple(self.weakenings))


@dataclass(frozen=True, slots=True)
class RunFiles:
    """Files of the run directory, as paths relative to it."""

    history: str = "history.jsonl"
    locust_stats: str | None = None
    logs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "logs", tuple(self.logs))
        for path in (self.history, self.locust_stats, *self.logs):
            if path is not None and (os.path.isabs(path) or ".." in Path(path).parts):
                raise ValueError(f"run files must be relative paths inside the run directory: {path!r}")


@dataclass(frozen=True, slots=True)
class RunResult:
    """Everything result.json holds. ``stats`` and ``faults`` are plain JSON data
    (see ``summarise_history`` and ``fault_windows``)."""

    scenario: ScenarioInfo
    run: RunInfo
    verdict: RunVerdict
    verdicts: tuple[Verdict, ...]
    overall: Overall
    stats: Mapping[str, Any]
    faults: tuple[Mapping[str, Any], ...]
    files: RunFiles
    error: str | None = None
    #: Per promise of ``stormproof.harness.promises``: how often this run exercised it (see ``coverage_entries``).
    coverage: tuple[Mapping[str, Any], ...] = ()
    #: How the wait for an idle system ended before the snapshot (None: the run never got there).
    quiescence: Quiescence | None = None
    schema_version: int = SCHEMA_VERSION
    #: The run plan as run (``stormproof.harness.plan.RunPlan.to_dict()``), None in results written before it existed.
    plan: Mapping[str, Any] | None = None
    #: Why the run never started (its system could not be set up), or None: such a run has no result to read.
    not_run: str | None = None

    def __post_init__(self) -> None:
        if self.verdict not in _EXIT_CODES:
            raise ValueError(f"verdict must be pass, violation or error, got {self.verdict!r}")
        object.__setattr__(self, "verdicts", tuple(self.verdicts))
        object.__setattr__(self, "faults", tuple(self.faults))
        object.__setattr__(self, "coverage", tuple(self.coverage))

    @property
    def exit_code(self) -> int:
        """0 pass, 1 violation, 2 error: the CLI's exit code for this run."""
        return _EXIT_CODES[self.verdict]

    @property
    def violation_count(self) -> int:
        """Violations over every safety/liveness invariant (all counted, not only those kept)."""
        return sum(_violations_of(v) for v in self.verdicts if v.kind != "slo")


def _violations_of(verdict: Verdict) -> int:
    counted = verdict.summary.get("violations")
    return counted if isinstance(counted, int) and not isinstance(counted, bool) else len(verdict.violations)


def decide(verdicts: Iterable[Verdict], error: str | None) -> tuple[RunVerdict, Overall]:
    """The run's verdict: error if the run failed or an invariant is unknown, violation
    if one is invalid (invalid outranks unknown, as in Jepsen), else pass. SLOs are apart."""
    combined = overall(verdicts)
    if combined.status == "invalid":
        return "violation", combined
    if error is not None or combined.status == "unknown":
        return "error", combined
    return "pass", combined


def build_result(
    scenario: ScenarioInfo,
    run: RunInfo,
    verdicts: Iterable[Verdict],
    history: History | None,
    *,
    files: RunFiles | None = None,
    error: str | None = None,
    plan: Mapping[str, Any] | None = None,
    not_run: str | None = None,
    quiescence: Quiescence | None = None,
    config: Any = None,
) -> RunResult:
    """The result of a run: verdict, exit code, stats and fault windows computed here.

    ``config``: the run's ``CheckConfig``, for the promise coverage (its limits).

    ``history`` may be None when the run failed before recording anything;
    the stats are then empty and ``error`` should say why. ``not_run`` marks a
    run whose system could not be set up (its verdict is ``error``).
    """
    if not_run is not None:
        error = error or not_run
    verdicts = tuple(verdicts)
    verdict, combined = decide(verdicts, error)
    if history is not None:
        stats, faults = summarise_history(history), fault_windows(history)
        covered = coverage_entries(promise_coverage(history, config, verdicts), (v.invariant for v in verdicts))
    else:
        stats, faults, covered = summarise_history(History(())), [], []
    return RunResult(scenario=scenario, run=run, verdict=verdict, verdicts=verdicts, overall=combined,
                     stats=stats, faults=tuple(faults), files=files or RunFiles(), error=error,
                     plan=plan, not_run=not_run, coverage=tuple(covered), quiescence=quiescence)


# -- to and from JSON ------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return repr(value)


def _finite(value: Any) -> Any:
    """NaN and infinities become None: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return [_finite(item) for item in sorted(value, key=repr)]
    return value


def result_to_dict(result: RunResult) -> dict[str, Any]:
    """The JSON form (schema version 1), see result.schema.json."""
    scenario, run = result.scenario, result.run
    return _finite({
        "schema_version": result.schema_version,
        "scenario": {
            "name": scenario.name,
            "description": scenario.description,
            "seed": scenario.seed,
            "duration_s": scenario.duration_s,
            "users": scenario.users,
            "spawn_rate": scenario.spawn_rate,
            "weights": dict(scenario.weights),
            "faults": [{"at_s": f.at_s, "duration_s": f.duration_s, "fault": f.fault, "target": f.target,
                        "params": dict(f.params)} for f in scenario.faults],
            "invariants": list(scenario.invariants),
            "slo": {"error_rate_max": scenario.slo.error_rate_max, "latency_p95_ms": scenario.slo.latency_p95_ms},
        },
        "run": {
            "id": run.id,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "duration_s": run.duration_s,
            "backend": run.backend,
            "weakenings": list(run.weakenings),
            "command": run.command,
            "version": run.version,
            "commit": run.commit,
            "host": run.host,
        },
        "verdict": result.verdict,
        "exit_code": result.exit_code,
        "overall": {
            "status": result.overall.status,
            "slo_status": result.overall.slo_status,
            "invalid": list(result.overall.invalid),
            "unknown": list(result.overall.unknown),
            "slo_breaches": list(result.overall.slo_breaches),
        },
        "verdicts": [verdict_to_dict(v) for v in result.verdicts],
        "stats": dict(result.stats),
        "faults": [dict(f) for f in result.faults],
        "error": result.error,
        "not_run": result.not_run,
        "coverage": [dict(entry) for entry in result.coverage],
        "quiescence": None if result.quiescence is None else result.quiescence.to_dict(),
        "files": {"history": result.files.history, "locust_stats": result.files.locust_stats,
                  "logs": list(result.files.logs)},
        "plan": None if result.plan is None else dict(result.plan),
    })


def verdict_from_dict(data: Mapping[str, Any]) -> Verdict:
    """Rebuild a Verdict written by ``verdict_to_dict``."""
    violations = tuple(
        Violation(
            invariant=str(item.get("invariant", data["invariant"])),
            message=str(item.get("message", "")),
            ops=tuple(int(op) for op in item.get("ops") or ()),
            details=_ro(item.get("details")),
            reproduce=item.get("reproduce"),
        )
        for item in data.get("violations") or ()
    )
    return Verdict(
        invariant=str(data["invariant"]),
        status=data["status"],
        kind=data["kind"],
        violations=violations,
        summary=_ro(data.get("summary")),
        error=data.get("error"),
    )


def result_from_dict(data: Mapping[str, Any]) -> RunResult:
    """Rebuild a RunResult; raises ``ResultError`` naming what is wrong."""
    version = data.get("schema_version") if isinstance(data, Mapping) else None
    if version != SCHEMA_VERSION:
        raise ResultError(f"result.json schema_version is {version!r}; this stormproof reads {SCHEMA_VERSION}")
    try:
        s, r, o, fl = data["scenario"], data["run"], data["overall"], data.get("files") or {}
        scenario = ScenarioInfo(
            name=str(s["name"]),
            description=str(s.get("description", "")),
            seed=int(s["seed"]),
            duration_s=float(s["duration_s"]),
            users=int(s["users"]),
            spawn_rate=float(s["spawn_rate"]),
            weights={str(k): float(v) for k, v in (s.get("weights") or {}).items()},
            faults=tuple(FaultPlan(float(f["at_s"]), float(f["duration_s"]), str(f["fault"]), str(f["target"]),
                                   f.get("params") or {}) for f in s.get("faults") or ()),
            invariants=tuple(str(name) for name in s.get("invariants") or ()),
            slo=SLOTargets(float(s["slo"]["error_rate_max"]), float(s["slo"]["latency_p95_ms"])),
        )
        run = RunInfo(
            id=str(r["id"]),
            started_at=str(r["started_at"]),
            finished_at=str(r["finished_at"]),
            duration_s=float(r["duration_s"]),
            backend=r["backend"],
            weakenings=tuple(str(w) for w in r.get("weakenings") or ()),
            command=str(r["command"]),
            version=str(r["version"]),
            commit=None if r.get("commit") is None else str(r["commit"]),
            host=str(r.get("host", "")),
        )
        verdicts = tuple(verdict_from_dict(v) for v in data.get("verdicts") or ())
        combined = Overall(
            status=o["status"],
            slo_status=o["slo_status"],
            invalid=tuple(o.get("invalid") or ()),
            unknown=tuple(o.get("unknown") or ()),
            slo_breaches=tuple(o.get("slo_breaches") or ()),
        )
        files = RunFiles(history=str(fl.get("history") or "history.jsonl"), locust_stats=fl.get("locust_stats"),
                         logs=tuple(str(p) for p in fl.get("logs") or ()))
        q = data.get("quiescence")
        quiescence = None if q is None else Quiescence(
            quiet=bool(q["quiet"]), waited_s=float(q["waited_s"]), backlog=int(q["backlog"]), reason=str(q["reason"]),
        )
        result = RunResult(scenario=scenario, run=run, verdict=data["verdict"], verdicts=verdicts,
                           overall=combined, stats=dict(data["stats"]), faults=tuple(data.get("faults") or ()),
                           files=files, error=data.get("error"), plan=data.get("plan"),
                           not_run=data.get("not_run"),
                           coverage=tuple(dict(entry) for entry in data.get("coverage") or ()),
                           quiescence=quiescence)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultError(f"result.json is malformed: {type(exc).__name__}: {exc}") from exc
    if data.get("exit_code") is not None and data["exit_code"] != result.exit_code:
        raise ResultError(f"result.json exit_code {data['exit_code']!r} disagrees with verdict {result.verdict!r}")
    return result


def write_result(run_dir: str | os.PathLike[str], result: RunResult) -> Path:
    """Write ``run_dir/result.json`` (atomically: a crash never leaves half a file)."""
    path = Path(run_dir) / RESULT_FILE
    text = json.dumps(result_to_dict(result), indent=2, sort_keys=False, default=_json_default, allow_nan=False)
    tmp = path.with_name(f".{RESULT_FILE}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_result(run_dir: str | os.PathLike[str]) -> RunResult:
    """Read ``run_dir/result.json``; ``ResultError`` if missing, not JSON or not schema 1."""
    path = Path(run_dir) / RESULT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultError(f"{path}: no result.json (is {run_dir} a run directory?)") from None
    except (OSError, ValueError) as exc:
        raise ResultError(f"{path}: cannot read: {exc}") from exc
    return result_from_dict(data)
