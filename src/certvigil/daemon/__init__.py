"""The monitoring daemon: scheduled scans recorded in the store, alerts delivered once."""

from __future__ import annotations

from certvigil.daemon.logs import configure_logging
from certvigil.daemon.runner import CycleResult, Daemon, expiry_thresholds
from certvigil.daemon.schedule import Schedule, sleep_until_s

__all__ = [
    "CycleResult",
    "Daemon",
    "Schedule",
    "configure_logging",
    "expiry_thresholds",
    "sleep_until_s",
]
