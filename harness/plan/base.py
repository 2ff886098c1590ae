"""The base of every plan model: frozen, and strict about unknown fields.

Pydantic's own ``extra="forbid"`` error says "Extra inputs are not permitted"
without the names that would have been accepted; the check here runs first
and lists them, so ``params = { latncy = 40 }`` answers with ``latency``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator
from pydantic_core import PydanticCustomError

__all__ = ["PlanModel", "NonNegInt", "PosInt", "NonNegFloat", "PosFloat", "Name"]

NonNegInt = Annotated[StrictInt, Field(ge=0)]
PosInt = Annotated[StrictInt, Field(ge=1)]
# Floats accept TOML integers (``duration_s = 20``) but not strings or booleans.
NonNegFloat = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]
PosFloat = Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, strict=True)]


class PlanModel(BaseModel):
    """Frozen; an unknown field is an error that lists the allowed ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    #: Fields set by the loader, not written by users: accepted, but not offered in "allowed".
    _internal: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in cls.model_fields)
            if unknown:
                raise PydanticCustomError(
                    "unknown_field", "unknown field {field}; allowed: {allowed}",
                    {"field": unknown[0], "allowed": ", ".join(sorted(set(cls.model_fields) - cls._internal)) or "none"},
                )
        return data
