"""The ``certvigil`` command line; each sub-command lives in its own module."""

from __future__ import annotations

from certvigil.cli.app import app, main

__all__ = ["app", "main"]
