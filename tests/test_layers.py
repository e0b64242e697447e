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


# Every edge package and what it must not reach: the data flows targets -> scan -> probe
# -> observed -> analysis -> store / alerts / output -> cli, with daemon driving scan,
# store and alerts. A package may use the ones before it in that flow, never the
# command line, and the network edge never reaches the database edge (or back).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "targets": ("probe", "scan", "store", "alerts", "daemon", "cli", "output", "config"),
    "probe": ("scan", "store", "alerts", "daemon", "cli", "output", "config", "sqlalchemy"),
    "scan": ("store", "alerts", "daemon", "cli", "output", "config", "sqlalchemy"),
    "store": ("probe", "scan", "alerts", "daemon", "cli", "output", "config", "httpx"),
    "alerts": ("probe", "scan", "daemon", "cli", "config", "sqlalchemy"),
    "config": ("probe", "scan", "store", "alerts", "daemon", "cli", "output", "sqlalchemy"),
    "files": ("probe", "scan", "store", "alerts", "daemon", "cli", "output", "sqlalchemy"),
    "output": ("probe", "scan", "daemon", "alerts", "config", "httpx", "sqlalchemy"),
    "daemon": ("cli",),
    # integrations read the store's state for /metrics and exports, never probe or alert.
    "integrations": ("probe", "scan", "alerts", "daemon", "cli", "sqlalchemy"),
}
"""Per package, the certvigil packages and outside libraries its modules must not import
(imports under ``if TYPE_CHECKING:`` are annotations, not uses, and are not counted)."""


def _runtime_imports(text: str) -> set[str]:
    tree = ast.parse(text)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _reaches(root: Path, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        for name in sorted(_runtime_imports(path.read_text(encoding="utf-8"))):
            parts = name.split(".")
            inner = parts[0] == "certvigil" and len(parts) > 1 and parts[1] in forbidden
            if inner or parts[0] in forbidden:
                bad.append(f"{path.relative_to(root)} imports {name}")
    return bad


def test_every_edge_package_keeps_to_its_layer() -> None:
    """No edge package imports a package its layer must not reach (the table above)."""
    problems = {
        package: found
        for package, forbidden in FORBIDDEN.items()
        if (found := _reaches(PACKAGE / package, forbidden))
    }
    assert problems == {}


def test_the_alert_engine_holds_no_sql() -> None:
    """alerts/ runs no SQL of its own: its queries live in store/ (the table above says
    alerts imports no sqlalchemy; this checks the check sees a runtime import)."""
    assert _reaches(PACKAGE / "alerts", ("sqlalchemy",)) == []


def test_the_layer_check_ignores_annotations_only(tmp_path: Path) -> None:
    """An import under TYPE_CHECKING is not a use; the same import at run time is."""
    (tmp_path / "typed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sqlalchemy import X\n"
    )
    (tmp_path / "used.py").write_text("from certvigil.store import Store\n")
    assert _reaches(tmp_path, ("sqlalchemy", "store")) == ["used.py imports certvigil.store"]
