"""What a user can change about a scenario run from the command line, as given.

These are raw: ``build_plan`` checks them (naming the flag, e.g. ``--users``)
and resolves them with the scenario's own values into the ``RunPlan``. The
connection details of an external backend (``database_url``, ``jwt_secret``)
stay here and are never recorded in result.json's plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunOptions"]


@dataclass(frozen=True)
class RunOptions:
    duration_s: float | None = None
    users: int | None = None
    seed: int | None = None
    backend: str = "local"
    #: None: the scenario runs with every fix on; a tuple: exactly these fixes off.
    weakenings: tuple[str, ...] | None = None
    workers: int | None = None
    out_dir: Path = Path("reports")
    progress: bool = True
    quiesce_s: float = 30.0
    #: The user's own backend, started here by this command (``{host}``/``{port}`` replaced).
    app_command: tuple[str, ...] | None = None
    #: Or a backend already running: its URL and its database's URL (the "external" backend).
    app_url: str | None = None
    database_url: str | None = None
    jwt_secret: str | None = None

    @property
    def backend_name(self) -> str:
        return "external" if self.app_url else self.backend

    def replay_args(self) -> list[str]:
        """The options as command-line flags (for the replay command)."""
        args: list[str] = []
        if self.duration_s is not None:
            args += ["--duration", f"{self.duration_s:g}"]
        if self.users is not None:
            args += ["--users", str(self.users)]
        if self.workers is not None:
            args += ["--workers", str(self.workers)]
        if self.weakenings:
            args += ["--weaken", ",".join(self.weakenings)]
        if self.backend != "local":
            args += ["--backend", self.backend]
        if self.app_command:
            import shlex

            args += ["--app-command", shlex.quote(shlex.join(self.app_command))]
        if self.app_url:
            args += ["--app-url", self.app_url]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args
