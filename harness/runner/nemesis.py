"""The nemesis of a run: the scenario's fault schedule, played against the stack's proxies and processes.

Network faults act on the stack's named proxies (``app``, ``postgres``,
``redis``, ``shunya``, ``webhook``); process faults on its services
(``postgres``, ``redis``, ``app``, ``shunya``, ``worker1``...) and on a
worker's pool process (``worker1-pool``: the process that runs tasks, so a
pause or kill lands on a task holding a lock). Every injection and heal is
recorded in the history; everything is healed at the end, however the run ends.

It plays the run plan's faults as they are: their targets were checked
against the backend when the plan was built, so a missing target here is a
bug, not a user's typo.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from ..faults.client import ToxiproxyClient
from ..faults.packages import standard_packages
from ..faults.schedule import FaultEvent, run_schedule
from ..history import HistoryRecorder
from ..plan import PROCESS_FAULTS, RunPlan

__all__ = ["Nemesis"]

log = logging.getLogger(__name__)


class Nemesis:
    """Runs a schedule in a thread; :meth:`stop` ends it early and waits for the heal."""

    def __init__(self, plan: RunPlan, stack: Any, recorder: HistoryRecorder) -> None:
        self.schedule = plan.schedule()
        self._client = ToxiproxyClient(stack.proxy_api_url) if stack.proxy_api_url else None
        processes = stack.fault_targets()
        self._packages = standard_packages(self._client, processes)
        missing = sorted({f.fault for f in self.schedule.faults} - set(self._packages))
        absent = sorted({f.target for f in self.schedule.faults if f.fault in PROCESS_FAULTS} - set(processes))
        if missing or absent:
            raise ValueError(f"the stack offers no fault package for {missing} or no process {absent}, "
                             "though the plan was checked against its backend (a harness bug)")
        self._recorder = recorder
        self._stop = threading.Event()
        self.active: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="nemesis", daemon=True)

    def _record(self, event: FaultEvent) -> None:
        key = (event.fault, event.target)
        if event.phase == "start":
            self.active[key] = event.params
        else:
            self.active.pop(key, None)
        self._recorder.fault(event.fault, event.phase, event.target, event.params)

    def _run(self) -> None:
        try:
            run_schedule(self.schedule, self._packages, self._record, stop=self._stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the runner as a run error
            log.exception("the nemesis failed")
            self.error = exc

    def start(self) -> None:
        if self.schedule.faults:
            self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._client is not None:
            self._client.close()
