"""Imports every command module so that each registers its commands on ``app``."""

from __future__ import annotations

from certvigil.cli.app import register_commands

register_commands([])
