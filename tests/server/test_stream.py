"""The live alert stream: replay after an id, then live; resume loses and repeats nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from certvigil.analysis.model import Severity
from certvigil.config.loading import load_config
from certvigil.server.app import create_app
from certvigil.server.events import EVENT_OPENED, record_alert_event
from certvigil.server.keys import Scope
from certvigil.store import Store, open_store
from certvigil.store import outbox as box
from certvigil.store import server_queries as sq
from tests.server.conftest import make_key, write_server_config
from tests.support.live_app import serve_app

RECEIVE_TIMEOUT_S = 20.0


def open_alert(store: Store, number: int) -> int:
    """Opens an alert and logs its event, as the ingest path does; returns the alert id."""
    now = datetime.now(UTC)
    with store.write() as connection:
        alert, created = box.open_alert_if_absent(
            connection,
            dedup_key=f"test:{number}",
            kind="test",
            severity=Severity.WARNING,
            summary=f"alert {number}",
            now=now,
        )
        assert created
        record_alert_event(connection, alert.id, EVENT_OPENED, now=now)
    return alert.id


def ws_url(base: str, after: int | None = None) -> str:
    url = base.replace("http://", "ws://") + "/api/v1/alerts/stream"
    return url if after is None else f"{url}?after={after}"


def receive(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [json.loads(ws.recv(timeout=RECEIVE_TIMEOUT_S)) for _ in range(count)]


@pytest.fixture
def server_store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """The inventory of the two workers, on SQLite then PostgreSQL."""
    store = open_store(store_url)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def two_workers(
    store_url: str, tmp_path: Path, server_store: Store
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """Two server apps, each with its own connections and event poller, on one database
    (as two worker processes are), and a key per scope."""
    loaded = load_config(write_server_config(tmp_path, store_url))
    keys = {scope.value: make_key(server_store, f"k-{scope.value}", scope) for scope in Scope}
    other = open_store(store_url)
    first = create_app(loaded, server_store, poll_s=0.05)
    second = create_app(loaded, other, poll_s=0.05)
    try:
        with serve_app(first) as url_a, serve_app(second) as url_b:
            yield url_a, url_b, keys
    finally:
        other.close()


def test_a_client_that_resumes_gets_every_event_once_in_order(
    two_workers: tuple[str, str, dict[str, str]], server_store: Store
) -> None:
    """Replay, live events written through the other worker, a gap while disconnected,
    and the resume: ids 1..9 arrive exactly once, increasing."""
    url_a, url_b, keys = two_workers
    reader = {"X-API-Key": keys["read"]}
    admin = {"X-API-Key": keys["admin"]}
    alerts = [open_alert(server_store, n) for n in range(3)]
    got: list[dict[str, Any]] = []
    with connect(ws_url(url_b, after=0), additional_headers=reader) as ws:
        got += receive(ws, 3)  # replayed
        for alert_id in alerts[:2]:  # written through worker A, seen by worker B
            answer = httpx.post(f"{url_a}/api/v1/alerts/{alert_id}/acknowledge", headers=admin)
            assert answer.status_code == 200
        got += receive(ws, 2)
    last = got[-1]["id"]
    for alert_id in alerts:  # while the client is away
        httpx.post(f"{url_a}/api/v1/alerts/{alert_id}/resolve", headers=admin)
    with connect(ws_url(url_b, after=last), additional_headers=reader) as ws:
        got += receive(ws, 3)
        open_alert(server_store, 99)
        got += receive(ws, 1)
    ids = [event["id"] for event in got]
    assert ids == sorted(set(ids)) and len(ids) == 9
    assert [e["event"] for e in got] == ["opened"] * 3 + ["acknowledged"] * 2 + ["resolved"] * 3 + [
        "opened"
    ]
    assert got[3]["alert"]["state"] == "acknowledged"
    assert got[-1]["alert"]["summary"] == "alert 99"


def test_server_sent_events_replay_with_last_event_id(
    two_workers: tuple[str, str, dict[str, str]], server_store: Store
) -> None:
    """Accept: text/event-stream gets the same events; Last-Event-ID resumes after it."""
    url_a, _url_b, keys = two_workers
    for n in range(3):
        open_alert(server_store, n)
    with server_store.read() as connection:
        first, *rest = [e.id for e in sq.alert_events_after(connection, 0)]
    headers = {
        "X-API-Key": keys["read"],
        "Accept": "text/event-stream",
        "Last-Event-ID": str(first),
    }
    ids: list[int] = []
    with httpx.stream(
        "GET", f"{url_a}/api/v1/alerts/stream", headers=headers, timeout=RECEIVE_TIMEOUT_S
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                ids.append(json.loads(line[6:])["id"])
            if len(ids) == 2:
                break
    assert ids == rest
    plain = httpx.get(f"{url_a}/api/v1/alerts/stream", headers={"X-API-Key": keys["read"]})
    assert plain.status_code == 406


def test_the_websocket_refuses_missing_and_wrong_keys(
    two_workers: tuple[str, str, dict[str, str]],
) -> None:
    """No key, an agent key and a made-up key are refused at the upgrade."""
    url_a, _url_b, keys = two_workers
    for headers in ({}, {"X-API-Key": keys["agent"]}, {"X-API-Key": "cvk_" + "A" * 56}):
        with (
            pytest.raises(InvalidStatus) as caught,
            connect(ws_url(url_a), additional_headers=headers),
        ):
            pass
        assert caught.value.response.status_code == 403
