"""Errors raised while bringing services up.

Every error here names the cause and the fix, because the person reading it is
usually a newcomer running the README's first command.
"""

from __future__ import annotations

__all__ = ["StackError", "MissingBinaryError", "ServiceStartError"]


class StackError(RuntimeError):
    """Base class: a service of the stack could not be provided."""


class MissingBinaryError(StackError):
    """A server binary is not installed; the message names the package."""

    def __init__(self, binary: str, package: str, searched: list[str]) -> None:
        self.binary = binary
        self.package = package
        where = ", ".join(searched) if searched else "PATH"
        super().__init__(
            f"{binary!r} was not found (searched: {where}). "
            f"Install it with: apt-get install -y {package}"
        )


class ServiceStartError(StackError):
    """A service was started but did not become ready; the message quotes its log."""

    def __init__(self, service: str, reason: str, log_tail: str = "") -> None:
        self.service = service
        self.log_tail = log_tail
        msg = f"{service} did not start: {reason}"
        if log_tail:
            msg += f"\n--- last lines of its log ---\n{log_tail}"
        super().__init__(msg)
