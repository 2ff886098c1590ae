"""From a violation to a reproducer: the few requests that break an invariant, as a test.

``stormproof reproduce RUN_DIR [--violation N]`` selects the requests a
violation names and their preconditions (:mod:`.select`), replays them on a
fresh stack in the run's groups under the run's faults (:mod:`.replay`),
measures a reproduction rate (:mod:`.repeat`), shrinks requests and faults by
delta debugging (:mod:`.shrink`) and writes a pytest file (:mod:`.pytest_file`)
and the readable steps (:mod:`.steps`). :mod:`.command` ties them together.
"""

from .case import Case, CaseFault, Step, case_from_dict
from .command import ReproduceOptions, reproduce, reproduce_command
from .repeat import Rate, measure
from .replay import Attempt, Replayer, ReplayError, replayer_on
from .select import SelectionError, load_run, numbered_violations, select_case
from .shrink import ShrinkResult, shrink
from .steps import describe

__all__ = [
    "Attempt",
    "Case",
    "CaseFault",
    "Rate",
    "ReplayError",
    "Replayer",
    "ReproduceOptions",
    "SelectionError",
    "ShrinkResult",
    "Step",
    "case_from_dict",
    "describe",
    "load_run",
    "measure",
    "numbered_violations",
    "replayer_on",
    "reproduce",
    "reproduce_command",
    "select_case",
    "shrink",
]
