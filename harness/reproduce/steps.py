"""The readable step list: who sent what, in which group, under which fault.

Ids are shown by their refs (``t0.appointment_ids.0``, ``step:35.id``,
``key:1``), which say where each one comes from, rather than UUIDs that mean
nothing outside the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .case import Case, CaseFault, Step
from .requests import SHUNYA_DELIVER

__all__ = ["describe", "describe_step", "describe_fault"]

_HIDDEN = frozenset(("payload_fp", "probe_id", "trace_id", "trace_via"))


def _show(value: Any, refs: Mapping[str, str]) -> str:
    if isinstance(value, str):
        if value in refs:
            return refs[value]
        for original, ref in refs.items():
            if len(original) > 8 and original in value:
                value = value.replace(original, ref)
        return value
    return str(value)


def describe_fault(fault: CaseFault) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(fault.params.items()))
    return f"{fault.fault} on {fault.target}" + (f" ({params})" if params else "")


def describe_step(step: Step, refs: Mapping[str, str]) -> str:
    args = " ".join(f"{k}={_show(v, refs)}" for k, v in step.args.items() if k not in _HIDDEN)
    who = f"{refs.get(step.tenant or '', step.tenant or '-')} as {step.process}"
    seen = (f"{step.status or 'no answer'} ({step.outcome})" if step.f != SHUNYA_DELIVER
            else "the stub's own webhook, not in the run's history")
    return f"#{step.index:<6} {who:<28} {step.f:<20} {args}  [run: {seen}]"


def describe(case: Case) -> list[str]:
    """One line per group header, step and fault, in replay order."""
    lines = [f"invariant {case.invariant}; {len(case.steps)} request(s), {len(case.faults)} fault(s); "
             f"weakenings: {', '.join(case.weakenings) or 'none'}"]
    race = {k: v for k, v in sorted((case.stack.get("env") or {}).items()) if k.startswith("STORMPROOF_RACE")}
    if race:
        lines.append("app race window: " + ", ".join(f"{k}={v}" for k, v in race.items()))
    if case.source.get("run_app_workers"):
        lines.append(f"app workers: {case.stack.get('app_workers')} (the run had {case.source['run_app_workers']}; "
                     "it reproduced as often on this many)")
    stub = case.stack.get("shunya") or {}
    if stub.get("error_rate") == 1.0:
        lines.append(f"Shunya stub: every API call answered {stub.get('error_status', 503)} "
                     "(the run's task failed its last try so)")
    elif stub.get("error_first"):
        lines.append(f"Shunya stub: the first {stub['error_first']} API call(s) of each replay answered "
                     f"{stub.get('error_status', 503)} (the run's task failed as often before it succeeded)")
    for number, group in enumerate(case.groups, 1):
        faults = [describe_fault(f) for f in case.faults if group[0].group in f.groups]
        together = "sent together" if len(group) > 1 else "alone"
        lines.append(f"group {number} ({together}); under: {'; '.join(faults) or 'no fault'}")
        present = {s.index for s in group}
        for step in group:
            after = [f"#{i}" for i in step.after if i in present]
            notes = ([f"after {', '.join(after)}"] if after else []) + \
                ([_pause(step)] if step.pause_s else [])
            lines.append("  " + describe_step(step, case.refs) + (f"  ({'; '.join(notes)})" if notes else ""))
    return lines


def _pause(step: Step) -> str:
    """Why a step waits: the run's pause before a key was reused, or the stub's time to complete its job."""
    if step.f == SHUNYA_DELIVER:
        return f"{step.pause_s:g} s after its job was created, when the run's stub completed it"
    return f"{step.pause_s:g} s after its key's last answer"
