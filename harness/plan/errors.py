"""The one error of a bad run plan, and the translation of pydantic's errors into it.

A user who mistypes a scenario field or a flag must learn, in one line, which
file, which field and which values would have been accepted: the message is
``<file>: <field path>: <what is wrong>; allowed: ...``. The CLI prints it and
exits 2 before any service starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

__all__ = ["PlanError", "field_path", "from_validation"]


class PlanError(ValueError):
    """A scenario file or a command-line option is invalid; the message names the file and the field."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source, self.path, self.message = source, path, message
        super().__init__(": ".join(part for part in (source, path, message) if part))


def field_path(loc: Iterable[Any], drop: frozenset[str] = frozenset()) -> str:
    """``("faults", 0, "params", "latency")`` -> ``faults[0].params.latency``.

    ``drop`` names the tags of discriminated unions, which pydantic puts in the
    location but the user never wrote.
    """
    out = ""
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not (part in drop and isinstance(previous, int)):
            out += f".{part}" if out else str(part)
        previous = part
    return out


def from_validation(exc: ValidationError, source: str, *, drop: frozenset[str] = frozenset(),
                    prefix: str = "") -> PlanError:
    """The first error of ``exc`` as a :class:`PlanError` (one line, the first problem: fix, rerun)."""
    error = exc.errors(include_url=False)[0]
    path = field_path(error["loc"], drop)
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "unknown_field":
        path = f"{path}.{ctx['field']}" if path else str(ctx["field"])
        message = f"unknown field; allowed: {ctx['allowed']}"
    elif kind == "union_tag_invalid":
        path = f"{path}.{ctx['discriminator'].strip(chr(39))}"
        message = f"unknown {ctx['tag']!r}; allowed: {ctx['expected_tags']}"
    elif kind == "union_tag_not_found":
        path = f"{path}.{ctx['discriminator'].strip(chr(39))}"
        message = "missing"
    elif kind == "missing":
        message = "missing (required)"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        if kind not in {"value_error", "plan_error"}:
            message += f", got {error.get('input')!r}"
    if prefix:
        path = f"{prefix}.{path}" if path else prefix
    return PlanError(source, path, message)
