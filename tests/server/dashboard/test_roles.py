"""Dashboard roles: a viewer reads every page but cannot acknowledge or resolve alerts."""

from __future__ import annotations

import asyncio
import re

import httpx

from certvigil.server.dashboard.auth import hash_password
from certvigil.store import AlertState, Store
from certvigil.store import dashboard as board
from certvigil.store.outbox import list_alerts
from tests.server.dashboard.support import PASSWORD, USER, client_for, csrf_of, log_in, make_app
from tests.store.factories import NOW

VIEWER = "noc"


def _add_viewer(store: Store) -> None:
    with store.write() as connection:
        board.add_user(
            connection,
            name=VIEWER,
            password_hash=hash_password(PASSWORD),
            now=NOW,
            role=board.UserRole.VIEWER,
        )


def _open_alert_id(store: Store) -> int:
    with store.read() as connection:
        return list_alerts(connection, states=(AlertState.OPEN,), limit=1)[0].id


def _state(store: Store, alert_id: int) -> AlertState:
    with store.read() as connection:
        (found,) = [a for a in list_alerts(connection) if a.id == alert_id]
    return found.state


def _try_acknowledge(store: Store, name: str, alert_id: int) -> tuple[str, httpx.Response]:
    async def main() -> tuple[str, httpx.Response]:
        async with client_for(make_app(store)) as client:
            assert (await log_in(client, name=name)).status_code == 303
            page = await client.get("/dashboard/alerts")
            assert page.status_code == 200
            answer = await client.post(
                f"/dashboard/alerts/{alert_id}/acknowledge",
                data={"csrf_token": csrf_of(page.text)},
            )
            return page.text, answer

    return asyncio.run(main())


def test_a_viewer_reads_alerts_but_cannot_change_them(seeded_store) -> None:
    """The viewer's alert page has no acknowledge or resolve button, and a forged POST
    with its own valid CSRF token is refused (403) and changes nothing."""
    store, _ = seeded_store
    _add_viewer(store)
    alert_id = _open_alert_id(store)

    page, answer = _try_acknowledge(store, VIEWER, alert_id)

    assert f'data-alert-id="{alert_id}"' in page
    assert not re.search(r"/alerts/\d+/(acknowledge|resolve)", page)
    assert answer.status_code == 403
    assert "viewer" in answer.text
    assert _state(store, alert_id) is AlertState.OPEN


def test_an_admin_still_acknowledges(seeded_store) -> None:
    """The user the seed adds (an admin, the default role) sees the buttons and acts."""
    store, _ = seeded_store
    alert_id = _open_alert_id(store)

    page, answer = _try_acknowledge(store, USER, alert_id)

    assert f"/alerts/{alert_id}/acknowledge" in page
    assert answer.status_code == 303
    assert _state(store, alert_id) is AlertState.ACKNOWLEDGED
