"""Escaping for HTML and SVG: the one function every page and chart uses for outside text.

History values are what a server under test answered, possibly broken or
hostile, so every string that reaches a page goes through ``esc``: markup
is escaped (attributes too) and control characters, which no page needs and
which XML-based consumers reject, are dropped.
"""

from __future__ import annotations

import re
from html import escape

__all__ = ["esc", "printable", "slug"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


def esc(value: object) -> str:
    """HTML-escape any value for text or a quoted attribute, dropping control characters."""
    return escape(_CONTROL.sub("", str(value)), quote=True)


def printable(value: object) -> object:
    """Jinja's ``finalize``: drop control characters from outside text before autoescaping.

    Markup (charts drawn by ``charts.py``, which escape their own text) passes
    as is; every other string loses what ``esc`` would drop, so a page built
    by the template escapes exactly like one built with ``esc``.
    """
    if isinstance(value, str) and not hasattr(value, "__html__"):
        return _CONTROL.sub("", value)
    return value


def slug(text: str) -> str:
    """An id-safe form of a name, for anchors."""
    return _SLUG.sub("-", text).strip("-") or "x"
