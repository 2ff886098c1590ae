"""The run plan: one scenario and the command-line options, resolved and checked once.

Jepsen's "a test is one map": everything the runner, the nemesis, the checks
and the report need to know about a run is here, typed and frozen, and
result.json records it as is (``plan``), so a run can be read back as the
plan it ran. ``build_plan`` is the only place options meet scenario values
and defaults, and the only place fault targets meet the backend: every
mistake is a :class:`PlanError` before any service starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import StrictInt, ValidationError, model_validator

from ..faults.schedule import Schedule
from ..invariants.config import CheckConfig
from .base import Name, NonNegInt, PlanModel, PosFloat, PosInt
from .errors import PlanError, from_validation
from .faults import FAULT_KINDS, NETWORK_FAULTS, Fault
from .options import RunOptions
from .scenario import Scenario
from .targets import Targets, targets_for

__all__ = ["ALWAYS_CHECKS", "RunPlan", "SLO_CHECKS", "build_plan", "plan_from_dict"]

#: The SLO checks every run adds to its scenario's invariants (reported apart from safety).
SLO_CHECKS = ("slo-error-rate", "slo-latency-p95")
#: The correctness checks every run adds to its scenario's invariants: promises of every route, judged
#: in every run whatever the scenario aims at (a 5xx with no fault in place fails any run).
#: A read must answer what the writes acknowledged before it left (a stale cache fails any run too), and a
#: well-formed request is refused only as its route's contract allows (a wrong 4xx fails any run too). No tenant
#: reads another's rows, nor is told its own row does not exist, in any run: refusals-explained leaves every 404
#: to tenant-isolation, and nine scenarios that did not ask for it let an own row's 404 pass (34 of them in the
#: refusal sweep over the fault scenarios, 2026-12-05). A body its own schema refuses is refused, in any run that
#: sends one (the default mix does: probe.malformed).
ALWAYS_CHECKS = ("server-errors-explained", "reads-current", "refusals-explained", "tenant-isolation",
                 "input-validated")

_CLI = "command line"


def _check_targets(items: Iterable[tuple[str, str, tuple[str, ...]]], targets: Targets, source: str) -> None:
    """Each ``(path, fault, targets)`` must be something ``targets.backend`` offers."""
    for path, fault, names in items:
        if fault in NETWORK_FAULTS:
            offered, what = targets.links, "link"
        else:
            offered, what = targets.processes, "process"
        if not offered:
            fix = ("run it with --backend local" if targets.backend == "docker"
                   else "run it with --app-command (the harness then starts your backend behind its proxies)")
            raise PlanError(source, path, f"the {targets.backend} backend offers no {what} faults, so {fault!r} "
                                          f"cannot run there; {fix}")
        for name in names:
            if name not in offered:
                raise PlanError(source, f"{path}.target", f"{name!r} is not a {what} of the {targets.backend} "
                                                          f"backend; allowed: {', '.join(offered)}")


class RunPlan(PlanModel):
    """One run, fully resolved: what to start, what load, which faults when, what to check.

    No field has a default of its own: each value comes from the options, the
    scenario or their defaults, so a default lives in one place only.
    """

    scenario: Scenario
    backend: Literal["local", "docker", "external"]
    seed: StrictInt
    duration_s: PosFloat
    users: PosInt
    workers: NonNegInt
    #: The fixes switched off, sorted (empty: every fix on).
    weakenings: tuple[Name, ...] = ()
    #: The faults as played: the scenario's that start within the run, then the drawn ones, by start time.
    faults: tuple[Fault, ...] = ()
    #: The invariants and SLO checks judged at the end.
    checks: tuple[Name, ...]
    #: Hard cap of the wait for quiescence (None: the policy's default, see ``stormproof.harness.runner.quiesce``).
    quiesce_s: PosFloat | None
    app_command: tuple[str, ...] | None
    app_url: str | None

    @model_validator(mode="after")
    def _consistent(self) -> RunPlan:
        from stormproof.reference_app.weaken import WEAKENINGS

        unknown = [w for w in self.weakenings if w not in WEAKENINGS]
        if unknown:
            raise ValueError(f"unknown weakening {unknown[0]!r}; known: {', '.join(sorted(WEAKENINGS))}")
        if (self.backend == "external") != (self.app_url is not None):
            raise ValueError("the external backend is the one given by app_url, and only it")
        _check_targets(((f"faults[{i}]", f.fault, (f.target,)) for i, f in enumerate(self.faults)),  # type: ignore[attr-defined]
                       targets_for(self.backend, self.scenario.stack), "plan")
        return self

    @property
    def weights(self) -> dict[str, int]:
        """The load mix: the scenario's, or the load's default."""
        from ..load.config import DEFAULT_WEIGHTS

        return dict(self.scenario.load.weights or DEFAULT_WEIGHTS)

    def schedule(self) -> Schedule:
        """The faults as the nemesis plays them."""
        return Schedule(tuple(f.to_spec() for f in self.faults))

    @property
    def idempotency_ttl_s(self) -> float | None:
        """The key TTL the app was given; None for an app already running (``app_url``), which the
        scenario's stack env never reached: judging it by a TTL it was not given cried wolf."""
        return self.scenario.stack.idempotency_ttl_s if self.app_url is None else None

    @property
    def outbox_redeliver_s(self) -> float | None:
        """The outbox redeliver bound quiescence holds the app to: the reference app's, started by the harness;
        None for any other backend (its outbox, if it has one, keeps its own rules)."""
        return self.scenario.stack.outbox_redeliver_s if self.app_url is None and not self.app_command else None

    def check_config(self) -> CheckConfig:
        """The checkers' thresholds: the scenario's SLOs, and the limits, budgets and TTL it gives the app.

        The rate limit, the retry budget, the backoff and the key TTL come from the scenario's stack env,
        which only an app the harness starts receives; for an app already running (``app_url``) they are
        not known, and the rules that need them judge nothing rather than the wrong thing (a higher limit
        of its own would read as over-limit, a lower one as a quiet tenant refused)."""
        started_here = self.app_url is None
        rate, burst = self.scenario.stack.rate_limit if started_here else (None, 0.0)
        task_rate, task_burst = self.scenario.stack.task_rate_limit if started_here else (None, 0.0)
        shunya_rate, shunya_burst = self.scenario.stack.shunya_rate_limit if started_here else (None, 0.0)
        retry_rate, retry_burst = self.scenario.stack.retry_budget if started_here else (None, 0.0)
        return CheckConfig(error_rate_max=self.scenario.slo.error_rate_max,
                           latency_p95_ms=self.scenario.slo.latency_p95_ms,
                           rate_limit_per_s=rate, rate_limit_burst=burst,
                           task_rate_per_s=task_rate, task_rate_burst=task_burst,
                           shunya_rate_per_s=shunya_rate, shunya_rate_burst=shunya_burst,
                           retry_budget_per_s=retry_rate, retry_budget_burst=retry_burst,
                           task_try_budget=self.scenario.stack.task_try_budget if started_here else {},
                           task_backoff_ms=self.scenario.stack.task_backoff_ms if started_here else None,
                           task_max_retries=self.scenario.stack.task_max_retries if started_here else None,
                           idempotency_ttl_s=self.idempotency_ttl_s)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form recorded in result.json (``plan``)."""
        return self.model_dump(mode="json")


def plan_from_dict(data: Mapping[str, Any], source: str = "result.json") -> RunPlan:
    """A plan read back from its JSON form; a :class:`PlanError` names what is wrong."""
    try:
        return RunPlan.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, source, drop=frozenset(FAULT_KINDS), prefix="plan") from None


def _options(options: RunOptions) -> None:
    """The command line's own mistakes, named by their flags."""
    checks = (("--duration", options.duration_s, 0, float), ("--users", options.users, 1, int),
              ("--workers", options.workers, 0, int))
    for flag, value, low, kind in checks:
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise PlanError(_CLI, flag, f"must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        if (value <= low) if kind is float else (value < low):
            raise PlanError(_CLI, flag, f"must be {'above' if kind is float else 'at least'} {low}, got {value:g}")
    if options.quiesce_s is not None and options.quiesce_s <= 0:
        raise PlanError(_CLI, "quiesce_s", f"must be above 0, got {options.quiesce_s:g}")
    if options.backend not in ("local", "docker"):
        raise PlanError(_CLI, "--backend", f"unknown backend {options.backend!r}; allowed: local, docker")
    if options.weakenings:
        from stormproof.reference_app.weaken import WEAKENINGS

        for name in options.weakenings:
            if name not in WEAKENINGS:
                raise PlanError(_CLI, "--weaken", f"unknown weakening {name!r}; known: {', '.join(sorted(WEAKENINGS))}")
    if options.app_url:
        if not options.database_url:
            raise PlanError(_CLI, "--app-url", "needs --database-url (the checks read the final state in that "
                                               "database); give the URL of the database your backend uses")
        if options.weakenings:
            raise PlanError(_CLI, "--weaken", "switches off fixes of the reference app; it cannot weaken an external "
                                              "backend (--app-url): drop one of the two")
        if options.app_command:
            raise PlanError(_CLI, "--app-command", "starts a backend here; --app-url uses one already running: "
                                                   "give one of the two")
        if options.backend != "local":
            raise PlanError(_CLI, "--backend", "--app-url uses a backend already running: drop --backend")
    elif options.database_url:
        raise PlanError(_CLI, "--database-url", "only goes with --app-url (a backend already running)")
    if options.app_command and options.backend == "docker":
        raise PlanError(_CLI, "--app-command", "runs your backend as a local process; use --backend local with it")


def build_plan(scenario: Scenario, options: RunOptions | None = None) -> RunPlan:
    """Resolve ``options`` against ``scenario``; a :class:`PlanError` names the flag or the file's field."""
    options = options or RunOptions()
    _options(options)
    backend = "external" if options.app_url else options.backend
    targets = targets_for(backend, scenario.stack)
    source = scenario.source
    _check_targets(((f"faults[{i}]", f.fault, (f.target,)) for i, f in enumerate(scenario.faults)),  # type: ignore[attr-defined]
                   targets, source)
    random = scenario.random_faults
    if random is not None:
        _check_targets(((f"random_faults.templates[{i}]", t.fault, t.targets) for i, t in enumerate(random.templates)),  # type: ignore[attr-defined]
                       targets, source)
    seed = options.seed if options.seed is not None else scenario.seed
    duration = options.duration_s if options.duration_s is not None else scenario.duration_s
    faults = [f for f in scenario.faults if f.at < duration]
    if random is not None:
        faults += random.draw(seed, duration)
    try:
        return RunPlan(
            scenario=scenario, backend=backend, seed=seed, duration_s=duration,
            users=options.users if options.users is not None else scenario.load.users,
            workers=options.workers if options.workers is not None else scenario.load.workers,
            weakenings=tuple(sorted(options.weakenings or ())),
            faults=tuple(sorted(faults, key=lambda f: f.at)),
            checks=(*scenario.invariants, *(c for c in ALWAYS_CHECKS if c not in scenario.invariants), *SLO_CHECKS),
            quiesce_s=options.quiesce_s,
            app_command=options.app_command, app_url=options.app_url,
        )
    except ValidationError as exc:  # only what the checks above did not name: still one line
        raise from_validation(exc, source, drop=frozenset(FAULT_KINDS)) from None
