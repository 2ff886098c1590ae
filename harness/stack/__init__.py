"""Bringing services up and down: ephemeral PostgreSQL and Redis as local processes.

Everything a stack starts goes through :class:`ManagedProcess`, so that cleanup
on exit, exceptions, Ctrl-C and harness death is handled in one place.
"""

from .app import ReferenceAppProcess
from .binaries import find_postgres_binary, find_redis_server
from .errors import MissingBinaryError, ServiceStartError, StackError
from .local import LocalStack, StackConfig
from .proxy import LINKS, FaultProxyProcess
from .recipe import Recipe, Targets, recipe, targets_for
from .ports import free_port, wait_for_port, wait_until
from .postgres import EphemeralPostgres
from .process import ManagedProcess, stop_all, unprivileged_user
from .redis import EphemeralRedis
from .shunya import ShunyaStubProcess
from .worker import CeleryWorkerProcess
from .rundir import make_run_dir, remove_run_dir, sweep_stale_run_dirs

__all__ = [
    "FaultProxyProcess",
    "LINKS",
    "LocalStack",
    "StackConfig",
    "CeleryWorkerProcess",
    "ShunyaStubProcess",
    "EphemeralPostgres",
    "EphemeralRedis",
    "ManagedProcess",
    "ReferenceAppProcess",
    "Recipe",
    "Targets",
    "recipe",
    "targets_for",
    "MissingBinaryError",
    "ServiceStartError",
    "StackError",
    "find_postgres_binary",
    "find_redis_server",
    "free_port",
    "make_run_dir",
    "remove_run_dir",
    "stop_all",
    "sweep_stale_run_dirs",
    "unprivileged_user",
    "wait_for_port",
    "wait_until",
]
