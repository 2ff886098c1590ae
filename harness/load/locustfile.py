"""The locustfile the runner hands to Locust (the top-level ``locustfile.py`` re-exports it)."""

import stormproof.harness.load.users as _users
from stormproof.harness.load.users import StormUser  # noqa: F401 - Locust finds the user class here

if hasattr(_users, "StagesShape"):
    StagesShape = _users.StagesShape  # a load shape, when the configuration has stages
