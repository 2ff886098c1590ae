"""The hardened reference backend of the production-hardening plan.

A multi-tenant FastAPI service (companies, users and reps, appointments,
recording sessions, calls and their Shunya analyses) with every fix of the
plan in place and each fix switchable off by name (see :mod:`stormproof.reference_app.weaken`),
so that the harness can prove it notices a missing fix.
"""

__all__ = ["create_app"]


def create_app(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Build the ASGI app (imported lazily so that ``stormproof.reference_app.settings`` stays light)."""
    from .main import create_app as _create_app

    return _create_app(*args, **kwargs)
