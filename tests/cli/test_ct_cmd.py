"""``certvigil ct watch|status|findings|baseline|authorize-ca|update-log-list`` end to end,
against a local log playing Navigli2025h2's real entries and a real SQLite store."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from certvigil.cli.app import main
from certvigil.cli.ct_cmd import parse_since
from certvigil.cli.exitcodes import ExitCode
from certvigil.ct.static_ct import checkpoint_origin
from certvigil.errors import UsageError
from certvigil.store import open_store
from certvigil.targets.target import Target
from tests.ct.test_liveness import AddressDns
from tests.ct.test_watch import DOMAINS, expected_matches
from tests.store.factories import facts, ok_report
from tests.support.ct_log_server import NAVIGLI_ROOTS, CtLogServer, TestLogKey, navigli_files
from tests.support.quiet_http import QuietHTTPServer

NOW = datetime.now(UTC).replace(microsecond=0)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


class Site:
    """A configuration watching DOMAINS in a local static log, and its database."""

    def __init__(self, server: CtLogServer, tmp_path: Path) -> None:
        self.server = server
        self.key = TestLogKey()
        self.files = server.site("navigli").files
        self.files.update(navigli_files(1024))
        origin = checkpoint_origin(server.url("navigli"))
        self.files["checkpoint"] = self.key.checkpoint(origin, 1024, NAVIGLI_ROOTS[1024])
        self.db = tmp_path / "ct.db"
        self.config = tmp_path / "certvigil.yaml"
        self.write()

    def write(self, *, domains: str = "", extra: str = "") -> None:
        listed = domains or "\n".join(f"    - name: {d}" for d in DOMAINS)
        self.config.write_text(
            f"database_url: {self.db.name}\n"
            "ct:\n"
            "  use_log_list: false\n"
            "  caa: false\n"
            "  logs:\n"
            f"    - monitoring_url: {self.server.url('navigli')}\n"
            "      description: Navigli (local)\n"
            f"      key: {base64.b64encode(self.key.der).decode()}\n"
            f"  domains:\n{listed}\n{extra}"
        )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A running local log and a configuration for it."""
    with CtLogServer() as server:
        yield Site(server, tmp_path)


