"""An ephemeral PostgreSQL cluster: initdb into a temp dir, a free loopback port, fsync off.

Ready in about a second. ``fsync`` is off (the OS cache survives a killed
server, and nothing here must survive a power cut), but ``synchronous_commit``
stays on: with it off, a kill -9 fault would lose acknowledged commits and
make the harness blame the app for the database's setting. Databases for tests are cloned from a template with
``CREATE DATABASE ... TEMPLATE`` (about 0.15 s), so a migrated schema is built
once per session. When run as root, the cluster runs as an unprivileged user,
because ``initdb`` and ``postgres`` refuse root.

A cluster may be *prepared* (:class:`Prepared`: a migrated schema to clone
databases from). The first such cluster runs ``initdb`` and the preparation,
stops cleanly and leaves a copy of its data directory in a cache
(``STORMPROOF_CACHE_DIR``, else ``~/.cache/stormproof``), keyed by the server's
version, the user it runs as, ``initdb``'s options and the preparation's key
(a copy is renamed into place whole, so a killed copy never counts); later clusters start
from a copy of it. ``initdb`` and a migration cost about 1.7 s of CPU, which a
replay's written test paid on every run on a 2-core machine. The server
started on the copy is as fresh as one after ``initdb``: its own port, socket
and process; only the files it starts from are the same.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .binaries import find_postgres_binary
from .errors import ServiceStartError
from .ports import free_port, start_on_a_free_port, wait_until
from .process import ManagedProcess, _child_setup, unprivileged_user
from .service import Service

__all__ = ["EphemeralPostgres", "Prepared"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """What a fresh cluster is given once (``prepare``, run on the started server), then copied.

    ``key`` must change whenever what ``prepare`` makes would change (a digest of the migrations).
    """

    key: str
    prepare: Callable[["EphemeralPostgres"], None]

_CONF = """
listen_addresses = '{host}'
port = {port}
unix_socket_directories = '{socket_dir}'
fsync = off
full_page_writes = off
max_connections = {max_connections}
shared_buffers = 64MB
log_min_messages = warning
log_line_prefix = '%m [%p] '
"""


class EphemeralPostgres(Service):
    """A throwaway PostgreSQL server. Use as a context manager or call start()/stop()."""

    kind = "pg"

    superuser = "postgres"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        base_dir: Path | None = None,
        max_connections: int = 300,
        start_timeout: float = 30.0,
        prepared: Prepared | None = None,
    ) -> None:
        super().__init__(base_dir=base_dir)
        self.prepared = prepared
        self.host = host
        self.port = port or free_port(host)
        self._port_is_ours = port is None
        self.max_connections = max_connections
        self.start_timeout = start_timeout
        self._user = unprivileged_user()

    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "pgdata"

    def url(self, dbname: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        """A SQLAlchemy URL; ``driver="postgresql"`` gives a plain libpq URL."""
        return f"{driver}://{self.superuser}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.superuser} dbname={dbname}"

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "EphemeralPostgres":
        self._run_dir()
        cache = self._cache_dir()
        if cache is not None and cache.is_dir():
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            _copy_tree(cache, self.data_dir)
            self._configure_and_launch()
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            os.chown(self.data_dir, self._user.pw_uid, self._user.pw_gid)
        self._initdb()
        self._configure_and_launch()
        if self.prepared is not None:
            self.prepared.prepare(self)
            if cache is not None:
                self._fill_cache(cache)
        return self

    def starts_from_copy(self) -> bool:
        """Whether :meth:`start` will copy a prepared cluster (complete at once) rather than prepare one.

        A cluster prepared here makes its databases while it serves: a client must not use them before
        :meth:`start` returns. A copy has them whole from its first connection.
        """
        cache = self._cache_dir()
        return cache is not None and cache.is_dir()

    def _initdb_options(self) -> list[str]:
        """What ``initdb`` is given besides the data directory (part of a prepared cluster's cache key)."""
        return ["-U", self.superuser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]

    def _cache_dir(self) -> Path | None:
        """Where a prepared cluster's data directory is kept (None: not prepared, or no usable cache)."""
        if self.prepared is None:
            return None
        root = Path(os.environ.get("STORMPROOF_CACHE_DIR") or Path.home() / ".cache" / "stormproof")
        version = subprocess.run([find_postgres_binary("postgres"), "--version"], capture_output=True,
                                 text=True, check=False).stdout.strip()
        user = self._user.pw_name if self._user is not None else str(os.geteuid())
        options = " ".join(self._initdb_options())
        digest = hashlib.sha256(f"{version}\0{user}\0{options}\0{self.prepared.key}".encode()).hexdigest()[:16]
        return root / "postgres" / digest

    def _fill_cache(self, cache: Path) -> None:
        """Stop cleanly, copy the data directory into the cache (atomically), start again."""
        assert self.process is not None
        self.process.stop()
        partial = cache.with_name(f"{cache.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            _copy_tree(self.data_dir, partial)
            (partial / "postmaster.pid").unlink(missing_ok=True)
            os.rename(partial, cache)
        except OSError as exc:  # another process filled it first, or no cache: the next start prepares again
            log.info("postgres: prepared cluster not cached at %s: %s", cache, exc)
            shutil.rmtree(partial, ignore_errors=True)
        self._launch()

    def _configure_and_launch(self) -> None:
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                _CONF.format(
                    host=self.host,
                    port=self.port,
                    socket_dir=self.data_dir,
                    max_connections=self.max_connections,
                )
            )
        self.process = ManagedProcess(
            "postgres",
            [find_postgres_binary("postgres"), "-D", str(self.data_dir)],
            log_path=self.base_dir / "postgres.log",
            user=self._user,
            stop_signal=signal.SIGINT,  # fast shutdown: do not wait for clients
            env=_clean_env(),
        )

        def repick() -> None:
            # The later ``port`` line of postgresql.conf wins over the earlier one.
            self.port = free_port(self.host)
            with conf.open("a") as fh:
                fh.write(f"port = {self.port}\n")

        start_on_a_free_port(self._launch, repick, port_is_ours=self._port_is_ours)

    def _initdb(self) -> None:
        argv = [find_postgres_binary("initdb"), "-D", str(self.data_dir), *self._initdb_options()]
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=_child_setup(self._user),  # noqa: PLW1509
            env=_clean_env(),
            cwd=self.data_dir,
        )
        if result.returncode != 0:
            reason = f"initdb exited with {result.returncode}"
            if "Permission denied" in result.stderr and self._user is not None:
                reason += (
                    f"; it runs as user {self._user.pw_name!r}, who cannot reach {self.data_dir}: "
                    "set STORMPROOF_TMPDIR to a directory every user can traverse (e.g. /tmp)"
                )
            raise ServiceStartError("PostgreSQL", reason, result.stderr[-2000:])

    def _launch(self) -> None:
        assert self.process is not None
        started = time.monotonic()
        self.process.start()
        if not wait_until(self._accepts, timeout=self.start_timeout, alive=self.process.running):
            tail = self.process.log_tail()
            self.process.kill()
            raise ServiceStartError(
                "PostgreSQL",
                f"not accepting connections on {self.host}:{self.port} "
                f"after {time.monotonic() - started:.1f}s",
                tail,
            )

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(self.dsn(), connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    def restart(self) -> None:
        """Stop (fast shutdown) and start again on the same port and data: the restart fault."""
        assert self.process is not None
        self.process.stop()
        self._launch()


    # -- databases -----------------------------------------------------------
    def execute(self, sql: str, dbname: str = "postgres") -> None:
        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create ``name`` (optionally cloned from ``template``); return its SQLAlchemy URL."""
        ident = psycopg.sql.Identifier(name)
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            if template:
                conn.execute(
                    psycopg.sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        ident, psycopg.sql.Identifier(template)
                    )
                )
            else:
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(ident))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)
                )
            )


def _copy_tree(source: Path, target: Path) -> None:
    """``cp -a``: owners and modes kept (a data directory must stay its server user's, mode 0700)."""
    result = subprocess.run(["cp", "-a", str(source), str(target)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OSError(f"cp -a {source} {target}: {result.stderr.strip()}")


def _clean_env() -> dict[str, str]:
    """The environment for PostgreSQL: no PG* variables of the caller leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C")
    return env
