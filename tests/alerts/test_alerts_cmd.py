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
    assert code == 2  # the open untrusted alert is critical
    assert "untrusted" in out and "www.example.test:443" in out
    assert "expiry_threshold" not in out


def test_list_json_carries_alerts_and_their_deliveries(seeded: str, capsys) -> None:
    """``--json`` writes one document with each alert's state and deliveries."""
    code, out, _ = _cli(["alerts", "list", "--db", seeded, "--state", "all", "--json"], capsys)
    assert code == 2
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
    code, out, _ = _cli(["alerts", "list", "--db", seeded, "--json"], capsys)
    assert json.loads(out)["alerts"] == [] and code == 0


def test_unknown_alert_is_a_usage_error(seeded: str, capsys) -> None:
    """Acknowledging an id that does not exist exits 64 with one error line."""
    code, _, err = _cli(["alerts", "ack", "9999", "--by", "x", "--db", seeded], capsys)
    assert code == 64
    assert err.strip() == "error: alert 9999: no such alert"


def test_list_exit_code_follows_the_worst_active_alert(store_url: str, capsys) -> None:
    """0 with nothing active, 1 with a warning open, 2 with a critical one, whatever --limit."""
    with open_store(store_url) as store:
        engine = AlertEngine(store, routes=(ROUTE,))
        assert _cli(["alerts", "list", "--db", store_url], capsys)[0] == 0
        cert = leaf("warn", not_before=T0, lifetime=timedelta(days=90))
        now = cert.not_after_utc - timedelta(days=10)
        engine.record_and_process(report(cert, now), now)
        code, out, _ = _cli(["alerts", "list", "--db", store_url], capsys)
        assert code == 1 and "expiry_threshold" in out
        later = now + timedelta(hours=1)
        engine.record_and_process(report(cert, later, trusted=False), later)
    assert _cli(["alerts", "list", "--db", store_url], capsys)[0] == 2
    assert _cli(["alerts", "list", "--db", store_url, "--limit", "1", "--json"], capsys)[0] == 2
    assert _cli(["alerts", "list", "--db", store_url, "--state", "resolved"], capsys)[0] == 0


def _failing_delivery(store_url: str) -> None:
    """Queues one critical alert for a receiver that answers 500, and tries it once."""
    import asyncio

    from certvigil.alerts.delivery import RetryPolicy, channels_for_routes, deliver_due

    from .receivers import http_receiver

    with http_receiver(statuses=[500]) as receiver, open_store(store_url) as store:
        route = AlertRoute(name="pager", url=receiver.url("webhook+http"))
        engine = AlertEngine(store, routes=(route,))
        cert = leaf("dl", not_before=T0, lifetime=timedelta(days=365))
        engine.record_and_process(report(cert, T0, trusted=False), T0)
        channels = channels_for_routes((route,), timeout_s=10)
        asyncio.run(deliver_due(store, channels, T0, retry=RetryPolicy(jitter=0)))


def test_deliveries_lists_what_is_not_delivered_with_its_last_error(store_url: str, capsys) -> None:
    """``alerts deliveries`` shows the failing delivery, its route and error, and exits 75."""
    _failing_delivery(store_url)
    code, out, _ = _cli(["alerts", "deliveries", "--db", store_url], capsys)
    assert code == 75
    assert "pager" in out and "pending" in out and "HTTP 500 Internal Server Error" in out
    code, out, _ = _cli(["alerts", "deliveries", "--db", store_url, "--json"], capsys)
    document = json.loads(out)
    assert code == 75 and document["failing"] == 1
    (delivery,) = document["deliveries"]
    assert (delivery["route"], delivery["status"], delivery["attempts"]) == ("pager", "pending", 1)
    assert delivery["last_error"].endswith("/…: HTTP 500 Internal Server Error")
    assert delivery["next_attempt_at"] == (T0 + timedelta(seconds=30)).isoformat()
    assert delivery["alert_summary"].startswith("Untrusted certificate")


def test_deliveries_is_quiet_and_exits_0_when_everything_went(seeded: str, capsys) -> None:
    """Without failing deliveries it exits 0; pending never-tried ones are listed, not failing."""
    code, out, _ = _cli(["alerts", "deliveries", "--db", seeded, "--json"], capsys)
    document = json.loads(out)
    assert code == 0 and document["failing"] == 0
    assert {d["status"] for d in document["deliveries"]} == {"pending"}


def _routes_config(tmp_path, routes: list[tuple[str, str]]):
    lines = [
        "database_url: inventory.db",
        "targets: [{host: 127.0.0.1, port: 9}]",
        "alerts:",
        "  routes:",
    ]
    for name, url in routes:
        lines += [f"    - name: {name}", f"      url: '{url}'"]
    path = tmp_path / "certvigil.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_alerts_test_reports_each_route_and_exits_75_when_one_fails(tmp_path, capsys) -> None:
    """A test notification reaches the working webhook and mail routes; the failing one is named."""
    import email
    from email.policy import default as default_policy

    from .receivers import http_receiver, smtp_server

    with (
        http_receiver() as good,
        http_receiver(statuses=[503]) as bad,
        smtp_server() as (port, mails),
    ):
        mail = f"mailto://127.0.0.1:{port}?mode=insecure&from=cv@example.test&to=ops@example.test"
        config = _routes_config(
            tmp_path,
            [
                ("hook", good.url("webhook+http")),
                ("broken", bad.url("webhook+http")),
                ("mail", mail),
            ],
        )
        code, out, _ = _cli(["alerts", "test", "-c", str(config)], capsys)
        assert code == 75
        lines = {line.split()[0]: line for line in out.splitlines()}
        assert lines["hook"].endswith("ok") and lines["mail"].endswith("ok")
        assert "FAILED: HTTP 503 Service Unavailable" in lines["broken"]
        code, out, _ = _cli(
            ["alerts", "test", "-c", str(config), "--route", "hook", "--json"], capsys
        )
        assert code == 0
        assert json.loads(out)["routes"] == [
            {
                "route": "hook",
                "channel": f"webhook+http://127.0.0.1:{good.port}/…",
                "ok": True,
                "error": None,
            }
        ]
        code, _, err = _cli(["alerts", "test", "-c", str(config), "--route", "nope"], capsys)
        assert code == 64 and "no route named 'nope'" in err
    assert len(good.requests) == 2 and len(bad.requests) == 1
    document = good.requests[0].json()
    assert document["kind"] == "test" and document["idempotency_key"].startswith("certvigil-test-")
    (received,) = mails
    parsed = email.message_from_bytes(received.content, policy=default_policy)
    assert parsed["Subject"] == "[certvigil] INFO: Test notification"


def test_alerts_test_finds_the_configuration_as_every_command_does(
    tmp_path, capsys, monkeypatch
) -> None:
    """Without -c, alerts test takes the routes of ./certvigil.yaml, as run does."""
    from .receivers import http_receiver

    monkeypatch.delenv("CERTVIGIL_CONFIG", raising=False)
    with http_receiver() as hook:
        _routes_config(tmp_path, [("hook", hook.url("webhook+http"))])  # ./certvigil.yaml
        monkeypatch.chdir(tmp_path)
        code, out, _ = _cli(["alerts", "test"], capsys)
    assert code == 0, out
    assert out.split()[0] == "hook" and out.rstrip().endswith("ok")
    assert len(hook.requests) == 1
