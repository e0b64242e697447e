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
    """
    gc.disable()
    from certvigil.cli import app as application

    application.register_commands(argv if argv is not None else sys.argv[1:])
    gc.freeze()
    gc.enable()
    application.main(argv)


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        from certvigil.cli.app import app

        return app
    raise AttributeError(f"module 'certvigil.cli' has no attribute {name!r}")
