"""``certvigil alerts list|ack|resolve`` on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.routing import AlertRoute
from certvigil.analysis.model import Severity
from certvigil.cli.app import main
from certvigil.store import open_store

from .factories import T0, leaf, report

ROUTE = AlertRoute(name="chat", url="json://127.0.0.1:9/chat", min_severity=Severity.INFO)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def seeded(store_url: str) -> str:
    """A database with one open untrusted alert and one resolved expiry alert."""
    with open_store(store_url) as store:
        engine = AlertEngine(store, routes=(ROUTE,))
        cert = leaf("cli", not_before=T0, lifetime=timedelta(days=30))
        now = cert.not_after_utc - timedelta(days=3)
        engine.record_and_process(report(cert, now, trusted=False), now)
        later = now + timedelta(hours=1)
        new = leaf("cli-new", not_before=later, lifetime=timedelta(days=90))
        engine.record_and_process(report(new, later, trusted=False), later)
    return store_url


def test_list_shows_active_alerts_by_default(seeded: str, capsys) -> None:
    """``alerts list`` shows the open alert and not the resolved ones."""
    code, out, _ = _cli(["alerts", "list", "--db", seeded], capsys)
    assert code == 0
    assert "untrusted" in out and "www.example.test:443" in out
    assert "expiry_threshold" not in out


def test_list_json_carries_alerts_and_their_deliveries(seeded: str, capsys) -> None:
    """``--json`` writes one document with each alert's state and deliveries."""
    code, out, _ = _cli(["alerts", "list", "--db", seeded, "--state", "all", "--json"], capsys)
    assert code == 0
    alerts = json.loads(out)["alerts"]
    kinds = sorted(a["kind"] for a in alerts)
    assert kinds == ["expiry_threshold", "replaced", "untrusted"]
    expiry = next(a for a in alerts if a["kind"] == "expiry_threshold")
    assert expiry["state"] == "resolved"
    assert sorted(d["event"] for d in expiry["deliveries"]) == ["opened", "resolved"]
    assert all(d["status"] == "pending" for d in expiry["deliveries"])
    assert all("127.0.0.1" not in d["route"] for d in expiry["deliveries"])


def test_ack_then_resolve_move_the_alert_along(seeded: str, capsys) -> None:
    """``ack --by`` records who; ``resolve`` closes it; both show in the JSON listing."""
    _, out, _ = _cli(["alerts", "list", "--db", seeded, "--json"], capsys)
    (alert,) = json.loads(out)["alerts"]
    code, _, err = _cli(
        ["alerts", "ack", str(alert["id"]), "--by", "alice", "--note", "on it", "--db", seeded],
        capsys,
    )
    assert code == 0 and "acknowledged by alice" in err
    _, out, _ = _cli(
        ["alerts", "list", "--db", seeded, "--state", "acknowledged", "--json"], capsys
    )
    (acked,) = json.loads(out)["alerts"]
    assert (acked["acknowledged_by"], acked["ack_note"]) == ("alice", "on it")
    code, _, _ = _cli(["alerts", "resolve", str(alert["id"]), "--db", seeded], capsys)
    assert code == 0
    _, out, _ = _cli(["alerts", "list", "--db", seeded, "--json"], capsys)
    assert json.loads(out)["alerts"] == []


def test_unknown_alert_is_a_usage_error(seeded: str, capsys) -> None:
    """Acknowledging an id that does not exist exits 64 with one error line."""
    code, _, err = _cli(["alerts", "ack", "9999", "--by", "x", "--db", seeded], capsys)
    assert code == 64
    assert err.strip() == "error: alert 9999: no such alert"
