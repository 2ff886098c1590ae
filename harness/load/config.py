"""What a load process needs to know, handed over as one JSON file.

The runner writes it (``STORMPROOF_LOAD_CONFIG`` names the file); for a plain
``locust -f locustfile.py`` against ``stormproof up``, the output of
``stormproof up --json`` saved to a file (``STORMPROOF_STACK_JSON``) is enough:
the default operation mix and seed are used.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LoadConfig", "Stage", "DEFAULT_WEIGHTS", "ACTIONS", "load_config", "opening_turns"]

#: Every action a load user can take, with the default mix.
DEFAULT_WEIGHTS: dict[str, int] = {
    "session.start": 10,
    "session.stop": 6,
    "legacy.start": 2,
    "legacy.stop": 1,
    "appointment.assign": 6,
    "appointment.unassign": 3,
    # One rep assigned to both appointments of a seeded overlapping pair at once (plan A3); off unless asked.
    "appointment.double_book": 0,
    "appointment.read": 4,
    # Assign, read, unassign, read, on an appointment no other turn writes: each read must answer the write
    # before it (reads-current).
    "appointment.assign_read": 1,
    "session.read": 3,
    "appointment.list": 2,
    # A burst of lists sent at once by one user (plan C3: a limit holds when a tenant's requests arrive
    # together, not only under a steady flood); off unless a scenario asks.
    "appointment.list_burst": 0,
    "call.submit": 3,
    "call.refresh": 1,
    "webhook.deliver": 3,
    # A signed delivery of a job superseded for one of our calls (a resubmission's); off unless asked.
    "webhook.superseded": 0,
    "replay.same": 3,
    "replay.mismatch": 1,
    "replay.concurrent": 2,
    "probe.cross_tenant": 3,
    "probe.tenant_header": 1,
    # Probes derived from the app's OpenAPI document (stormproof.harness.load.probes): every keyed write, every role.
    "probe.idempotency": 1,
    "probe.authz": 1,
    # A write's body broken in a way its own schema refuses (stormproof.harness.load.malformed): a 4xx, never a
    # 2xx or a 5xx.
    "probe.malformed": 1,
    # Data lifecycle (plan F1 to F3); off unless a scenario asks, so the default mix stays as it was, but for
    # the consent probe: processing an appointment without its consent is the only load that puts the consent
    # promises at risk, and without it a smoke check (plain Locust included) judged consented appointments only.
    "consent.grant": 0,
    "consent.probe": 1,
    "lifecycle.delete": 0,
    "lifecycle.retention": 0,
    # The retention policy set (once per user) and read, no run asked: for a stack whose beat runs the periodic
    # retention (``retention_beat_s``); the read names the seeded rows, as a run does. Off unless asked.
    "lifecycle.retention_policy": 0,
    # A company-scope deletion of the seed's disposable company (once per load process); off unless asked.
    "lifecycle.delete_company": 0,
    # Manual retries of dead letters (plan C2), each letter retried twice; off unless a scenario asks.
    "dead_letter.retry": 0,
}
ACTIONS = frozenset(DEFAULT_WEIGHTS)

#: An action is rare when its share of the weights is under this: a short run may draw it too seldom to put its
#: promises at risk, so each load process takes every rare action this many times first (opening_turns).
_RARE_SHARE = 0.05
_OPENING_ROUNDS = 2


def opening_turns(weights: Mapping[str, int]) -> tuple[str, ...]:
    """The turns a load process takes before drawing at random: each rare action, ``_OPENING_ROUNDS`` times.

    Drawn at random, an action of weight 1 in 58 comes a few times in a 10-second smoke run on the Docker
    backend (363 requests), and there none of those probes was the rep's or the expired token's the run was
    asked to judge: the verdict was "not exercised" (CI, 2026-12-04). A run asked to judge a promise must put
    it at risk however short it is; these few turns (16 in the default mix) cost nothing to the mix of a
    longer run.
    """
    total = sum(w for w in weights.values() if w > 0)
    rare = [name for name, w in weights.items() if 0 < w and w < _RARE_SHARE * total]
    return tuple(rare) * _OPENING_ROUNDS


@dataclass(frozen=True)
class Stage:
    """Until ``until_s`` seconds into the run, hold ``users`` users (reached at ``spawn_rate``/s)."""

    until_s: float
    users: int
    spawn_rate: float


@dataclass(frozen=True)
class LoadConfig:
    app_url: str
    tenants: tuple[Mapping[str, Any], ...]
    webhook_secret: str
    weights: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    seed: int = 0
    hot_appointments: int = 2
    origin_ns: int = 0
    history_dir: str = "stormproof-history"
    progress_path: str | None = None
    stages: tuple[Stage, ...] = ()
    request_timeout_s: float = 10.0
    #: Company ids of the quiet tenants, and the mean pause between one quiet user's actions.
    quiet_tenants: tuple[str, ...] = ()
    quiet_interval_s: float = 0.0
    #: Busy users act on a common clock tick this long (0: after a pause of 0 to 20 ms).
    tick_s: float = 0.0
    #: How long the app keeps an Idempotency-Key (None: not known): a short one lets a probe outlive a key.
    idempotency_ttl_s: float | None = None
    #: The life of the tokens the load signs to expire during the run (``tokens.lapsing_token``); None: none.
    token_lapse_s: float | None = None

    @property
    def webhook_url(self) -> str:
        return f"{self.app_url}/api/v1/shunya/webhook"

    def to_json(self) -> str:
        data = {
            "app_url": self.app_url, "tenants": list(self.tenants), "webhook_secret": self.webhook_secret,
            "weights": dict(self.weights), "seed": self.seed, "hot_appointments": self.hot_appointments,
            "origin_ns": self.origin_ns, "history_dir": self.history_dir, "progress_path": self.progress_path,
            "stages": [s.__dict__ for s in self.stages], "request_timeout_s": self.request_timeout_s,
            "quiet_tenants": list(self.quiet_tenants), "quiet_interval_s": self.quiet_interval_s,
            "tick_s": self.tick_s,
            "idempotency_ttl_s": self.idempotency_ttl_s,
            "token_lapse_s": self.token_lapse_s,
        }
        return json.dumps(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LoadConfig":
        weights = {k: int(v) for k, v in (data.get("weights") or DEFAULT_WEIGHTS).items()}
        unknown = set(weights) - ACTIONS
        if unknown:
            raise ValueError(f"unknown load actions {sorted(unknown)}; known: {sorted(ACTIONS)}")
        return cls(
            app_url=str(data["app_url"]).rstrip("/"),
            tenants=tuple(data["tenants"]),
            webhook_secret=str(data["webhook_secret"]),
            weights=weights,
            seed=int(data.get("seed", 0)),
            hot_appointments=int(data.get("hot_appointments", 2)),
            origin_ns=int(data.get("origin_ns") or time.monotonic_ns()),
            history_dir=str(data.get("history_dir") or "stormproof-history"),
            progress_path=data.get("progress_path"),
            stages=tuple(Stage(**s) for s in data.get("stages") or ()),
            request_timeout_s=float(data.get("request_timeout_s", 10.0)),
            quiet_tenants=tuple(str(t) for t in data.get("quiet_tenants") or ()),
            quiet_interval_s=float(data.get("quiet_interval_s", 0.0)),
            tick_s=float(data.get("tick_s", 0.0)),
            idempotency_ttl_s=None if data.get("idempotency_ttl_s") is None else float(data["idempotency_ttl_s"]),
            token_lapse_s=None if data.get("token_lapse_s") is None else float(data["token_lapse_s"]),
        )


def load_config(environ: Mapping[str, str] | None = None) -> LoadConfig:
    """The config of this load process, from ``STORMPROOF_LOAD_CONFIG`` or ``STORMPROOF_STACK_JSON``."""
    env = os.environ if environ is None else environ
    if env.get("STORMPROOF_LOAD_CONFIG"):
        return LoadConfig.from_dict(json.loads(Path(env["STORMPROOF_LOAD_CONFIG"]).read_text()))
    if env.get("STORMPROOF_STACK_JSON"):
        from .stackfile import wait_for_stack_file  # the stack may still be starting

        stack = wait_for_stack_file(env["STORMPROOF_STACK_JSON"])
        return LoadConfig.from_dict({**stack, "seed": int(env.get("STORMPROOF_SEED", "0"))})
    raise RuntimeError(
        "no load configuration: set STORMPROOF_STACK_JSON to a file holding the output of "
        "`stormproof up --json` (or run a scenario with `stormproof run NAME`)"
    )
