"""Stormproof's load, for plain Locust.

Against a stack started with ``stormproof up --json > stack.json``::

    STORMPROOF_STACK_JSON=stack.json locust -f locustfile.py --headless -u 50 -r 50 -t 30s

Every request is recorded as an invoke/completion pair in
``stormproof-history/load-<pid>.jsonl``. ``stormproof run SCENARIO`` uses the
same users with a scenario's mix, faults and invariants. Across machines, run
Locust's own master and workers with the same file and environment:
``locust -f locustfile.py --master`` and ``locust -f locustfile.py --worker
--master-host HOST``; each worker writes its own history file, and
``harness.history.merge_histories`` joins them.
"""

import harness.load.users as _users
from harness.load.users import StormUser  # noqa: F401 - Locust finds the user class here

if hasattr(_users, "StagesShape"):
    StagesShape = _users.StagesShape  # a load shape, when the configuration has stages
