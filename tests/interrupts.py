"""A child a test interrupts with SIGINT (Ctrl-C) must not inherit an ignored SIGINT.

A shell that starts a job in the background without job control (``cmd &`` in a script, as CI runners
and nohup do) sets SIGINT to ignored, and every child inherits that: Python then installs no
KeyboardInterrupt handler, and a test that sends Ctrl-C waits for an exit that never comes (2026-12-03,
the suite run as a background job: both Ctrl-C tests timed out). ``preexec_fn=sigint_default`` gives the
child the disposition a terminal would.
"""

from __future__ import annotations

import signal

__all__ = ["sigint_default"]


def sigint_default() -> None:
    """In the child before exec: SIGINT back to its default, so Python installs its Ctrl-C handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
