"""What a user can change about a scenario run from the command line (defined with the plan it feeds)."""

from __future__ import annotations

from ..plan.options import RunOptions

__all__ = ["RunOptions"]
