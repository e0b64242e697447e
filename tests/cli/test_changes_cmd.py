"""``certvigil changes`` and ``certvigil where`` against a real store."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certvigil.analysis.trust import TrustStore
from certvigil.cli.app import main
from certvigil.cli.changes_cmd import parse_since
from certvigil.cli.exitcodes import ExitCode
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.errors import UsageError
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan
from certvigil.store import open_store
from certvigil.targets.target import Target
from tests.store.factories import facts, failed_report, ok_report

NOW = datetime.now(UTC).replace(microsecond=0)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


@pytest.fixture
def rotated_url(store_url: str) -> str:
    """One endpoint whose certificate was replaced by one from another CA an hour ago,
    and one that went down half an hour ago."""
    store = open_store(store_url)
    web = Target(host="www.example.test", port=443)
    old = facts("old.example.test", not_after_utc=NOW + timedelta(days=3))
    new = facts(
        "new.example.test", not_after_utc=NOW + timedelta(days=90), issuer="CN=Other CA,O=Else"
    )
    store.record_report(ok_report(web, (old,), at=NOW - timedelta(hours=3)))
    store.record_report(ok_report(web, (new,), at=NOW - timedelta(hours=1)))
    api = Target(host="api.example.test", port=443)
    store.record_report(ok_report(api, (new,), at=NOW - timedelta(hours=3)))
    store.record_report(failed_report(api, at=NOW - timedelta(minutes=30)))
    store.close()
    return store_url


def test_changes_lists_rotations_issuer_changes_and_failures(
    rotated_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every change of the last day is listed with its endpoint, and the exit code is 1."""
    code, out, err = _run(["changes", "--db", rotated_url], capsys)
    assert code == ExitCode.WARNING
    assert "certificate_rotated" in out and "issuer_changed" in out
    assert "endpoint_failed" in out
    assert "www.example.test:443" in out and "api.example.test:443" in out
    assert "3 changes at 2 endpoints" in err


