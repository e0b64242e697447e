"""Certificates whose names are markup, terminal escapes and bidi controls, end to end.

A real loopback TLS server serves a leaf whose subject CN is rich markup with control
and bidi characters in it, issued by an intermediate whose name is an OSC 8 hyperlink
with bidi isolates; one SAN starts a spreadsheet formula. Every human output must show
these names literally (escapes for the invisible characters, the brackets as brackets),
the JSON must keep them exactly, and no command may fail over them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import ServerAddress, TlsServer
from certvigil.files.truststore import load_trust_store
from certvigil.output.table import render_table
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan as scan_endpoints
from certvigil.targets.target import Target
from tests.cli.scan_lab import Result, run_cli, run_process
from tests.daemon.helpers import write_config

HOSTILE_CN = "[/bold][/][link=https://evil.test]x[/link]\x1b[31m\x00\n\u202e\u200b\ufeff\x9b end"
HOSTILE_ISSUER = "\x1b]8;;https://evil.test\x07[/] \u2066CA\u2069\x85\x7f"
FORMULA_SAN = "=1+2.evil.test"
ESCAPE_SAN = "x\x1b]8;;https://evil.test\x07[/].test"


@dataclass(frozen=True, slots=True)
class HostileLab:
    """The hostile chain, its root in a CA file and the leaf as a PEM chain file."""

    pki: ThrowawayPki
    leaf: IssuedCert
    ca_file: Path
    chain_file: Path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> HostileLab:
    """A leaf named ``HOSTILE_CN``, issued by ``HOSTILE_ISSUER``, expiring in 5 days."""
    now = datetime.now(UTC)
    pki = ThrowawayPki.create(intermediate_name=HOSTILE_ISSUER)
    leaf = pki.issue_leaf(
        dns_names=(FORMULA_SAN, "localhost", ESCAPE_SAN),
        common_name=HOSTILE_CN,
        not_before_utc=now - timedelta(days=30),
        not_after_utc=now + timedelta(days=5, hours=1),
    )
    directory = tmp_path_factory.mktemp("hostile")
    ca_file = directory / "root.pem"
    ca_file.write_bytes(pki.root.pem)
    chain_file = directory / "chain.pem"
    chain_file.write_bytes(leaf.chain_pem(pki.intermediate))
    return HostileLab(pki=pki, leaf=leaf, ca_file=ca_file, chain_file=chain_file)


@pytest.fixture(scope="module")
def server(hostile: HostileLab) -> Iterator[ServerAddress]:
    """The hostile chain served on 127.0.0.1."""
    chain = hostile.pki.served_chain_der(hostile.leaf)
    with TlsServer(chain=chain, key_pem=hostile.leaf.key_pem) as address:
        yield address


def assert_shows_nothing_hidden(text: str) -> None:
    """No line holds a control, format (bidi, zero-width) or separator character."""
    for line in text.split("\n"):
        hidden = [c for c in line if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"}]
        assert hidden == [], f"{hidden!r} in {line!r}"


def assert_names_shown_literally(text: str) -> None:
    """The hostile names appear as text: brackets kept, invisible characters escaped."""
    assert "[/bold][/][link=https://evil.test]x[/link]\\x1b[31m\\x00\\n\\u202e" in text
    assert "\\x1b]8;;https://evil.test\\x07[/]" in text


@pytest.fixture(autouse=True)
def wide_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables are 200 columns wide whatever the terminal running the tests."""
    monkeypatch.setenv("COLUMNS", "200")


FAST = ("--connect-timeout", "2", "--handshake-timeout", "2", "--retries", "0")


def scan(capsys: pytest.CaptureFixture[str], hostile: HostileLab, *args: str) -> Result:
    """Run ``certvigil scan`` trusting only the hostile lab's root."""
    return run_cli(
        capsys, "scan", *FAST, "--no-default-ca", "--ca-file", str(hostile.ca_file), *args
    )


