"""Tables fit 80, 100, 120 and 200 columns without breaking an endpoint, a date or a number.

The demo's endpoints (long names with their ``(sni …)`` notes, a STARTTLS service, a
closed port) are scanned for real on loopback, and recorded by one daemon cycle for
the store commands; each table is then printed at each width.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.cells import cell_len

from certvigil.analysis.model import EndpointReport
from certvigil.demo.endpoints import DemoLab, running_demo_lab
from certvigil.files.truststore import load_trust_store
from certvigil.output.summary import days_remaining
from certvigil.output.table import render_table
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan
from tests.cli.scan_lab import Result, run_cli, run_process

WIDTHS = (80, 100, 120, 200)
_FRAME = "┏┃┡│└━┳╇┩┓"
_HOST_PORT = re.compile(r"127\.0\.0\.1:\d+(?![\d…])")  # a clipped summary may cut one


@dataclass(frozen=True, slots=True)
class Scanned:
    """The running demo, its reports, and a database one daemon cycle recorded them in."""

    lab: DemoLab
    reports: list[EndpointReport]
    database: Path
    cycle: Result


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scanned]:
    """Scan the demo endpoints once, and record them once with ``run --once``."""
    directory = tmp_path_factory.mktemp("widths")
    with running_demo_lab() as lab:
        trust = load_trust_store(ca_files=(lab.ca_file,), use_system=False, include_default=False)
        options = ScanOptions(retries=0, connect_timeout_s=2, handshake_timeout_s=3)
        reports = scan(lab.targets, options=options, trust=trust)
        (directory / "root.pem").write_bytes(lab.ca_file.read_bytes())
        lines = [
            "database_url: inventory.db",
            "scan: {interval: 1h, jitter: 0, timeout: 3s}",
            "trust: {public: false, ca_files: [root.pem]}",
            "targets:",
        ]
        for target in lab.targets:
            lines += [f"  - host: {target.host}", f"    port: {target.port}"]
            lines += [f"    sni: {target.sni}", "    tags: [demo, width-check]"]
            if target.starttls is not None:
                lines.append(f"    starttls: {target.starttls.value}")
        config = directory / "certvigil.yaml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cycle = run_process("run", "--config", str(config), "--once")
        yield Scanned(lab=lab, reports=reports, database=directory / "inventory.db", cycle=cycle)


def table_lines(text: str) -> list[str]:
    """The lines that belong to a table (framed, or with column rules); all for no frame."""
    lines = text.splitlines()
    if not any(c in _FRAME for line in lines for c in line):
        return lines
    return [line for line in lines if line and any(c in _FRAME for c in line)]


def assert_fits(text: str, width: int) -> None:
    """Every table line is at most ``width`` cells wide."""
    too_wide = [line for line in table_lines(text) if cell_len(line) > width]
    assert too_wide == [], f"{len(too_wide)} lines wider than {width}: {too_wide[:2]}"


def assert_headers_whole(text: str, headers: set[str]) -> list[str]:
    """The header line holds whole headers only; returns those shown."""
    header_line = next(line for line in table_lines(text) if any(h in line for h in headers))
    rule = r"[┃│]" if any(c in _FRAME for c in header_line) else r"\s{2,}"
    shown = [cell.strip() for cell in re.split(rule, header_line) if cell.strip()]
    assert set(shown) <= headers, f"broken headers: {set(shown) - headers}"
    return shown


@pytest.mark.parametrize("width", WIDTHS)
def test_scan_table_fits_and_never_breaks_an_endpoint_or_a_number(
    scanned: Scanned, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At each width the table fits; each host:port, date and day count is whole."""
    monkeypatch.setenv("COLUMNS", str(width))
    stream = io.StringIO()
    render_table(scanned.reports, stream, details=False)
    text = stream.getvalue()
    assert_fits(text, width)
    headers = {"Endpoint", "Subject", "Issuer", "Expires (UTC)", "Expires", "Days", "Verdict"}
    shown = assert_headers_whole(text, headers | {"Findings"})
    assert {"Endpoint", "Days", "Verdict"} <= set(shown)
    rows = table_lines(text)
    for report in scanned.reports:
        address = f"{report.target.host}:{report.target.port}"
        (row,) = [line for line in rows if address in line]
        assert _HOST_PORT.findall(row) == [address]
        if report.leaf is not None:
            day_count = str(days_remaining(report.leaf.not_after_utc, now=report.evaluated_at_utc))
            assert f" {day_count} │" in row
            if "Expires" in " ".join(shown):
                assert report.leaf.not_after_utc.strftime("%Y-%m-%d") in row
    if width == 200:
        assert set(shown) == headers - {"Expires"} | {"Findings"}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    ("command", "headers", "kept"),
    [
        (
            ["inventory"],
            {"expires (UTC)", "expires", "days", "endpoint", "pos", "subject", "issuer"}
            | {"key", "sha256", "tags", "grade", "revocation"},
            {"days", "endpoint"},
        ),
        (
            ["alerts", "list", "--state", "all"],
            {"ID", "STATE", "SEVERITY", "KIND", "ENDPOINT", "OPENED", "SUMMARY", "SENT"},
            {"ID", "ENDPOINT", "SUMMARY"},
        ),
    ],
)
def test_store_tables_fit(
    scanned: Scanned,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    width: int,
    command: list[str],
    headers: set[str],
    kept: set[str],
) -> None:
    """inventory and alerts list fit each width, keeping their essential columns whole."""
    assert scanned.database.exists(), scanned.cycle.stderr
    monkeypatch.setenv("COLUMNS", str(width))
    result = run_cli(capsys, *command, "--db", str(scanned.database))
    assert "Traceback" not in result.stderr
    assert_fits(result.stdout, width)
    shown = assert_headers_whole(result.stdout, headers)
    assert kept <= set(shown)
    addresses = {f"{t.host}:{t.port}" for t in scanned.lab.targets}
    found = set(_HOST_PORT.findall(result.stdout))
    assert found and found <= addresses
    if width == 200:
        assert len(shown) >= len(headers) - 2  # only the short forms' twins are missing


@pytest.mark.parametrize("width", WIDTHS)
def test_history_tables_fit(
    scanned: Scanned,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    width: int,
) -> None:
    """Each endpoint's history table fits each width, its time column whole."""
    monkeypatch.setenv("COLUMNS", str(width))
    target = scanned.lab.targets[0]
    result = run_cli(
        capsys, "history", f"{target.host}:{target.port}", "--db", str(scanned.database)
    )
    assert result.code in {0, 1, 2}, result.stderr
    assert_fits(result.stdout, width)
    headers = {"observed (UTC)", "observed", "status", "protocol", "leaf", "issuer", "expires"}
    headers |= {"grade", "protocols"}  # the first run --once grades (checks: defaults)
    shown = assert_headers_whole(result.stdout, headers | {"verdict / problem"})
    assert {"status", "verdict / problem"} <= set(shown)
