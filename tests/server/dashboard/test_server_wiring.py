"""The dashboard inside ``certvigil serve``'s app: acknowledgements reach the event log,
agents are listed, and the session cookie opens the live stream and nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from certvigil.config.loading import load_config
from certvigil.server.app import create_app
from certvigil.server.dashboard.wiring import attach_dashboard
from certvigil.store import Store, open_store
from certvigil.store import server_queries as sq
from tests.server.dashboard.support import Seeded, add_user, csrf_of, log_in, seed
from tests.store.factories import NOW


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[FastAPI, Store, Seeded]]:
    """The server app with the dashboard attached, background tasks off."""
    config = tmp_path / "certvigil.yaml"
    config.write_text(f"database_url: {tmp_path / 'srv.db'}\n")
    loaded = load_config(config)
    with open_store(loaded.database_url) as store:
        seeded = seed(store)
        add_user(store)
        app = create_app(loaded, store, clock=lambda: NOW, background=False)
        attach_dashboard(app, store)
        yield app, store, seeded


def run(app: FastAPI, scenario: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://srv.test") as client:
            return await scenario(client)

    return asyncio.run(main())


def test_acknowledging_on_a_page_is_told_on_the_stream(server) -> None:
    """An acknowledgement through the dashboard logs an ``acknowledged`` event naming
    the user, as one through the API does."""
    app, store, seeded = server
    with store.read() as connection:
        before = sq.last_alert_event_id(connection)

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        await log_in(client)
        token = csrf_of((await client.get("/dashboard/alerts")).text)
        return await client.post(
            f"/dashboard/alerts/{seeded.alert_id}/acknowledge", data={"csrf_token": token}
        )

    assert run(app, scenario).status_code == 303
    with store.read() as connection:
        events = sq.alert_events_after(connection, before)
    assert [(e.alert_id, e.event) for e in events] == [(seeded.alert_id, "acknowledged")]
    assert events[0].payload["acknowledged_by"] == "alice"


def test_the_session_cookie_opens_the_stream_only(server) -> None:
    """With only a session cookie, the stream accepts the request (it then asks for
    the event-stream type: 406, past authentication), while other API routes and the
    stream's POST-like uses still need a key (401)."""
    app, _, seeded = server

    async def scenario(client: httpx.AsyncClient) -> dict[str, int]:
        anonymous = await client.get("/api/v1/alerts/stream")
        await log_in(client)
        return {
            "stream without session": anonymous.status_code,
            "stream with session": (await client.get("/api/v1/alerts/stream")).status_code,
            "certificates": (await client.get("/api/v1/certificates")).status_code,
            "alerts": (await client.get("/api/v1/alerts")).status_code,
            "acknowledge": (
                await client.post(f"/api/v1/alerts/{seeded.alert_id}/acknowledge", json={})
            ).status_code,
            "stream with a bad key": (
                await client.get("/api/v1/alerts/stream", headers={"X-API-Key": "cv_bad"})
            ).status_code,
        }

    assert run(app, scenario) == {
        "stream without session": 401,
        "stream with session": 406,
        "certificates": 401,
        "alerts": 401,
        "acknowledge": 401,
        "stream with a bad key": 401,
    }


def test_agents_page_lists_agents_and_flags_silent_ones(server) -> None:
    """Each agent shows with its version, targets and backlog; one silent for longer than
    three intervals is marked silent."""
    app, store, _ = server
    with store.write() as connection:
        for name, last_contact in (
            ("agent-dc1", NOW - timedelta(minutes=5)),
            ("agent-<dc2>", NOW - timedelta(hours=5)),
        ):
            sq.record_agent_contact(
                connection,
                name=name,
                api_key_id=None,
                version="0.1.0",
                tags=["dc"],
                interval_s=3600,
                targets=12,
                backlog=3,
                now=last_contact,
            )

    async def scenario(client: httpx.AsyncClient) -> str:
        await log_in(client)
        page = await client.get("/dashboard/agents")
        assert page.status_code == 200
        return page.text

    html = run(app, scenario)
    rows = html.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert len(rows) == 2
    assert "agent-dc1" in rows[0] and "reporting" in rows[0] and "<td>12</td>" in rows[0]
    assert "agent-&lt;dc2&gt;" in rows[1] and "silent" in rows[1]


def test_the_api_document_leaves_the_pages_out(server) -> None:
    """The OpenAPI document (which the authorization matrix walks) lists no page."""
    app, _, _ = server

    async def scenario(client: httpx.AsyncClient) -> dict[str, Any]:
        response = await client.get("/api/v1/openapi.json")
        assert response.status_code == 200
        return dict(response.json())

    paths = run(app, scenario)["paths"]
    assert paths and not [p for p in paths if p.startswith("/dashboard")]
