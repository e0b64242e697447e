"""Puts the dashboard into ``certvigil serve``: its pages, the server's agents, alert
changes that reach the live stream, and the browser's session on that stream.

A logged-in browser follows ``/api/v1/alerts/stream`` with its session cookie instead
of an API key: :class:`SessionBridge` turns a valid session into a read-only principal
for that one path (and for GET only), so the cookie opens nothing else of the API.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from certvigil.errors import UsageError
from certvigil.server.dashboard import auth
from certvigil.server.dashboard.hooks import AgentSummary, CtFindingSummary
from certvigil.server.dashboard.router import dashboard_router
from certvigil.server.keys import Principal
from certvigil.server.keys import Scope as KeyScope
from certvigil.server.proxies import parse_trusted_proxies
from certvigil.store import Store, server_queries
from certvigil.store import dashboard as board

STREAM_PATH = "/api/v1/alerts/stream"


class SessionBridge:
    """ASGI middleware: a dashboard session may read the live alert stream (GET only).

    A request that carries an API key keeps it: the key, not the cookie, decides.
    """

    def __init__(self, app: ASGIApp, *, store: Store, settings: auth.DashboardSettings) -> None:
        self.app = app
        self.store = store
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == STREAM_PATH and scope["method"] == "GET":
            headers = dict(scope.get("headers") or [])
            if b"x-api-key" not in headers and b"authorization" not in headers:
                user = await run_in_threadpool(self._session_user, headers.get(b"cookie", b""))
                if user is not None:
                    scope.setdefault("state", {})["principal"] = Principal(
                        name=f"dashboard:{user}", scope=KeyScope.READ, key_id=None
                    )
        await self.app(scope, receive, send)

    def _session_user(self, cookie_header: bytes) -> str | None:
        from http.cookies import CookieError, SimpleCookie

        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(cookie_header.decode("latin-1"))
        except CookieError:
            return None
        morsel = cookies.get(auth.SESSION_COOKIE)
        if morsel is None or not morsel.value or len(morsel.value) > 200:
            return None
        with self.store.read() as connection:
            found = board.find_session(
                connection, auth.token_digest(morsel.value), now=self.settings.clock()
            )
        return found.user_name if found is not None else None


def attach_dashboard(app: FastAPI, store: Store) -> None:
    """Adds the dashboard to the server app built by ``server.app.create_app``.

    The pages use the server's clock, its alert engine (with its routes) and its event
    log: an acknowledgement from a page reaches every stream client like one through the
    API. Call it before the app serves its first request.
    """
    from certvigil.server.api.v1 import change_alert
    from certvigil.server.app import server_state
    from certvigil.server.errors import ApiError

    state = app.state.server
    settings = auth.DashboardSettings(
        clock=state.clock,
        trusted_proxies=parse_trusted_proxies(state.loaded.config.serve.trusted_proxies),
    )

    def agents() -> list[AgentSummary]:
        now = state.clock()
        with store.read() as connection:
            records = server_queries.list_agents(connection)
            silent = {
                a.name
                for a in server_queries.silent_agents(
                    connection, now=now, intervals=state.silence_intervals
                )
            }
        return [
            AgentSummary(
                name=a.name,
                version=a.version or None,
                last_contact_utc=a.last_contact_utc,
                targets=a.targets,
                backlog=a.backlog,
                is_silent=a.name in silent,
            )
            for a in sorted(records, key=lambda r: r.last_contact_utc, reverse=True)
        ]

    def change(request: Request, alert_id: int, user: str, resolve: bool, note: str | None) -> None:
        principal = Principal(name=user, scope=KeyScope.ADMIN, key_id=None)
        try:
            change_alert(server_state(request), alert_id, principal, resolve=resolve, note=note)
        except ApiError as exc:
            raise UsageError(exc.message) from exc

    def ct_findings(limit: int) -> list[CtFindingSummary]:
        from certvigil.ct.watch.persist import list_findings

        with store.read() as connection:
            records = list_findings(connection, limit=limit, newest_first=True)
        return [
            CtFindingSummary(
                logged_at_utc=r.logged_at_utc,
                names=r.names,
                issuer=r.issuer,
                sha256_hex=r.sha256_hex,
                verdict=", ".join(r.kinds) or "matched",
            )
            for r in records
        ]

    def last_event_id() -> int:
        with store.read() as connection:
            return server_queries.last_alert_event_id(connection)

    app.include_router(
        dashboard_router(
            store,
            settings=settings,
            alerts=state.engine(),
            agents=agents,
            alert_changer=change,
            last_event_id=last_event_id,
            # The page says the CT watch is not set up unless the file has a ct: section.
            ct_findings=ct_findings if state.loaded.config.ct is not None else None,
        )
    )
    app.add_middleware(SessionBridge, store=store, settings=settings)
