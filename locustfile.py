"""Stormproof's load, for plain Locust.

Against a stack started with ``stormproof up --json-file stack.json``::

    STORMPROOF_STACK_JSON=stack.json locust -f locustfile.py --headless -u 50 -r 50 -t 30s

Every request is recorded as an invoke/completion pair in
``stormproof-history/load-<pid>.jsonl``. ``stormproof run SCENARIO`` uses the
same users with a scenario's mix, faults and invariants. Across machines, run
Locust's own master and workers with the same file and environment:
``locust -f locustfile.py --master`` and ``locust -f locustfile.py --worker
--master-host HOST``; the workers send their histories to the master, on
its clock (``stormproof.harness.load.distributed``), and ``stormproof check`` on the
master's ``stormproof-history`` judges the one history.
"""

import stormproof.harness.load.users as _users
from stormproof.harness.load.users import StormUser  # noqa: F401 - Locust finds the user class here

import stormproof.harness.load.distributed  # noqa: E402,F401 - master/worker: workers send their history to the master

if hasattr(_users, "StagesShape"):
    StagesShape = _users.StagesShape  # a load shape, when the configuration has stages
