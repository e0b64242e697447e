"""``certvigil inventory`` and ``certvigil history`` against a real store."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certvigil.cli.app import main
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.inventory_cmd import parse_endpoint
from certvigil.errors import UsageError
from certvigil.store import open_store
from certvigil.targets.target import Target
from tests.store.factories import facts, failed_report, ok_report

# The commands read the clock, so the data is placed relative to it.
NOW = datetime.now(UTC).replace(microsecond=0)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


@pytest.fixture
def filled_url(store_url: str) -> str:
    """A store with three endpoints: expired, expiring in 5 days, and in 60 days."""
    store = open_store(store_url)
    plan = [
        ("www.example.test", -2, ["prod"]),
        ("internal-a.example.test", 5, ["dev"]),
        ("internal-b.example.test", 60, ["prod"]),
    ]
    for host, days, tags in plan:
        target = Target(host=host, port=443)
        # An hour's margin keeps whole-day counts stable while the test runs.
        margin = timedelta(hours=1) if days > 0 else -timedelta(hours=1)
        leaf = facts(host, not_after_utc=NOW + timedelta(days=days) + margin)
        store.record_report(ok_report(target, (leaf,), at=NOW - timedelta(hours=2)), tags=tags)
        store.record_report(failed_report(target, at=NOW - timedelta(hours=1)))
    store.close()
    return store_url


def test_inventory_table(filled_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The table lists every deployed leaf, soonest expiry first, and exits 0."""
    code, out, err = _run(["inventory", "--db", filled_url], capsys)
    assert code == ExitCode.OK
    hosts = [line.split("│")[2].strip() for line in out.splitlines() if "│" in line]
    assert hosts == [
        "www.example.test:443",
        "internal-a.example.test:443",
        "internal-b.example.test:443",
    ]
    assert "expired 2d ago" in out
    assert "3 certificates" in err


def test_inventory_filters_and_exit_code(
    filled_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--expiring-within with --host lists matches and exits 1 for a warning."""
    code, out, _ = _run(
        ["inventory", "--db", filled_url, "--expiring-within", "30", "--host", "internal*"],
        capsys,
    )
    assert code == ExitCode.WARNING
    assert "internal-a.example.test:443" in out
    assert "internal-b" not in out and "www" not in out


def test_inventory_expired_exits_critical(
    filled_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An already expired certificate in the window makes the exit code 2."""
    code, _, _ = _run(["inventory", "--db", filled_url, "--expiring-within", "30"], capsys)
    assert code == ExitCode.CRITICAL


def test_inventory_nothing_expiring_exits_ok(
    filled_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A window with nothing in it exits 0 and says so."""
    code, out, _ = _run(
        ["inventory", "--db", filled_url, "--expiring-within", "30", "--tag", "nothing"], capsys
    )
    assert code == ExitCode.OK
    assert "no certificates match" in out


def test_inventory_json(filled_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--json writes one document with the query and the certificates."""
    code, out, err = _run(["inventory", "--db", filled_url, "--json", "--tag", "prod"], capsys)
    assert code == ExitCode.OK
    document = json.loads(out)
    assert document["query"]["tag"] == "prod"
    assert [c["host"] for c in document["certificates"]] == [
        "www.example.test",
        "internal-b.example.test",
    ]
    # Expired 2 days 1 hour ago: -2, as the table says "expired 2d ago".
    assert document["certificates"][0]["days_remaining"] == -2
    assert err == ""


def test_inventory_csv(filled_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--csv writes a header and one row per certificate."""
    code, out, _ = _run(["inventory", "--db", filled_url, "--csv", "--issuer", "test ca"], capsys)
    assert code == ExitCode.OK
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["endpoint"] == "www.example.test:443"
    assert len(rows) == 3
    assert rows[1]["days_remaining"] == "5"


def test_history(filled_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """history shows the endpoint's observations newest first."""
    code, out, _ = _run(["history", "www.example.test:443", "--db", filled_url], capsys)
    assert code == ExitCode.OK
    rows = [line for line in out.splitlines() if "│" in line]
    assert len(rows) == 2
    assert "connection_refused" in rows[0]
    assert "TLSv1.3" in rows[1]


def test_history_json_and_limit(filled_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """history --json --limit 1 gives the latest observation only."""
    code, out, _ = _run(
        ["history", "WWW.example.test:443", "--db", filled_url, "--json", "--limit", "1"], capsys
    )
    assert code == ExitCode.OK
    (endpoint,) = json.loads(out)["endpoints"]
    assert endpoint["consecutive_failures"] == 1
    assert [o["status"] for o in endpoint["observations"]] == ["failed"]


def test_history_unknown_endpoint(filled_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An endpoint never observed exits 3 with a one-line error."""
    code, out, err = _run(["history", "nowhere.example.test:443", "--db", filled_url], capsys)
    assert code == ExitCode.UNKNOWN
    assert out == ""
    assert err.startswith("error: nowhere.example.test:443: never observed")


def test_missing_sqlite_file_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reading from a SQLite file that does not exist fails with 64 and creates nothing."""
    missing = tmp_path / "none.db"
    code, _, err = _run(["inventory", "--db", str(missing)], capsys)
    assert code == ExitCode.USAGE
    assert "does not exist" in err
    assert not missing.exists()


def test_json_and_csv_together_is_a_usage_error(
    filled_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json with --csv is refused with exit code 64."""
    code, _, err = _run(["inventory", "--db", filled_url, "--json", "--csv"], capsys)
    assert code == ExitCode.USAGE
    assert "--json and --csv" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Example.test:8443", ("example.test", 8443)),
        ("example.test", ("example.test", None)),
        ("[::1]:443", ("::1", 443)),
        ("127.0.0.1:25", ("127.0.0.1", 25)),
    ],
)
def test_parse_endpoint(text: str, expected: tuple[str, int | None]) -> None:
    """HOST[:PORT] splits into a normalised host and optional port."""
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize("text", ["example.test:0", "[::1", "exa mple.test:443"])
def test_parse_endpoint_refuses_bad_input(text: str) -> None:
    """Malformed endpoints are usage errors naming the input."""
    with pytest.raises(UsageError, match=r"expected|port|host|label|invalid|character"):
        parse_endpoint(text)


def test_store_commands_take_a_relative_database_from_the_config_s_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--config`` with ``database_url: inventory.db`` reads the database beside the
    configuration, as the daemon writes it, whatever the working directory."""
    etc = tmp_path / "etc"
    etc.mkdir()
    config = etc / "certvigil.yaml"
    config.write_text("database_url: inventory.db\ntargets:\n  - host: www.example.test\n")
    target = Target(host="www.example.test", port=443)
    leaf = facts("www.example.test", not_after_utc=NOW + timedelta(days=3))
    with open_store(str(etc / "inventory.db")) as store:
        store.record_report(ok_report(target, (leaf,), at=NOW - timedelta(hours=1)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for argv in (
        ["inventory", "--config", str(config), "--json"],
        ["history", "www.example.test:443", "-c", str(config), "--json"],
        ["alerts", "list", "--config", str(config), "--json"],
    ):
        code, out, err = _run(argv, capsys)
        assert code == ExitCode.OK, (argv, err)
        json.loads(out)
    assert not (elsewhere / "inventory.db").exists()
