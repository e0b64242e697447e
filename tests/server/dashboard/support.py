"""A dashboard to test against: a FastAPI app with the dashboard router over a real store,
seeded through the store's own ingest, and a client that logs in like a browser."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import httpx
from fastapi import FastAPI

from certvigil.alerts.engine import AlertEngine
from certvigil.analysis.model import Finding, Severity
from certvigil.server.dashboard.auth import DashboardSettings, hash_password
from certvigil.server.dashboard.router import dashboard_router
from certvigil.store import Store
from certvigil.store import dashboard as board
from certvigil.targets.target import Target
from tests.store.factories import NOW, facts, failed_report, ok_report

USER = "alice"
PASSWORD = "correct horse battery"
HOSTILE_CN = '<script>alert("cn")</script>\u202eevil'
HOSTILE_ISSUER = "CN=<img src=x onerror=alert(1)>,O=Evil"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True, slots=True)
class Seeded:
    """What :func:`seed` put in the store."""

    hostile_sha256: str
    soon_sha256: str
    alert_id: int
    hosts: tuple[str, ...]


def seed(store: Store, *, extra_endpoints: int = 0) -> Seeded:
    """Endpoints with certificates expiring at known weeks, one hostile certificate, one
    failing endpoint and one open alert (raised by the alert engine from a real report)."""
    plan = [
        ("www.example.test", 3, "CN=R11,O=Let's Encrypt,C=US"),
        ("api.example.test", 10, "CN=R11,O=Let's Encrypt,C=US"),
        ("internal-db.example.test", 45, "CN=Corp Issuing CA,O=Example Corp"),
        ("mail.example.test", 200, "CN=Corp Issuing CA,O=Example Corp"),
        ("old.example.test", -5, "CN=Corp Issuing CA,O=Example Corp"),
    ]
    plan += [
        (f"bulk{i:03d}.example.test", 20 + i % 300, "CN=Bulk CA") for i in range(extra_endpoints)
    ]
    engine = AlertEngine(store)
    for host, days, issuer in plan:
        leaf = facts(host, not_after_utc=NOW + timedelta(days=days), issuer=issuer)
        report = ok_report(Target(host=host, port=443), (leaf,))
        engine.record_and_process(report, NOW, tags=["prod"])
    hostile = facts(HOSTILE_CN, not_after_utc=NOW + timedelta(days=60), issuer=HOSTILE_ISSUER)
    store.record_report(
        ok_report(
            Target(host="evil.example.test", port=443),
            (hostile,),
            findings=(
                Finding(
                    code="weak_thing",
                    severity=Severity.WARNING,
                    message='finding with <b>markup</b> & "quotes"',
                ),
            ),
        )
    )
    down = Target(host="down.example.test", port=443)
    store.record_report(failed_report(down))
    alerts = engine.list_alerts()
    if not alerts:
        raise RuntimeError("the seed raised no alert")
    soon = facts("www.example.test", not_after_utc=NOW + timedelta(days=3))
    return Seeded(
        hostile_sha256=hostile.sha256_hex,
        soon_sha256=soon.sha256_hex,
        alert_id=alerts[0].id,
        hosts=tuple(h for h, _, _ in plan),
    )


def add_user(store: Store, name: str = USER, password: str = PASSWORD) -> None:
    """A dashboard user, as ``certvigil users add`` makes one."""
    with store.write() as connection:
        board.add_user(connection, name=name, password_hash=hash_password(password), now=NOW)


def make_app(store: Store, settings: DashboardSettings | None = None) -> FastAPI:
    """The dashboard alone in an app, with the clock pinned to the seed's time."""
    app = FastAPI()
    app.include_router(
        dashboard_router(store, settings=settings or DashboardSettings(clock=lambda: NOW))
    )
    return app


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    if found is None:
        raise AssertionError("no csrf_token field on the page")
    return found.group(1)


async def log_in(
    client: httpx.AsyncClient, name: str = USER, password: str = PASSWORD
) -> httpx.Response:
    """Fetches the log-in form and submits it, as a browser does."""
    form = await client.get("/dashboard/login")
    return await client.post(
        "/dashboard/login",
        data={
            "csrf_token": csrf_of(form.text),
            "name": name,
            "password": password,
            "next": "/dashboard/",
        },
    )


def client_for(app: FastAPI, *, https: bool = False) -> httpx.AsyncClient:
    """An httpx client talking to the app in-process (real ASGI, no socket)."""
    scheme = "https" if https else "http"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50000)),
        base_url=f"{scheme}://dashboard.test",
    )
