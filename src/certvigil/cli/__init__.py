"""The ``certvigil`` command line; each sub-command lives in its own module."""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run the command line and exit with a documented exit code.

    Start-up imports several hundred modules and allocates little garbage while doing
    so; the cyclic garbage collector, left on, would walk the growing heap again and
    again for nothing (about a fifth of a scan's start-up). It is off until the
    command's modules are imported, and what they built is then frozen out of later
    collections.

    The youngest generation is then collected every 10,000 allocations rather than
    700 (``GC_THRESHOLDS``): a scan or a worker allocates a few objects per endpoint
    and frees nearly all of them by reference counting, so most collections found
    nothing. Over 10,000 loopback endpoints this took the collector's CPU from
    0.57-0.65 s to 0.27 s in ``scan`` and from 0.96 s to 0.28-0.31 s in a
    distributed worker; a garbage cycle still goes at the next young collection.
    """
    gc.disable()
    from certvigil.cli import app as application

    application.register_commands(argv if argv is not None else sys.argv[1:])
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.enable()
    application.main(argv)


GC_THRESHOLDS = (10_000, 20, 20)
"""The collector's thresholds for a command's run (``gc.set_threshold``)."""


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        from certvigil.cli.app import app

        return app
    raise AttributeError(f"module 'certvigil.cli' has no attribute {name!r}")
