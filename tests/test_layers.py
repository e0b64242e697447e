"""The layering rule of docs/architecture.md holds: analysis is pure."""

import ast
from pathlib import Path

import certvigil

PACKAGE = Path(certvigil.__file__).parent
# Modules that do I/O or own an outside system; pure analysis must not reach them.
EDGES = ("probe", "store", "cli", "daemon", "alerts", "scan", "demo", "config", "files")
IO_MODULES = ("socket", "asyncio", "httpx", "sqlalchemy", "OpenSSL", "subprocess")


def _imports(text: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _offending(root: Path) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        for name in sorted(_imports(path.read_text(encoding="utf-8"))):
            parts = name.split(".")
            edge = parts[0] == "certvigil" and len(parts) > 1 and parts[1] in EDGES
            if edge or parts[0] in IO_MODULES:
                bad.append(f"{path.relative_to(root)} imports {name}")
    return bad


def test_analysis_imports_no_network_storage_or_cli_code() -> None:
    """No module under analysis/ imports probe, store, CLI or network/database libraries."""
    assert _offending(PACKAGE / "analysis") == []


def test_shared_data_modules_are_pure_too() -> None:
    """observed/ and tls/, which analysis reads, import no I/O either."""
    assert _offending(PACKAGE / "observed") == []
    assert _offending(PACKAGE / "tls") == []


def test_the_check_reports_a_violation(tmp_path: Path) -> None:
    """A module importing the probe and a socket library is reported (the check can fail)."""
    (tmp_path / "bad.py").write_text(
        "from certvigil.probe.tls import probe_tls\n"
        "import socket\n"
        "from certvigil.tls import records\n"
    )

    assert _offending(tmp_path) == [
        "bad.py imports certvigil.probe.tls",
        "bad.py imports socket",
    ]
