"""The dashboard over HTTP: log-in, sessions, CSRF, throttling, escaping, assets."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from certvigil.server.dashboard.auth import SESSION_COOKIE, DashboardSettings
from certvigil.server.dashboard.forms import MAX_FORM_BYTES
from certvigil.store import AlertState, Store
from tests.server.dashboard.support import (
    HOSTILE_CN,
    PASSWORD,
    USER,
    client_for,
    csrf_of,
    log_in,
    make_app,
)
from tests.store.factories import NOW

PAGES = (
    "/dashboard/",
    "/dashboard/inventory",
    "/dashboard/alerts",
    "/dashboard/agents",
    "/dashboard/ct",
)


def run(
    store: Store,
    scenario: Callable[[httpx.AsyncClient], Awaitable[Any]],
    *,
    https: bool = False,
    settings: DashboardSettings | None = None,
) -> Any:
    async def main() -> Any:
        async with client_for(make_app(store, settings), https=https) as client:
            return await scenario(client)

    return asyncio.run(main())


class _References(HTMLParser):
    """Every URL a page would make a browser fetch or follow."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "action", "srcset", "poster", "data"} and value:
                self.urls.append(value)


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_a_visitor_without_session_to_log_in(seeded_store, path: str) -> None:
    """Every page answers a visitor without a session with a redirect to the log-in page."""
    store, _ = seeded_store

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(path)

    response = run(store, scenario)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/dashboard/login?next=")


