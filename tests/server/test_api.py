"""The /api/v1 routes against a real server on loopback: reports, inventory, alerts."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives.serialization import Encoding

from certvigil.analysis.certificate import keep_certificates, kept_certificates, parse_certificate
from certvigil.config.loading import LoadedConfig, load_config
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.server.app import create_app
from certvigil.server.keys import Scope
from certvigil.store import Store, open_store
from tests.server.conftest import make_key, write_server_config
from tests.server.scanned import scanned_items
from tests.support.live_app import serve_app


@pytest.fixture(scope="module")
def items(pki: ThrowawayPki, leaf: IssuedCert, expiring_leaf: IssuedCert) -> list[dict[str, Any]]:
    """Observations of an expiring and a healthy endpoint."""
    return scanned_items(pki, [expiring_leaf, leaf], tags=("lab",))


@pytest.fixture
def api(server_loaded: LoadedConfig, server_store: Store) -> Iterator[tuple[str, dict[str, str]]]:
    """The server's base URL and one key per scope."""
    keys = {scope.value: make_key(server_store, f"k-{scope.value}", scope) for scope in Scope}
    app = create_app(server_loaded, server_store, poll_s=0.05)
    with serve_app(app) as url:
        yield url, keys


def batch(items: list[dict[str, Any]], pki: ThrowawayPki, **more: Any) -> dict[str, Any]:
    """A report body trusting the test root."""
    root = pki.root.certificate.public_bytes(Encoding.PEM).decode()
    return {
        "report_id": uuid.uuid4().hex,
        "agent": {"name": "lab-a", "version": "t", "interval_s": 60, "targets": len(items)},
        "trust": {"public": False, "ca_pem": [root]},
        "items": items,
        **more,
    }


def test_a_batch_is_stored_once_and_bad_items_are_named(
    api: tuple[str, dict[str, str]], items: list[dict[str, Any]], pki: ThrowawayPki
) -> None:
    """A retried batch is stored once; a broken item is refused by index, the rest kept."""
    url, keys = api
    headers = {"X-API-Key": keys["agent"]}
    broken = {**items[1], "format": "something/9"}
    body = batch([items[0], broken], pki)
    first = httpx.post(f"{url}/api/v1/reports", json=body, headers=headers).json()
    again = httpx.post(f"{url}/api/v1/reports", json=body, headers=headers).json()
    assert first["accepted"] == 1 and first["duplicate"] is False
    assert [r["index"] for r in first["rejected"]] == [1]
    assert "format" in first["rejected"][0]["reason"]
    assert again == {**first, "duplicate": True}
    reader = {"Authorization": f"Bearer {keys['read']}"}
    endpoints = httpx.get(f"{url}/api/v1/endpoints", headers=reader).json()["items"]
    assert len(endpoints) == 1
    history = httpx.get(
        f"{url}/api/v1/endpoints/{endpoints[0]['id']}/history", headers=reader
    ).json()
    assert len(history["items"]) == 1