def test_scan_table_shows_hostile_names_as_text(
    capsys: pytest.CaptureFixture[str], hostile: HostileLab, server: ServerAddress
) -> None:
    """``scan`` prints its table and sentences, names literal, and exits 2 (name mismatch)."""
    result = scan(capsys, hostile, server.endpoint)
    assert result.code == 2, result.stderr
    assert_shows_nothing_hidden(result.stdout)
    assert_shows_nothing_hidden(result.stderr)
    assert_names_shown_literally(result.stdout)
    # The hostname finding's sentence names the SANs; the table is there too.
    assert f"{server.endpoint}: critical: hostname_mismatch" in result.stdout
    assert "it covers =1+2.evil.test, localhost, x\\x1b]8;;https://evil.test\\x07[/].test" in (
        result.stdout
    )
    assert "1 endpoint: 1 critical" in result.stderr


def test_scan_table_in_colour_has_no_link_or_foreign_escape(
    hostile: HostileLab, server: ServerAddress
) -> None:
    """With colours forced, the only escapes are rich's styles: no hyperlink, no title."""
    forced = io.StringIO()
    trust = load_trust_store(ca_files=(hostile.ca_file,), use_system=False, include_default=False)
    reports = scan_endpoints(
        [Target(host="127.0.0.1", port=server.port)],
        options=ScanOptions(retries=0, fetch_missing_issuers=False),
        trust=trust,
    )
    render_table(reports, forced, color=True)
    shown = forced.getvalue()
    # Strip rich's own SGR colour sequences; nothing else may be an escape.
    rest = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert "\x1b" not in rest
    assert_shows_nothing_hidden(rest)
    assert "[link=https://evil.test]" in rest


def test_scan_json_keeps_names_exact_and_printable(
    capsys: pytest.CaptureFixture[str], hostile: HostileLab, server: ServerAddress
) -> None:
    """``--json`` decodes to the exact names, and its text holds no raw hidden character."""
    result = scan(capsys, hostile, "--json", server.endpoint)
    assert result.code == 2, result.stderr
    assert_shows_nothing_hidden(result.stdout)
    document = json.loads(result.stdout)
    certificates = document["endpoints"][0]["certificates"]
    assert certificates[0]["subject_cn"] == HOSTILE_CN
    assert certificates[0]["issuer_cn"] == HOSTILE_ISSUER


def test_scan_csv_keeps_names_and_defuses_formulas(
    capsys: pytest.CaptureFixture[str], hostile: HostileLab, server: ServerAddress
) -> None:
    """``--csv`` keeps the subject exactly; a SAN list starting with ``=`` gets a ``'``."""
    result = scan(capsys, hostile, "--csv", server.endpoint)
    assert result.code == 2, result.stderr
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert "[/bold][/][link=https://evil.test]x[/link]\x1b[31m" in row["subject"]
    assert row["san_dns"] == f"'{FORMULA_SAN};localhost;{ESCAPE_SAN}"


def test_cert_command_shows_hostile_names_as_text(
    capsys: pytest.CaptureFixture[str], hostile: HostileLab
) -> None:
    """``cert`` on the hostile chain file prints the table and findings, names literal."""
    result = run_cli(
        capsys,
        "cert",
        "--no-default-ca",
        "--ca-file",
        str(hostile.ca_file),
        "--host",
        "other.test",
        str(hostile.chain_file),
    )
    assert result.code == 2, result.stderr
    assert_shows_nothing_hidden(result.stdout)
    assert_shows_nothing_hidden(result.stderr)
    assert_names_shown_literally(result.stdout)
    assert "hostname_mismatch" in result.stdout


def test_a_hostile_target_line_is_reported_visibly(
    capsys: pytest.CaptureFixture[str], hostile: HostileLab, tmp_path: Path
) -> None:
    """A target file line with escapes and markup is named on stderr with escapes shown."""
    targets = tmp_path / "targets.txt"
    targets.write_text("bad\x1b[2Jname[/]:99999\n", encoding="utf-8")
    result = scan(capsys, hostile, "-f", str(targets))
    assert result.code in {3, 64}, result.stderr
    assert_shows_nothing_hidden(result.stderr)
    assert "\\x1b[2J" in result.stderr