def test_log_in_sets_a_strict_http_only_cookie_and_opens_the_overview(seeded_store) -> None:
    """A right password gives a session cookie (HttpOnly, SameSite=Strict, not Secure
    over plain HTTP) and the overview then shows the counts."""
    store, _ = seeded_store

    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        login = await log_in(client)
        return login, await client.get("/dashboard/")

    login, overview = run(store, scenario)
    assert login.status_code == 303
    assert login.headers["location"] == "/dashboard/"
    cookie = next(
        c for c in login.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Secure" not in cookie
    assert overview.status_code == 200
    assert "Expiry timeline" in overview.text
    # Seven leaves: five planned, the hostile one; the failing endpoint serves none.
    assert re.search(r'<span class="num">6</span> leaf certificates', overview.text)
    assert re.search(r'<span class="num">1</span> expired', overview.text)


def test_session_cookie_is_secure_over_tls(seeded_store) -> None:
    """Served over https, the session cookie is marked Secure."""
    store, _ = seeded_store

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await log_in(client)

    login = run(store, scenario, https=True)
    cookie = next(
        c for c in login.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")
    )
    assert "Secure" in cookie


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(seeded_store) -> None:
    """A wrong password and an unknown user get the same answer, 401, and no session."""
    store, _ = seeded_store

    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        return await log_in(client, password="wrong password"), await log_in(
            client, name="nobody", password=PASSWORD
        )

    wrong_password, unknown_user = run(store, scenario)
    for response in (wrong_password, unknown_user):
        assert response.status_code == 401
        assert "wrong user name or password" in response.text
        assert not any(
            c.startswith(SESSION_COOKIE) for c in response.headers.get_list("set-cookie")
        )


def test_login_is_rate_limited_per_user_even_with_the_right_password(seeded_store) -> None:
    """After five failures for one name, even the right password is refused (429) until
    the window has passed; then it works again."""
    store, _ = seeded_store
    clock = {"now": NOW}
    settings = DashboardSettings(clock=lambda: clock["now"])

    async def scenario(client: httpx.AsyncClient) -> list[int]:
        codes = [(await log_in(client, password=f"guess {i}")).status_code for i in range(5)]
        codes.append((await log_in(client)).status_code)
        clock["now"] = NOW + timedelta(minutes=16)
        codes.append((await log_in(client)).status_code)
        return codes

    assert run(store, scenario, settings=settings) == [401] * 5 + [429, 303]


def test_login_is_rate_limited_per_client_address(seeded_store) -> None:
    """Failures spread over many names from one address are stopped at the address limit."""
    store, _ = seeded_store
    settings = DashboardSettings(clock=lambda: NOW, login_failures_per_address=3)

    async def scenario(client: httpx.AsyncClient) -> list[int]:
        codes = [
            (await log_in(client, name=f"user{i}", password="x" * 9)).status_code for i in range(3)
        ]
        codes.append((await log_in(client)).status_code)
        return codes

    assert run(store, scenario, settings=settings) == [401, 401, 401, 429]


def test_login_without_its_form_token_is_forbidden(seeded_store) -> None:
    """A log-in POST whose token does not match the form's cookie is refused (403)."""
    store, _ = seeded_store

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        await client.get("/dashboard/login")
        return await client.post(
            "/dashboard/login", data={"csrf_token": "forged", "name": USER, "password": PASSWORD}
        )

    assert run(store, scenario).status_code == 403


def test_acknowledge_needs_the_session_csrf_token(seeded_store) -> None:
    """Acknowledging without the CSRF token, or with a wrong one, is 403 and changes
    nothing; with the page's token it acknowledges the alert in the user's name."""
    store, seeded = seeded_store
    path = f"/dashboard/alerts/{seeded.alert_id}/acknowledge"

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        await log_in(client)
        page = await client.get("/dashboard/alerts")
        token = csrf_of(page.text)
        return [
            await client.post(path, data={}),
            await client.post(path, data={"csrf_token": token[:-1] + "x"}),
            await client.post(path, data={"csrf_token": token}),
        ]

    missing, wrong, right = run(store, scenario)
    assert missing.status_code == 403
    assert wrong.status_code == 403
    assert right.status_code == 303
    alert = store.get_alert(seeded.alert_id)
    assert alert is not None
    assert alert.state is AlertState.ACKNOWLEDGED
    assert alert.acknowledged_by == USER


def test_resolve_through_the_form_resolves_and_reports_back(seeded_store) -> None:
    """Resolving redirects to the alerts page, which says so; a second resolve is 409."""
    store, seeded = seeded_store
    path = f"/dashboard/alerts/{seeded.alert_id}/resolve"

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        await log_in(client)
        token = csrf_of((await client.get("/dashboard/alerts")).text)
        first = await client.post(path, data={"csrf_token": token})
        shown = await client.get(first.headers["location"])
        again = await client.post(path, data={"csrf_token": token})
        return [first, shown, again]

    first, shown, again = run(store, scenario)
    assert first.status_code == 303
    assert f"Alert {seeded.alert_id} resolved." in shown.text
    assert again.status_code == 409
    alert = store.get_alert(seeded.alert_id)
    assert alert is not None and alert.state is AlertState.RESOLVED


def test_post_without_session_is_forbidden(seeded_store) -> None:
    """A form POST with no session is 403, whatever token it carries."""
    store, seeded = seeded_store

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(
            f"/dashboard/alerts/{seeded.alert_id}/acknowledge", data={"csrf_token": "x"}
        )

    assert run(store, scenario).status_code == 403


def test_oversized_and_wrongly_typed_forms_are_refused(seeded_store) -> None:
    """A form body over the bound is 413 and a JSON body 415, before any other check."""
    store, seeded = seeded_store
    path = f"/dashboard/alerts/{seeded.alert_id}/acknowledge"

    async def scenario(client: httpx.AsyncClient) -> list[int]:
        await log_in(client)
        big = await client.post(path, data={"note": "x" * (MAX_FORM_BYTES + 1)})

        async def chunks():  # no Content-Length: the bound holds on the bytes themselves
            for _ in range(40):
                yield b"a" * 1024

        streamed = await client.post(
            path,
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        as_json = await client.post(path, json={"csrf_token": "x"})
        return [big.status_code, streamed.status_code, as_json.status_code]

    assert run(store, scenario) == [413, 413, 415]


def test_hostile_certificate_fields_are_escaped_everywhere(seeded_store) -> None:
    """A CN with <script> and a bidi override, an issuer with an <img onerror> and a
    finding with markup show as text on the inventory, overview and certificate pages."""
    store, seeded = seeded_store

    async def scenario(client: httpx.AsyncClient) -> list[str]:
        await log_in(client)
        pages = [
            await client.get("/dashboard/inventory", params={"q": "script"}),
            await client.get("/dashboard/"),
            await client.get(f"/dashboard/certificates/{seeded.hostile_sha256}"),
        ]
        assert all(p.status_code == 200 for p in pages), [p.status_code for p in pages]
        return [p.text for p in pages]

    inventory, overview, certificate = run(store, scenario)
    for html in (inventory, certificate):
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&#34;cn&#34;)&lt;/script&gt;" in html
        assert "\u202e" not in html
        assert "\\u202eevil" in html
    assert "<img src=x" not in certificate and "&lt;img src=x onerror=alert(1)&gt;" in certificate
    assert "<b>markup</b>" not in certificate and "&lt;b&gt;markup&lt;/b&gt;" in certificate
    # The issuer is on the overview's issuer chart (SVG text) and table.
    assert "<img src=x" not in overview and "&lt;img src=x" in overview
    assert HOSTILE_CN not in inventory + overview + certificate


def test_no_page_refers_to_anything_off_the_server(seeded_store) -> None:
    """Every src, href and action on every page is a path on this server, and the
    Content-Security-Policy forbids anything else."""
    store, seeded = seeded_store

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        login_page = await client.get("/dashboard/login")
        await log_in(client)
        paths = [
            *PAGES,
            f"/dashboard/certificates/{seeded.hostile_sha256}",
            "/dashboard/endpoints/1",
        ]
        return [login_page, *[await client.get(p) for p in paths]]

    for response in run(store, scenario):
        assert response.status_code == 200, response.url
        parser = _References()
        parser.feed(response.text)
        assert parser.urls, response.url
        off_server = [
            u
            for u in parser.urls
            if not (u.startswith(("/", "#")) and not u.startswith("//")) and u != "data:,"
        ]
        assert off_server == [], response.url
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert "http://" not in response.text and "https://" not in response.text


def test_inventory_filters_sorts_and_pages(seeded_store) -> None:
    """Search, expiry filter, sort order and paging select the rows they promise."""
    store, _ = seeded_store

    async def scenario(client: httpx.AsyncClient) -> dict[str, str]:
        await log_in(client)
        get = client.get
        return {
            "search": (await get("/dashboard/inventory", params={"q": "internal"})).text,
            "within": (await get("/dashboard/inventory", params={"within": "30"})).text,
            "desc": (
                await get(
                    "/dashboard/inventory", params={"sort": "host", "dir": "desc", "per_page": "2"}
                )
            ).text,
            "page2": (
                await get(
                    "/dashboard/inventory", params={"sort": "host", "per_page": "2", "page": "2"}
                )
            ).text,
            "bad": (await get("/dashboard/inventory", params={"page": "zero"})).text,
        }

    pages = run(store, scenario)

    def hosts(html: str) -> list[str]:
        return re.findall(r'/dashboard/endpoints/\d+">([^<:]+):443<', html)

    assert hosts(pages["search"]) == ["internal-db.example.test"]
    # Expired (-5 d), 3 d and 10 d are within 30 days; 45, 60 and 200 are not.
    assert hosts(pages["within"]) == ["old.example.test", "www.example.test", "api.example.test"]
    assert hosts(pages["desc"]) == ["www.example.test", "old.example.test"]
    # api, evil, internal-db, mail, old, www: the second pair.
    assert hosts(pages["page2"]) == ["internal-db.example.test", "mail.example.test"]
    assert "Page 2 of 3" in pages["page2"]
    assert "page: expected a whole number" in pages["bad"]


def test_unknown_things_are_404_pages_not_errors(seeded_store) -> None:
    """A missing endpoint, certificate or asset, and ids that are not ids, answer 404."""
    store, _ = seeded_store

    async def scenario(client: httpx.AsyncClient) -> list[int]:
        await log_in(client)
        paths = [
            "/dashboard/endpoints/999",
            "/dashboard/endpoints/99999999999999999999999",
            "/dashboard/endpoints/-1",
            "/dashboard/certificates/" + "ab" * 32,
            "/dashboard/certificates/zz",
            "/dashboard/static/..%2Fauth.py",
            "/dashboard/static/missing.css",
        ]
        return [(await client.get(p)).status_code for p in paths]

    assert run(store, scenario) == [404] * 7


def test_logout_ends_the_session(seeded_store) -> None:
    """After logging out, the old cookie no longer opens pages."""
    store, _ = seeded_store

    async def scenario(client: httpx.AsyncClient) -> tuple[int, int]:
        await log_in(client)
        page = await client.get("/dashboard/")
        cookie = client.cookies.get(SESSION_COOKIE)
        out = await client.post("/dashboard/logout", data={"csrf_token": csrf_of(page.text)})
        client.cookies.set(SESSION_COOKIE, cookie or "", path="/")
        return out.status_code, (await client.get("/dashboard/")).status_code

    assert run(store, scenario) == (303, 303)
