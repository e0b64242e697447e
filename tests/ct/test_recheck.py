"""Re-checks of found names during ``ct watch``: due times, the AS from the DNS service or
the iptoasn table, the stored history, and ``ct findings`` showing it. On loopback: a
DNS server answering A and Team Cymru TXT records, an HTTPS server for the name."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from pydantic import ValidationError
from sqlalchemy import select

from certvigil.alerts.engine import AlertEngine
from certvigil.cli.app import main
from certvigil.config.ct import CtSettings
from certvigil.ct.watch.recheck import latest_checks, names_due
from certvigil.ct.watch.runner import CtWatch
from certvigil.store import Store, open_store
from certvigil.store.ct_liveness_models import CT_LIVENESS_CHECKS
from certvigil.store.ct_models import CT_FINDINGS
from tests.ct.conftest import DATA
from tests.support.ct_log_server import TestLogKey
from tests.support.dns_server import LoopbackDns

NAME = "login.examp1e-bank.test"
FOUND = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# Team Cymru's layout for the loopback address (real answers in test_asn.py).
ORIGIN = "64500 | 127.0.0.0/24 | ZZ | other | 2026-12-01"
AS_NAME = "64500 | ZZ | other | 2026-12-01 | LOOPBACK-TEST - documentation AS"


@pytest.fixture
def dns_server() -> Iterator[LoopbackDns]:
    """NAME at 127.0.0.1, and Team Cymru's answers for 127.0.0.1 and AS64500."""
    with LoopbackDns() as server:
        server.a[NAME] = "127.0.0.1"
        server.txt["1.0.0.127.origin.asn.cymru.com"] = [ORIGIN]
        server.txt["as64500.asn.cymru.com"] = [AS_NAME]
        yield server


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store with one finding for NAME (and a wildcard of it)."""
    store = open_store(f"sqlite:///{tmp_path / 'ct.db'}")
    with store.write() as connection:
        connection.execute(
            CT_FINDINGS.insert(),
            {
                "sha256_hex": "ab" * 32,
                "issuer_serial_key": "01" * 32,
                "tbs_key": "02" * 32,
                "renewal_key": "03" * 32,
                "serial_hex": "0a",
                "issuer": "CN=Test CA",
                "issuer_spki_sha256": None,
                "names": [NAME, "*." + NAME],
                "watched": ["example-bank.test"],
                "kinds": ["lookalike_detected"],
                "details": {},
                "is_precert": True,
                "not_before_utc": FOUND,
                "not_after_utc": FOUND + timedelta(days=90),
                "log_id": "bG9n",
                "log_description": "Test log",
                "entry_index": 7,
                "logged_at_utc": FOUND,
                "found_at_utc": FOUND,
            },
        )
    try:
        yield store
    finally:
        store.close()


def _settings(dns: LoopbackDns, port: int, **liveness: Any) -> CtSettings:
    return CtSettings.model_validate(
        {
            "use_log_list": False,
            "logs": [
                {"url": "http://127.0.0.1:9/", "key": base64.b64encode(TestLogKey().der).decode()}
            ],
            "domains": [{"name": "example-bank.test"}],
            "caa": False,
            "lookalikes": False,
            "dns_server": f"127.0.0.1:{dns.port}",
            "liveness": {"enabled": True, "port": port, "deadline": "5s", **liveness},
        }
    )


async def _serving_https(handle: Any) -> Any:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME).configure_cert(context)

    async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b"<html><title>Sign in</title></html>"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(page, "127.0.0.1", 0, ssl=context)
    try:
        return await handle(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def _recheck(store: Store, dns: LoopbackDns, now: datetime, base_dir: Path, **liveness: Any) -> int:
    async def run(port: int) -> int:
        runner = CtWatch(
            _settings(dns, port, **liveness),
            store,
            AlertEngine(store),
            base_dir=base_dir,
            clock=lambda: now,
            log_line=lambda _text: None,
        )
        return await runner.recheck_liveness()

    result: int = asyncio.run(_serving_https(run))
    return result


def test_names_are_rechecked_when_due_until_the_end(
    db: Store, dns_server: LoopbackDns, tmp_path: Path
) -> None:
    """Checked at once (the wildcard at its base name, once), again an hour later, not
    in between, and no more after ``until``; each check is stored with its AS."""
    assert _recheck(db, dns_server, FOUND + timedelta(minutes=5), tmp_path) == 1
    assert _recheck(db, dns_server, FOUND + timedelta(minutes=30), tmp_path) == 0
    assert _recheck(db, dns_server, FOUND + timedelta(minutes=66), tmp_path) == 1
    assert _recheck(db, dns_server, FOUND + timedelta(days=7, minutes=1), tmp_path) == 0

    with db.read() as connection:
        rows = connection.execute(select(CT_LIVENESS_CHECKS).order_by("id")).all()
        (check,) = latest_checks(connection, [1])[1]
    assert [(r.name, r.https_status, r.title, r.address) for r in rows] == [
        (NAME, 200, "Sign in", "127.0.0.1")
    ] * 2
    assert (rows[0].asn, rows[0].asn_prefix, rows[0].asn_source) == (64500, "127.0.0.0/24", "cymru")
    assert rows[0].asn_name == "LOOPBACK-TEST - documentation AS"
    assert check.checks == 2 and check.checked_at_utc == FOUND + timedelta(minutes=66)


def test_the_table_file_answers_before_the_dns_service(
    db: Store, dns_server: LoopbackDns, tmp_path: Path
) -> None:
    """With asn_file (relative to the configuration) and asn_dns off, no TXT query is made."""
    (tmp_path / "ip2asn.tsv").write_bytes((DATA / "asn" / "ip2asn-small.tsv").read_bytes())

    _recheck(db, dns_server, FOUND, tmp_path, asn_file="ip2asn.tsv", asn_dns=False)

    with db.read() as connection:
        (row,) = connection.execute(select(CT_LIVENESS_CHECKS)).all()
    assert (row.asn, row.asn_source, row.asn_country) == (64500, "file", "ZZ")
    assert not any("cymru" in q for q in dns_server.queries)


def test_a_failed_as_lookup_is_recorded_and_the_check_kept(
    db: Store, dns_server: LoopbackDns, tmp_path: Path
) -> None:
    """A Team Cymru server that answers nothing: the name is still live, the AS empty
    with the reason."""
    dns_server.silent.add("1.0.0.127.origin.asn.cymru.com")

    _recheck(db, dns_server, FOUND, tmp_path)

    with db.read() as connection:
        (row,) = connection.execute(select(CT_LIVENESS_CHECKS)).all()
    assert row.https_status == 200 and row.asn is None
    assert "AS of 127.0.0.1: no answer within" in row.error


def test_names_due_puts_the_never_checked_first_and_honours_the_limit(db: Store) -> None:
    """Two findings: the unchecked names come before one checked long ago; limit cuts."""
    with db.write() as connection:
        connection.execute(
            CT_FINDINGS.insert(),
            {
                **{k: v for k, v in _first_finding(connection).items() if k != "id"},
                "issuer_serial_key": "11" * 32,
                "tbs_key": "12" * 32,
                "names": ["a.test", "b.test"],
            },
        )
        connection.execute(
            CT_LIVENESS_CHECKS.insert(),
            {
                "finding_id": 1,
                "name": NAME,
                "checked_at_utc": FOUND,
                "addresses": [],
                "error": "does not resolve",
            },
        )
        due = names_due(
            connection,
            now=FOUND + timedelta(hours=2),
            recheck_every=timedelta(hours=1),
            until=timedelta(days=7),
            limit=2,
        )
    assert due == [(2, "a.test"), (2, "b.test")]


def _first_finding(connection: Any) -> dict[str, Any]:
    return dict(connection.execute(select(CT_FINDINGS)).mappings().one())


@pytest.mark.parametrize(
    ("liveness", "message"),
    [
        ({"recheck_every": "2d", "until": "1d"}, "recheck_every is longer than until"),
        ({"recheck_every": "10s"}, "greater than or equal to 60"),
        ({"until": "400d"}, "at most 31622400 seconds"),
        ({"every": "1h"}, "Extra inputs are not permitted"),
    ],
)
def test_liveness_settings_are_validated(liveness: dict[str, Any], message: str) -> None:
    """Out-of-range or unknown liveness settings are refused with the rule."""
    with pytest.raises(ValidationError, match=message):
        CtSettings.model_validate({"domains": [{"name": "example.com"}], "liveness": liveness})


def test_ct_findings_shows_the_stored_checks(
    db: Store, dns_server: LoopbackDns, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ct findings` says each checked name's last answer and AS; --json carries them."""
    _recheck(db, dns_server, FOUND, tmp_path)
    url = f"sqlite:///{tmp_path / 'ct.db'}"

    with pytest.raises(SystemExit):
        main(["ct", "findings", "--db", url])
    text = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["ct", "findings", "--db", url, "--json"])
    document = json.loads(capsys.readouterr().out)

    assert f'checked {NAME}: HTTPS 200 "Sign in" at 127.0.0.1, AS64500 127.0.0.0/24 ZZ' in text
    (check,) = document["findings"][0]["liveness_checks"]
    assert (check["name"], check["asn"], check["asn_source"], check["checks"]) == (
        NAME,
        64500,
        "cymru",
        1,
    )