@pytest.fixture(scope="module")
def recorded(
    hostile: HostileLab, server: ServerAddress, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Result]:
    """One daemon cycle (``run --once``) over the hostile server: the database and its run."""
    directory = tmp_path_factory.mktemp("daemon")
    config = write_config(
        directory, root_pem=hostile.pki.root.pem, endpoints=[("127.0.0.1", server.port, None)]
    )
    result = run_process("run", "--config", str(config), "--once", "--log-format", "text")
    return directory / "inventory.db", result


def test_daemon_log_shows_nothing_hidden(recorded: tuple[Path, Result]) -> None:
    """``run --once`` over the hostile endpoint logs plain lines and records it."""
    database, result = recorded
    assert database.exists(), result.stderr
    assert_shows_nothing_hidden(result.stderr)


@pytest.mark.parametrize(
    "command",
    [
        ["inventory"],
        ["inventory", "--json"],
        ["history", "{endpoint}"],
        ["history", "{endpoint}", "--json"],
        ["changes", "--since", "30d"],
        ["where", "{sha256}"],
        ["alerts", "list"],
    ],
)
def test_store_commands_show_hostile_names_as_text(
    capsys: pytest.CaptureFixture[str],
    recorded: tuple[Path, Result],
    hostile: HostileLab,
    server: ServerAddress,
    command: list[str],
) -> None:
    """inventory, history, changes, where and alerts list print, with nothing hidden."""
    database, _ = recorded
    argv = [
        part.format(endpoint=server.endpoint, sha256=hostile.leaf.sha256_hex) for part in command
    ]
    result = run_cli(capsys, *argv, "--db", str(database))
    assert result.code in {0, 1, 2}, result.stderr
    assert "Traceback" not in result.stderr
    assert_shows_nothing_hidden(result.stdout)
    assert_shows_nothing_hidden(result.stderr)


def test_alerts_name_the_hostile_certificate_visibly(
    capsys: pytest.CaptureFixture[str], recorded: tuple[Path, Result]
) -> None:
    """The alert texts built from the certificate carry its name with escapes shown."""
    database, _ = recorded
    result = run_cli(capsys, "alerts", "list", "--json", "--db", str(database))
    assert result.code in {0, 1, 2}, result.stderr
    alerts = json.loads(result.stdout)["alerts"]
    assert alerts, "the expiring, mismatched certificate raised alerts"
    texts = [a["summary"] + " " + (a["message"] or "") for a in alerts]
    for text in texts:
        assert_shows_nothing_hidden(text)
    assert any("[/bold][/][link=https://evil.test]x[/link]\\x1b[31m" in t for t in texts)


def test_grade_shows_hostile_names_as_text(
    capsys: pytest.CaptureFixture[str], hostile: HostileLab, server: ServerAddress
) -> None:
    """``grade`` prints its tables with the hostile names literal and nothing hidden."""
    result = run_cli(
        capsys,
        "grade",
        server.endpoint,
        "--no-default-ca",
        "--ca-file",
        str(hostile.ca_file),
        "--no-revocation",
        "--connect-timeout",
        "2",
        "--handshake-timeout",
        "2",
    )
    assert "Traceback" not in result.stderr
    assert result.code in {1, 2}, result.stderr
    assert_shows_nothing_hidden(result.stdout)
    assert_shows_nothing_hidden(result.stderr)
    assert "[/bold][/][link=https://evil.test]x[/link]\\x1b[31m" in result.stdout


def test_config_check_names_a_hostile_value_visibly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A configuration mistake quoting a value with escapes and markup shows them as text."""
    config = tmp_path / "certvigil.yaml"
    config.write_text(
        'targets:\n  - host: www.example.test\n    "port\\e[2J\\u202e[/]": 1\n',
        encoding="utf-8",
    )
    result = run_cli(capsys, "config", "check", str(config))
    assert result.code == 64, result.stderr
    assert_shows_nothing_hidden(result.stderr)
    assert "targets[0].port\\x1b[2J\\u202e[/]: unknown field" in result.stderr