def test_changes_json_and_period(rotated_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON names each change with before and after; a shorter period sees fewer."""
    code, out, _err = _run(["changes", "--db", rotated_url, "--json", "--host", "www*"], capsys)
    assert code == ExitCode.WARNING
    document = json.loads(out)
    (endpoint,) = document["endpoints"]
    assert endpoint["endpoint"] == "www.example.test:443"
    kinds = {c["kind"]: c for c in endpoint["changes"]}
    assert set(kinds) == {"certificate_rotated", "issuer_changed"}
    assert kinds["issuer_changed"]["after"] == "CN=Other CA,O=Else"
    code, out, _err = _run(["changes", "--db", rotated_url, "--since", "45m", "--json"], capsys)
    assert code == ExitCode.WARNING
    assert [e["endpoint"] for e in json.loads(out)["endpoints"]] == ["api.example.test:443"]
    code, out, _err = _run(["changes", "--db", rotated_url, "--since", "10m"], capsys)
    assert code == ExitCode.OK


def test_since_takes_a_duration_or_a_time() -> None:
    """``--since`` is a duration back from now or an ISO time (UTC unless it says)."""
    assert parse_since("7d", now=NOW) == NOW - timedelta(days=7)
    assert parse_since("2026-11-20", now=NOW) == datetime(2026, 11, 20, tzinfo=UTC)
    assert parse_since("2026-11-20T08:00:00Z", now=NOW) == datetime(2026, 11, 20, 8, tzinfo=UTC)
    with pytest.raises(UsageError, match="--since"):
        parse_since("last tuesday", now=NOW)


def test_where_finds_a_scanned_certificate_by_file_or_fingerprint(
    tmp_path: Path,
    store_url: str,
    pki: ThrowawayPki,
    trust: TrustStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A certificate recorded by a real scan is found by its PEM file and by its
    colon-separated fingerprint; the intermediate shows as a chain certificate."""
    leaf = pki.issue_leaf(dns_names=("localhost",))
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server:
        target = Target(host="127.0.0.1", port=server.port, sni="localhost")
        (report,) = scan([target], options=ScanOptions(retries=0), trust=trust)
    assert report.failure is None
    with open_store(store_url) as store:
        store.record_report(report)
    pem = tmp_path / "leaf.pem"
    pem.write_bytes(leaf.pem)
    code, out, _err = _run(["where", str(pem), "--db", store_url], capsys)
    assert code == ExitCode.OK
    assert f"127.0.0.1:{server.port}" in out and "served" in out
    fingerprint = report.certificates[1].sha256_hex
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    code, out, _err = _run(["where", colons, "--db", store_url, "--json"], capsys)
    assert code == ExitCode.OK
    (certificate,) = json.loads(out)["certificates"]
    assert certificate["sha256_hex"] == fingerprint
    assert [d["chain_position"] for d in certificate["deployments"]] == [1]
    assert certificate["deployments"][0]["is_current"] is True


def test_where_says_when_a_certificate_was_never_seen(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown fingerprint exits 3; an argument that is neither file nor fingerprint, or
    a file without a certificate, 64."""
    with open_store(store_url):
        pass
    code, out, _err = _run(["where", "ab" * 32, "--db", store_url], capsys)
    assert code == ExitCode.UNKNOWN
    assert "never seen at any endpoint" in out
    code, _out, err = _run(["where", "not-a-cert", "--db", store_url], capsys)
    assert code == ExitCode.USAGE
    assert "neither a certificate file nor a SHA-256 fingerprint" in err
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    code, _out, err = _run(["where", str(empty), "--db", store_url], capsys)
    assert code == ExitCode.USAGE
    assert "empty.pem" in err


@pytest.fixture
def twin_prefix_url(store_url: str) -> str:
    """Three recorded certificates: two whose fingerprints share their first 12 digits."""
    store = open_store(store_url)
    for host, fingerprint in (
        ("a.example.test", "0123456789ab" + "1" * 52),
        ("b.example.test", "0123456789ab" + "2" * 52),
        ("c.example.test", "fedcba9876543210" + "3" * 48),
    ):
        leaf = replace(facts(host, not_after_utc=NOW + timedelta(days=30)), sha256_hex=fingerprint)
        target = Target(host=host, port=443)
        store.record_report(ok_report(target, (leaf,), at=NOW - timedelta(hours=1)))
    store.close()
    return store_url


def test_where_takes_the_prefix_inventory_shows(
    twin_prefix_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 16 digits inventory shows, or any unique prefix of 8 or more, find the
    certificate; colons and capitals are allowed."""
    for prefix in ("fedcba9876543210", "FE:DC:BA:98", "0123456789ab1"):
        code, out, err = _run(["where", prefix, "--db", twin_prefix_url, "--json"], capsys)
        assert code == ExitCode.OK, err
        (certificate,) = json.loads(out)["certificates"]
        assert certificate["sha256_hex"].startswith(prefix.replace(":", "").lower())


def test_where_lists_the_candidates_of_an_ambiguous_prefix(
    twin_prefix_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A prefix shared by two certificates exits 64 and names both."""
    code, out, err = _run(["where", "0123456789ab", "--db", twin_prefix_url], capsys)
    assert code == ExitCode.USAGE
    assert out == ""
    assert "several certificates" in err
    assert "0123456789ab" + "1" * 52 in err and "0123456789ab" + "2" * 52 in err


def test_where_refuses_short_prefixes_and_names_missing_files(
    twin_prefix_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fewer than 8 digits is refused; a missing file is "no such file"; a prefix that
    matches nothing exits 3."""
    code, _out, err = _run(["where", "0123456", "--db", twin_prefix_url], capsys)
    assert code == ExitCode.USAGE
    assert "8 or more" in err
    code, _out, err = _run(["where", "certs/server.pem", "--db", twin_prefix_url], capsys)
    assert code == ExitCode.USAGE
    assert err == "error: certs/server.pem: no such file\n"
    code, _out, err = _run(["where", "abcdef0123", "--db", twin_prefix_url], capsys)
    assert code == ExitCode.UNKNOWN
    assert "no recorded certificate's fingerprint starts with abcdef0123" in err
