"""The scheduler of distributed scans starts without what only scanning and delivering need.

Its start-up is most of the CPU a ``run --once --distributed`` round costs beyond the
workers' (docs/scaling.md): importing the scanner (with the grader and the TLS probe),
httpx and dnspython cost it a fifth of a second more for nothing it does.
"""

from __future__ import annotations

import subprocess
import sys

NOT_AT_START = (
    "certvigil.scan.scanner",
    "certvigil.probe.tls",
    "certvigil.analysis.judge",
    "certvigil.analysis.grade",
    "httpx",
    "dns.zone",
)


def _loaded_at_start(modules: str) -> set[str]:
    probe = (
        "import sys\n"
        f"import {modules}\n"
        f"print(','.join(m for m in {NOT_AT_START!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return {m for m in done.stdout.strip().split(",") if m}


def test_the_scheduler_does_not_import_the_scanner_httpx_or_dnspython() -> None:
    """What ``certvigil run --distributed`` imports loads none of them."""
    assert _loaded_at_start("certvigil.cli.run_cmd, certvigil.distributed.scheduler") == set()


def test_the_check_sees_a_module_that_is_imported() -> None:
    """The same check names them when they are imported (it can fail)."""
    assert _loaded_at_start("certvigil.scan.scanner, certvigil.alerts.delivery, httpx") >= {
        "certvigil.scan.scanner",
        "certvigil.probe.tls",
        "certvigil.analysis.judge",
        "httpx",
    }
