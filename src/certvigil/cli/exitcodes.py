"""Exit codes, the same for every command (Nagios 0-3, sysexits 64, 74, 75; 128 + signal)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a certvigil process tells its caller."""

    OK = 0
    """Nothing to act on."""
    WARNING = 1
    """At least one warning finding, no critical one."""
    CRITICAL = 2
    """At least one critical finding."""
    UNKNOWN = 3
    """Some targets could not be checked (and nothing critical was found)."""
    USAGE = 64
    """Usage or configuration error (EX_USAGE)."""
    DATABASE = 74
    """The database failed: not a database, unreadable, locked, unreachable (EX_IOERR)."""
    DELIVERY_FAILING = 75
    """An alert notification could not be delivered and is still failing (EX_TEMPFAIL):
    ``run --once`` at exit, ``alerts test``, ``alerts deliveries``."""
    INTERRUPTED = 130
    """Stopped by SIGINT (Ctrl-C), 128 + 2 as shells report it; what finished was written."""
    TERMINATED = 143
    """Stopped by SIGTERM, 128 + 15; what finished was written."""