def test_watch_then_findings_as_json(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """watch --once --from-start reads the log; findings --json lists each finding with
    its certificate's SHA-256, serial, issuer, names, log, index and kinds."""
    code, out, err = _run(["ct", "watch", "-c", str(site.config), "--once", "--from-start"], capsys)
    assert code == ExitCode.OK, err
    assert out == ""
    assert "1024 entries read" in err and "position 1024 of 1024" in err

    code, out, _ = _run(["ct", "findings", "-c", str(site.config), "--json"], capsys)

    assert code == ExitCode.OK
    found = json.loads(out)["findings"]
    expected = expected_matches(DOMAINS)
    assert found and {f["index"] for f in found} <= set(expected)
    first = found[0]
    assert set(first) >= {"sha256", "serial", "issuer", "names", "log", "index", "kinds"}
    assert first["certificate_type"] == "precertificate" and len(first["sha256"]) == 64
    assert first["names"] == list(expected[first["index"]])
    assert first["log"] == "Navigli (local)" and "new_subdomain" in first["kinds"]


def test_findings_since_filters_by_time(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """--since in the future lists none; --since 1d lists what was just found."""
    _run(["ct", "watch", "-c", str(site.config), "--once", "--from-start"], capsys)
    # Taken after the pass (not NOW, fixed at import): a run that crosses midnight
    # would otherwise ask for findings since a day that has already begun.
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()

    _, later, _ = _run(
        ["ct", "findings", "-c", str(site.config), "--json", "--since", tomorrow], capsys
    )
    _, recent, _ = _run(
        ["ct", "findings", "-c", str(site.config), "--json", "--since", "1d"], capsys
    )

    assert json.loads(later)["findings"] == []
    assert json.loads(recent)["findings"]


def test_status_states_coverage_and_a_never_read_log(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before the first pass the log counts as never read (exit 1); after it, the table
    shows its tree size, position and a full coverage statement (exit 0)."""
    open_store(str(site.db)).close()
    code, out, _ = _run(["ct", "status", "-c", str(site.config), "--json"], capsys)
    assert code == ExitCode.WARNING
    assert json.loads(out)["never_read"] == ["Navigli (local)"]

    _run(["ct", "watch", "-c", str(site.config), "--once"], capsys)
    code, out, _ = _run(["ct", "status", "-c", str(site.config), "--json"], capsys)

    assert code == ExitCode.OK
    document = json.loads(out)
    (log,) = document["logs"]
    assert (log["tree_size"], log["position"], log["backlog_entries"]) == (1024, 1024, 0)
    assert log["health"] == "ok" and log["last_error"] is None
    assert document["coverage"]["logs_ok"] == document["coverage"]["logs_total"] == 1
    code, out, _ = _run(["ct", "status", "-c", str(site.config)], capsys)
    assert "Coverage: 1 of 1 log(s)" in out and "1,024" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_status_reports_a_log_serving_a_wrong_tile(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong data tile: watch exits 3, status shows the error and exits 1, and the
    fault is an open critical alert."""
    good = site.files["tile/data/002"]
    site.files["tile/data/002"] = good[:50] + bytes([good[50] ^ 0x80]) + good[51:]

    code, _, err = _run(["ct", "watch", "-c", str(site.config), "--once", "--from-start"], capsys)
    assert code == ExitCode.UNKNOWN and "tile/" in err

    code, out, _ = _run(["ct", "status", "-c", str(site.config), "--json"], capsys)
    assert code == ExitCode.WARNING
    (log,) = json.loads(out)["logs"]
    assert log["position"] == 512 and log["health"] == "failing" and "tile/" in log["last_error"]
    code, out, _ = _run(["alerts", "list", "-c", str(site.config), "--json"], capsys)
    assert code == ExitCode.CRITICAL
    kinds = {a["kind"]: a["severity"] for a in json.loads(out)["alerts"]}
    # The unread half is older than the tree head by months: behind too.
    assert kinds == {"ct_log_fault": "critical", "ct_log_behind": "warning"}


def test_baseline_auto_and_authorize_ca(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """baseline --auto authorises the issuer the inventory's chixbbq.org endpoint serves;
    authorize-ca adds one by hand; both are listed; the watch then alerts unauthorized_ca
    only for certificates from other CAs."""
    store = open_store(str(site.db))
    fennel = "CN=(STAGING) False Fennel E6,O=(STAGING) Let's Encrypt,C=US"
    leaf = facts("shop.chixbbq.org", not_after_utc=NOW + timedelta(days=30), issuer=fennel)
    store.record_report(ok_report(Target(host="shop.chixbbq.org", port=443), (leaf,), at=NOW))
    store.close()

    code, out, err = _run(["ct", "baseline", "--auto", "-c", str(site.config), "--json"], capsys)
    assert code == ExitCode.OK, err
    document = json.loads(out)
    assert document["added"] == [["chixbbq.org", fennel]]
    assert "cynova.dev" in document["domains_without_authorized_cas"]

    code, _, err = _run(
        ["ct", "authorize-ca", "cynova.dev", "(STAGING) Pseudo Plum E5", "-c", str(site.config)],
        capsys,
    )
    assert code == ExitCode.OK and "authorised" in err
    code, out, _ = _run(["ct", "baseline", "-c", str(site.config)], capsys)
    assert "cynova.dev  (STAGING) Pseudo Plum E5  (manual)" in out

    _run(["ct", "watch", "-c", str(site.config), "--once", "--from-start"], capsys)
    _, out, _ = _run(["ct", "findings", "-c", str(site.config), "--json"], capsys)

    flagged = [f for f in json.loads(out)["findings"] if "unauthorized_ca" in f["kinds"]]
    assert flagged
    for finding in flagged:
        if "chixbbq.org" in finding["watched_domains"]:
            assert finding["issuer"] != fennel
        else:
            assert "Pseudo Plum" not in finding["issuer"]


def test_a_config_without_ct_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """watch on a configuration without a ct: section says so in one line, exit 64."""
    config = tmp_path / "certvigil.yaml"
    config.write_text("targets:\n  - host: example.com\n")

    code, _, err = _run(["ct", "watch", "-c", str(config), "--once"], capsys)

    assert code == ExitCode.USAGE
    assert err.startswith("error: ") and "no ct: section" in err and err.count("\n") == 1


def test_a_config_mistake_in_ct_names_its_place(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wildcard watched domain is refused with its field named."""
    site.write(domains="    - name: '*.example.com'")

    code, _, err = _run(["ct", "watch", "-c", str(site.config), "--once"], capsys)

    assert code == ExitCode.USAGE
    assert "ct.domains[0].name" in err and "drop the" in err


def test_authorize_ca_refuses_a_non_domain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A domain that is not a host name is a usage error."""
    code, _, err = _run(
        ["ct", "authorize-ca", "not a domain", "CN=X", "--db", str(tmp_path / "x.db")], capsys
    )
    assert code == ExitCode.USAGE and "not a domain name" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("1h30m", NOW - timedelta(hours=1, minutes=30)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T10:00:00+01:00", datetime(2026, 12, 1, 9, tzinfo=UTC)),
    ],
)
def test_since_takes_durations_and_dates(text: str, expected: datetime) -> None:
    """--since accepts a duration before now, or a date or time (UTC unless given)."""
    assert parse_since(text, NOW) == expected


def test_since_refuses_other_text() -> None:
    """Anything else is a usage error naming the forms."""
    with pytest.raises(UsageError, match="expected a date"):
        parse_since("last week", NOW)


class ListServer:
    """A log list, its signature by a generated RSA key, served on loopback."""

    def __init__(self, server: CtLogServer, tmp_path: Path) -> None:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.data = (Path(__file__).parents[1] / "data/ct/loglist/log_list.json").read_bytes()
        site = server.site("list")
        site.files["log_list.json"] = self.data
        site.files["log_list.sig"] = private.sign(self.data, padding.PKCS1v15(), hashes.SHA256())
        self.url = server.url("list") + "log_list.json"
        self.key = tmp_path / "key.pem"
        self.key.write_bytes(
            private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.site = site


def test_update_log_list_keeps_a_verified_copy_that_watch_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list is fetched, its signature checked, and kept where ct status then reads it;
    a list whose signature does not verify is refused and nothing is kept."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with CtLogServer() as server:
        served = ListServer(server, tmp_path)
        code, _, err = _run(
            ["ct", "update-log-list", "--url", served.url, "--key", str(served.key)], capsys
        )
        assert code == ExitCode.OK, err
        kept = tmp_path / "data" / "certvigil" / "ct"
        assert (kept / "log_list.json").read_bytes() == served.data
        assert "80.14" in err

        served.site.files["log_list.json"] = served.data.replace(b"Google", b"G00gle", 1)
        other = tmp_path / "other"
        code, _, err = _run(
            [
                "ct",
                "update-log-list",
                "--url",
                served.url,
                "--key",
                str(served.key),
                "--output",
                str(other),
            ],
            capsys,
        )
        assert code != ExitCode.OK and "signature" in err.lower()
        assert not other.exists()

    from certvigil.config.ct import CtSettings
    from certvigil.ct.watch.logs import watched_logs

    settings = CtSettings.model_validate({"domains": [{"name": "example.com"}]})
    plans = watched_logs(settings, tmp_path, now=datetime(2026, 1, 3, tzinfo=UTC))
    assert plans.source == str(kept / "log_list.json") and plans.list_version == "80.14"
    assert len(plans.tail) == 48


def test_the_shipped_list_is_read_without_a_configured_one(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """With no ct.log_list and nothing updated, the shipped copy is verified and used."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    from certvigil.config.ct import CtSettings
    from certvigil.ct.watch.logs import watched_logs

    settings = CtSettings.model_validate({"domains": [{"name": "example.com"}]})
    plans = watched_logs(settings, tmp_path, now=datetime(2026, 1, 3, tzinfo=UTC))

    assert plans.source == "the copy shipped with certvigil"
    assert len(plans.tail) == 48 and len(plans.skipped) == 27


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<title>Shop</title>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_findings_live_checks_each_name(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--live resolves each found name through the configured DNS server and asks it over
    HTTPS: the one name that resolves answers 200 "Shop", the others do not resolve."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    https = QuietHTTPServer(("127.0.0.1", 0), _Page)
    https.socket = context.wrap_socket(https.socket, server_side=True)
    thread = threading.Thread(target=https.serve_forever, daemon=True)
    thread.start()
    try:
        with AddressDns() as dns_server:
            site.write(
                domains="    - name: chixbbq.org",
                extra=f"  dns_server: 127.0.0.1:{dns_server.port}\n",
            )
            _run(["ct", "watch", "-c", str(site.config), "--once", "--from-start"], capsys)
            _, out, _ = _run(["ct", "findings", "-c", str(site.config), "--json"], capsys)
            names = sorted({n for f in json.loads(out)["findings"] for n in f["names"]})
            live = names[0].removeprefix("*.")
            dns_server.addresses[live] = "127.0.0.1"
            port = str(https.server_address[1])

            code, out, err = _run(
                ["ct", "findings", "-c", str(site.config), "--json", "--live", "--live-port", port],
                capsys,
            )
    finally:
        https.shutdown()
        https.server_close()

    assert code == ExitCode.OK, err
    checked = {
        name: state for f in json.loads(out)["findings"] for name, state in f["liveness"].items()
    }
    assert checked[live] == {
        "addresses": ["127.0.0.1"],
        "address": "127.0.0.1",
        "https_status": 200,
        "title": "Shop",
        "error": None,
    }
    others = [state for name, state in checked.items() if name != live]
    assert others and all(s["error"] == "does not resolve" for s in others)
