"""Fault injection for Stormproof: a Toxiproxy-compatible proxy, its client,
process faults and fault schedules.

The server side (``python -m stormproof.harness.faults``) implements Toxiproxy's HTTP
API so any Toxiproxy client drives it and the real Toxiproxy can replace it.
"""

from stormproof.harness.faults.client import ProxyInfo, ToxicInfo, ToxiproxyClient, ToxiproxyError
from stormproof.harness.faults.packages import ProxyDownFault, ToxicFault, standard_packages
from stormproof.harness.faults.process import (
    KillFault,
    ManagedProcess,
    PauseFault,
    ProcessFaultError,
    kill_and_restart,
    pause,
    resume,
)
from stormproof.harness.faults.schedule import FaultEvent, FaultPackage, FaultSpec, Schedule, run_schedule
from stormproof.harness.faults.server import FaultProxyServer, RunningServer, main, serve_in_thread

__all__ = [
    "FaultEvent",
    "FaultPackage",
    "FaultProxyServer",
    "FaultSpec",
    "KillFault",
    "ManagedProcess",
    "PauseFault",
    "ProcessFaultError",
    "ProxyDownFault",
    "ProxyInfo",
    "RunningServer",
    "Schedule",
    "ToxicFault",
    "ToxicInfo",
    "ToxiproxyClient",
    "ToxiproxyError",
    "kill_and_restart",
    "main",
    "pause",
    "resume",
    "run_schedule",
    "serve_in_thread",
    "standard_packages",
]
