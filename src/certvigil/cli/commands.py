"""Imports every command module so that each registers its commands on ``app``."""

from __future__ import annotations

import certvigil.cli.alerts_cmd
import certvigil.cli.cert_cmd
import certvigil.cli.changes_cmd
import certvigil.cli.config_cmd
import certvigil.cli.demo_cmd
import certvigil.cli.grade_cmd
import certvigil.cli.inventory_cmd
import certvigil.cli.run_cmd
import certvigil.cli.scan_cmd  # noqa: F401