def test_certificates_filter_sort_and_page_with_a_cursor(
    api: tuple[str, dict[str, str]], items: list[dict[str, Any]], pki: ThrowawayPki
) -> None:
    """expiring_within keeps the expiring leaf; limit=1 pages through both, no repeats."""
    url, keys = api
    httpx.post(
        f"{url}/api/v1/reports", json=batch(items, pki), headers={"X-API-Key": keys["agent"]}
    )
    h = {"X-API-Key": keys["read"]}
    soon = httpx.get(f"{url}/api/v1/certificates?expiring_within=30", headers=h).json()["items"]
    assert len(soon) == 1 and soon[0]["days_remaining"] in (9, 10)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, "sort": "-not_after"}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{url}/api/v1/certificates", params=params, headers=h).json()
        seen += [c["sha256"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 2 and len(set(seen)) == 2
    assert seen[1] == soon[0]["sha256"]  # descending: the expiring one last
    detail = httpx.get(f"{url}/api/v1/certificates/{seen[1]}", headers=h).json()
    assert detail["facts"]["sha256_hex"] == seen[1]
    assert [d["endpoint"]["port"] for d in detail["deployed_now"]] == [
        items[0]["observation"]["target"]["port"]
    ]
    assert any(f["code"] == "expires_soon" for f in detail["findings"])
    tagged = httpx.get(f"{url}/api/v1/certificates?tag=nope", headers=h).json()
    assert tagged["items"] == []


def test_an_expiring_leaf_opens_one_alert_that_can_be_acknowledged_and_resolved(
    api: tuple[str, dict[str, str]], items: list[dict[str, Any]], pki: ThrowawayPki
) -> None:
    """unread=true lists the alert until it is acknowledged; read keys may not act."""
    url, keys = api
    agent = {"X-API-Key": keys["agent"]}
    httpx.post(f"{url}/api/v1/reports", json=batch(items, pki), headers=agent)
    httpx.post(f"{url}/api/v1/reports", json=batch(items, pki), headers=agent)
    reader = {"X-API-Key": keys["read"]}
    admin = {"X-API-Key": keys["admin"]}
    unread = httpx.get(f"{url}/api/v1/alerts?unread=true", headers=reader).json()["items"]
    assert [a["kind"] for a in unread] == ["expiry_threshold"]
    alert_id = unread[0]["id"]
    denied = httpx.post(f"{url}/api/v1/alerts/{alert_id}/acknowledge", headers=reader)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "forbidden"
    done = httpx.post(
        f"{url}/api/v1/alerts/{alert_id}/acknowledge", headers=admin, json={"note": "on it"}
    )
    assert done.json()["state"] == "acknowledged"
    assert done.json()["acknowledged_by"] == "k-admin"
    twice = httpx.post(f"{url}/api/v1/alerts/{alert_id}/acknowledge", headers=admin)
    assert twice.status_code == 409
    assert httpx.get(f"{url}/api/v1/alerts?unread=true", headers=reader).json()["items"] == []
    resolved = httpx.post(f"{url}/api/v1/alerts/{alert_id}/resolve", headers=admin).json()
    assert resolved["state"] == "resolved"
    missing = httpx.post(f"{url}/api/v1/alerts/999999/resolve", headers=admin)
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"code", "message", "details"}


def test_scans_outside_the_allow_list_are_refused_and_inside_are_recorded(
    api: tuple[str, dict[str, str]], pki: ThrowawayPki, leaf: IssuedCert
) -> None:
    """10.0.0.1 and a name outside the patterns get 403; a loopback endpoint is scanned."""
    url, keys = api
    admin = {"X-API-Key": keys["admin"]}
    for host in ("10.0.0.1", "example.com", "10.0.0.0/30", "127.0.0.1:1@evil"):
        answer = httpx.post(
            f"{url}/api/v1/scans", json={"targets": [{"host": host, "port": 443}]}, headers=admin
        )
        assert answer.status_code in (403, 422), host
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as address:
        answer = httpx.post(
            f"{url}/api/v1/scans",
            json={"targets": [{"host": "127.0.0.1", "port": address.port}]},
            headers=admin,
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    (item,) = answer.json()["items"]
    assert item["status"] == "ok" and item["leaf_sha256"] == leaf.sha256_hex


def test_errors_are_json_documents(api: tuple[str, dict[str, str]]) -> None:
    """No key: 401; bad query: 422 naming the field; bad cursor: 400; all the same shape."""
    url, keys = api
    h = {"X-API-Key": keys["read"]}
    cases = [
        (httpx.get(f"{url}/api/v1/alerts"), 401, "unauthorized"),
        (httpx.get(f"{url}/api/v1/alerts", headers={"X-API-Key": "cvk_x"}), 401, "unauthorized"),
        (httpx.get(f"{url}/api/v1/certificates?limit=0", headers=h), 422, "invalid_request"),
        (httpx.get(f"{url}/api/v1/certificates?cursor=@@", headers=h), 400, "bad_cursor"),
        (
            httpx.get(
                f"{url}/api/v1/certificates",
                params={"cursor": base64.urlsafe_b64encode(b'["a",1]').decode()},
                headers=h,
            ),
            400,
            "bad_cursor",
        ),
        (httpx.get(f"{url}/api/v1/nowhere", headers=h), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    assert "limit" in cases[2][0].json()["error"]["message"]


def test_metrics_show_the_inventory_to_a_reader_only(
    api: tuple[str, dict[str, str]], items: list[dict[str, Any]], pki: ThrowawayPki
) -> None:
    """/metrics serves the reported endpoints in Prometheus' format, with a read key."""
    url, keys = api
    body = batch([items[0]], pki)
    accepted = httpx.post(
        f"{url}/api/v1/reports", json=body, headers={"X-API-Key": keys["agent"]}
    ).json()
    assert accepted["accepted"] == 1
    assert httpx.get(f"{url}/metrics").status_code == 401
    assert httpx.get(f"{url}/metrics", headers={"X-API-Key": keys["agent"]}).status_code == 403
    response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {keys['read']}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    assert any(line.startswith("certvigil_endpoint_expiry_remaining_days{") for line in lines), (
        response.text[:2000]
    )
    assert any(line.startswith("certvigil_endpoint_chain_trusted{") for line in lines)


def test_a_body_over_the_bound_is_refused_chunked_or_not(
    api: tuple[str, dict[str, str]],
) -> None:
    """A declared or a chunked body over 16 MiB gets 413 without being read whole."""
    url, keys = api
    headers = {"X-API-Key": keys["agent"]}
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            b"POST /api/v1/reports HTTP/1.1\r\nHost: test\r\n"
            + f"X-API-Key: {keys['agent']}\r\nContent-Length: {17 * 1024 * 1024}\r\n\r\n".encode()
        )
        assert connection.recv(100).startswith(b"HTTP/1.1 413 ")

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * (1024 * 1024)

    chunked = httpx.post(f"{url}/api/v1/reports", headers=headers, content=chunks())
    assert chunked.status_code == 413
    assert chunked.json()["error"]["code"] == "too_large"


def moved(item: dict[str, Any], port: int) -> dict[str, Any]:
    """The same observation document, as if made at another port of 127.0.0.1, a minute
    later (the items were scanned concurrently, in either order: a report must be newer
    than the one it follows to be compared with it)."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items()}
            if "host" in out and "port" in out:
                out["port"] = port
            if isinstance(out.get("observed_at_utc"), str):
                when = datetime.fromisoformat(out["observed_at_utc"]) + timedelta(minutes=1)
                out["observed_at_utc"] = when.isoformat()
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(item)


def test_a_renewed_certificate_resolves_the_alert_and_the_stream_says_so(
    api: tuple[str, dict[str, str]], items: list[dict[str, Any]], pki: ThrowawayPki
) -> None:
    """The endpoint then serves a healthy leaf: its expiry alert resolves; the stream
    tells "opened", then "resolved" for it, then the replacement notice (opened and
    resolved at once)."""
    url, keys = api
    agent = {"X-API-Key": keys["agent"]}
    port = items[0]["observation"]["target"]["port"]
    first = httpx.post(f"{url}/api/v1/reports", json=batch([items[0]], pki), headers=agent)
    renewed = httpx.post(
        f"{url}/api/v1/reports", json=batch([moved(items[1], port)], pki), headers=agent
    )
    assert first.json()["accepted"] == 1 and renewed.json()["accepted"] == 1
    reader = {"X-API-Key": keys["read"], "Accept": "text/event-stream"}
    events: list[dict[str, Any]] = []
    # A read time-out below the stream's 15 s keep-alive: a missing event fails the test.
    with (
        contextlib.suppress(httpx.ReadTimeout),
        httpx.stream(
            "GET", f"{url}/api/v1/alerts/stream?after=0", headers=reader, timeout=10
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
            if len(events) == 4:
                break
    assert [e["event"] for e in events] == ["opened", "resolved", "opened", "resolved"]
    assert events[0]["alert_id"] == events[1]["alert_id"]
    assert events[0]["alert"]["kind"] == "expiry_threshold"
    assert events[1]["alert"]["state"] == "resolved"
    assert events[2]["alert_id"] == events[3]["alert_id"] != events[0]["alert_id"]


def test_grade_below_keeps_endpoints_graded_worse(
    api: tuple[str, dict[str, str]],
    server_store: Store,
    items: list[dict[str, Any]],
    pki: ThrowawayPki,
) -> None:
    """An ungraded endpoint is not "below B"; once its latest grade is C, it is."""
    from sqlalchemy import update

    from certvigil.store.models import ENDPOINTS

    url, keys = api
    agent, reader = {"X-API-Key": keys["agent"]}, {"X-API-Key": keys["read"]}
    assert httpx.post(f"{url}/api/v1/reports", json=batch([items[0]], pki), headers=agent)
    query = f"{url}/api/v1/certificates?grade_below=B"
    ungraded = httpx.get(f"{url}/api/v1/certificates?grade_below=A%2B", headers=reader)
    assert ungraded.json()["items"] == []
    # As the daemon's grade check or a graded agent report stores it (a new observation
    # follows, which is what refreshes the server's page cache).
    with server_store.write() as connection:
        connection.execute(update(ENDPOINTS).values(grade="C"))
    assert len(httpx.get(query, headers=reader).json()["items"]) == 1
    assert (
        httpx.get(f"{url}/api/v1/certificates?grade_below=C", headers=reader).json()["items"] == []
    )
    bad = httpx.get(f"{url}/api/v1/certificates?grade_below=Z", headers=reader)
    assert bad.status_code == 422


def test_an_item_with_a_number_json_cannot_hold_is_refused_by_index(
    api: tuple[str, dict[str, str]], items: list[dict[str, Any]], pki: ThrowawayPki
) -> None:
    """NaN or Infinity (which Python's json writes) in one item refuses that item with
    the field named; the rest of the batch is kept."""
    url, keys = api
    headers = {"X-API-Key": keys["agent"], "Content-Type": "application/json"}
    odd = json.loads(json.dumps(items[1]))
    odd["observation"]["handshake"]["connect_s"] = float("nan")
    text = json.dumps(batch([items[0], odd], pki))
    assert "NaN" in text
    response = httpx.post(f"{url}/api/v1/reports", content=text, headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 1
    assert [r["index"] for r in answer["rejected"]] == [1]
    assert "connect_s: not a finite number" in answer["rejected"][0]["reason"]


def test_a_fleet_reported_again_is_not_parsed_again_and_the_limit_is_the_configs(
    tmp_path: Path, sqlite_url: str, items: list[dict[str, Any]], pki: ThrowawayPki
) -> None:
    """The next cycle's batch of the same endpoints parses (and so verifies) nothing;
    ``serve.kept_certificates`` sets how many certificates the server keeps."""
    before = kept_certificates()
    path = write_server_config(tmp_path, sqlite_url)
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["serve"]["kept_certificates"] = 50_000
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    store = open_store(sqlite_url)
    try:
        headers = {"X-API-Key": make_key(store, "agent", Scope.AGENT)}
        app = create_app(load_config(path), store, poll_s=0.05)
        assert kept_certificates() == 50_000
        with serve_app(app) as url:
            first = httpx.post(f"{url}/api/v1/reports", json=batch(items, pki), headers=headers)
            assert first.json()["accepted"] == len(items)
            parse_certificate.cache_clear()
            again = httpx.post(f"{url}/api/v1/reports", json=batch(items, pki), headers=headers)
            assert again.json()["accepted"] == len(items)
            assert parse_certificate.cache_info().misses == 0
    finally:
        store.close()
        keep_certificates(before)
