"""Load: Locust users for every operation, run headless by the runner or as ``locustfile.py``.

``stormproof.harness.load.users`` imports Locust, which patches the standard library
with gevent: only load processes import it. This package's top level stays
light so that the runner can read :mod:`stormproof.harness.load.config` safely.
"""

from .config import ACTIONS, DEFAULT_WEIGHTS, LoadConfig, Stage, load_config

__all__ = ["ACTIONS", "DEFAULT_WEIGHTS", "LoadConfig", "Stage", "load_config"]
