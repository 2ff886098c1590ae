"""Turning an HTTP answer into a completion type, with Jepsen's semantics.

``ok`` means the operation took effect, ``fail`` that it certainly did not,
``info`` that we cannot know. A checker may rely on ``fail`` meaning "no
effect", so only the 4xx answers the API contract (docs/API.md) defines as
having no effect are ``fail``; everything else that is not 2xx (timeouts,
resets, 5xx, other statuses, any exception) is ``info``, never ``fail``.
"""

from __future__ import annotations

from stormproof.harness.history.op import OpType

__all__ = ["NO_EFFECT_STATUSES", "classify"]

#: 4xx answers the API defines as "the request had no effect".
NO_EFFECT_STATUSES: frozenset[int] = frozenset((400, 401, 403, 404, 409, 413, 415, 422, 429))


def classify(status: int | None, error: object | None = None) -> OpType:
    """The completion type for an HTTP ``status`` (None: no answer) or an ``error``.

    An exception, even with a status, leaves the outcome unknown: the body may
    not have been read, or the client may have given up half-way.
    """
    if error is not None or status is None:
        return "info"
    if 200 <= status < 300:
        return "ok"
    if status in NO_EFFECT_STATUSES:
        return "fail"
    return "info"
