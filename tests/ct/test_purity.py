"""The CT foundations are pure: no network, database, command line or clock."""

from __future__ import annotations

import ast
from pathlib import Path

import certvigil.ct

PACKAGE = Path(certvigil.ct.__file__).parent
EDGES = ("probe", "store", "cli", "daemon", "alerts", "scan", "scan_workers", "demo", "config")
IO_MODULES = ("socket", "asyncio", "httpx", "sqlalchemy", "OpenSSL", "subprocess", "time")
CLOCK_CALLS = ("now", "utcnow", "today", "time", "monotonic")


def _offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if (parts[0] == "certvigil" and len(parts) > 1 and parts[1] in EDGES) or (
                parts[0] in IO_MODULES
            ):
                found.append(f"{path.name} imports {name}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_CALLS
        ):
            found.append(f"{path.name} calls .{node.func.attr}()")
    return found


def test_ct_modules_import_no_io_and_read_no_clock() -> None:
    """No module of certvigil.ct imports an edge or I/O library or reads the clock."""
    assert [o for path in sorted(PACKAGE.glob("*.py")) for o in _offences(path)] == []


def test_the_purity_check_can_fail(tmp_path: Path) -> None:
    """A module that imports httpx and reads the clock is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("import httpx\nfrom datetime import datetime\nx = datetime.now()\n")

    assert _offences(bad) == ["bad.py imports httpx", "bad.py calls .now()"]
