"""CPU seconds of processes from ``/proc``: one process, a process and its children,
a PostgreSQL server with its backends (shared by the benchmarks that start them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class _HasDataDirectory(Protocol):
    @property
    def data_directory(self) -> Path | None: ...


def process_cpu_s(pid: int, *, with_reaped: bool = False) -> float:
    """User and system CPU seconds of a live process (0 once it is gone); with
    ``with_reaped``, also those of the children it has waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14-17 of stat: utime, stime, cutime, cstime (after the name: index 11-14).
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """The live children of a process (every thread's)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process, the children it reaped and every live descendant."""
    return process_cpu_s(pid, with_reaped=True) + sum(tree_cpu_s(c) for c in children(pid))


def postgres_cpu_s(pg: _HasDataDirectory) -> float:
    """CPU seconds of a whole PostgreSQL server: the postmaster, the backends it
    reaped, the live ones."""
    data = pg.data_directory
    if data is None:
        return 0.0
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    return process_cpu_s(postmaster, with_reaped=True) + sum(
        process_cpu_s(child) for child in children(postmaster)
    )
