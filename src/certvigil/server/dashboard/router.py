"""The dashboard's pages: overview, inventory, endpoint, certificate, alerts, agents, CT.

Pages are rendered on the server (Jinja2, autoescaped, every outside string also made
visible by ``text_escape.visible``) and readable without JavaScript; charts are inline
SVG. Every asset is served from the package under ``/dashboard/static/``, and the
Content-Security-Policy allows nothing from elsewhere. Reads go through ``store.dashboard``
and ``store.queries``; writes (acknowledge, resolve) through the alert engine.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from certvigil.alerts.engine import AlertEngine
from certvigil.errors import UsageError
from certvigil.server.dashboard import auth
from certvigil.server.dashboard.charts import bar_list_svg, expiry_timeline_svg
from certvigil.server.dashboard.forms import FormError, read_form
from certvigil.server.dashboard.hooks import AgentsSource, CtFindingsSource
from certvigil.server.proxies import client_address, forwarded_scheme
from certvigil.store import AlertState, Store, queries, server_queries
from certvigil.store import dashboard as board
from certvigil.store.outbox import list_alerts
from certvigil.text_escape import visible

PREFIX = "/dashboard"

OVERVIEW_KEEP_S = 5.0
"""Longest reuse of the overview's inventory numbers (while nothing new is recorded)."""

SECURITY_HEADERS = {
    # Nothing from elsewhere: scripts, styles, fonts, images and connections are
    # certvigil's own, so the pages work air-gapped and injected markup cannot load
    # anything or run inline script.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_SHA256 = re.compile(r"[0-9a-fA-F:]{64,95}")
_ALERT_STATES: Mapping[str, tuple[AlertState, ...] | None] = {
    "active": (AlertState.OPEN, AlertState.ACKNOWLEDGED),
    "open": (AlertState.OPEN,),
    "acknowledged": (AlertState.ACKNOWLEDGED,),
    "resolved": (AlertState.RESOLVED,),
    "all": None,
}
_PER_PAGE_CHOICES = (25, 50, 100, 200)


def _load_static() -> dict[str, tuple[bytes, str]]:
    folder = importlib.resources.files("certvigil.server.dashboard") / "static"
    assets: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _STATIC_TYPES:
            assets[entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return assets


def _finalize(value: Any) -> Any:
    # Every string a template prints is made visible (bidi overrides, zero-width and
    # control characters shown as escapes) before autoescaping; Markup built by
    # certvigil itself (the charts) is left alone.
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("certvigil.server.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["day"] = lambda value: value.strftime("%Y-%m-%d") if value else "—"
    return env


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "—"


def _days_left(not_after_utc: datetime, now: datetime) -> int:
    return (not_after_utc - now) // timedelta(days=1)


def _safe_next(value: str | None) -> str:
    """A local dashboard path to return to after log-in, never another site."""
    if value and value.startswith(PREFIX + "/") and "//" not in value and "\\" not in value:
        return value
    return PREFIX + "/"


class _Pages:
    """The handlers, sharing the store, settings and template environment."""

    def __init__(
        self,
        store: Store,
        settings: auth.DashboardSettings,
        alerts: AlertEngine,
        agents: AgentsSource | None,
        ct_findings: CtFindingsSource | None,
        alert_changer: AlertChanger | None,
        last_event_id: Callable[[], int] | None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.alerts = alerts
        self.agents = agents
        self.ct_findings = ct_findings
        self.alert_changer = alert_changer
        self.last_event_id = last_event_id
        self.env = _environment()
        self.static = _load_static()
        self._overview: tuple[int, float, board.Overview] | None = None

    # Plumbing -----------------------------------------------------------------------

    def overview_data(self, connection: Connection, now: datetime) -> board.Overview:
        """The overview's numbers; the inventory's part from the last
        ``OVERVIEW_KEEP_S`` seconds while no observation has been recorded since, the
        alert counts always fresh.

        At 100,000 certificates the inventory's aggregates take 150-350 ms (the issuer
        count looks up every current leaf's certificate); a page reloaded or opened by
        several people at once reuses them, and any new observation (a report, a
        scan, a failure) makes the next page compute them again.
        """
        version = server_queries.inventory_version(connection)
        kept = self._overview
        if kept is not None and kept[0] == version and kept[1] > time.monotonic():
            inventory_part = kept[2]
        else:
            inventory_part = board.overview(connection, now=now, with_alerts=False)
            self._overview = (version, time.monotonic() + OVERVIEW_KEEP_S, inventory_part)
        return dataclasses.replace(
            inventory_part, open_alerts_by_severity=board.open_alerts_by_severity(connection)
        )

    def now(self) -> datetime:
        return self.settings.clock()

    def secure(self, request: Request) -> bool:
        if self.settings.secure_cookies is not None:
            return self.settings.secure_cookies
        scheme = forwarded_scheme(
            request.client.host if request.client is not None else None,
            request.url.scheme,
            request.headers.get("x-forwarded-proto"),
            self.settings.trusted_proxies,
        )
        return scheme == "https"

    def render(
        self,
        template_name: str,
        request: Request,
        *,
        session: board.SessionRecord | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        template = self.env.get_template(template_name)
        html = template.render(
            prefix=PREFIX,
            session=session,
            csrf=session.csrf_token if session is not None else "",
            path=request.url.path,
            now=self.now(),
            **context,
        )
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)

    def session(self, request: Request) -> board.SessionRecord | None:
        token = request.cookies.get(auth.SESSION_COOKIE)
        if not token or len(token) > 200:
            return None
        with self.store.read() as connection:
            return board.find_session(connection, auth.token_digest(token), now=self.now())

    def login_redirect(self, request: Request) -> RedirectResponse:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(
            f"{PREFIX}/login?{urlencode({'next': target})}",
            status_code=303,
            headers=SECURITY_HEADERS,
        )

    def error(
        self,
        request: Request,
        status: int,
        message: str,
        session: board.SessionRecord | None = None,
    ) -> HTMLResponse:
        return self.render(
            "error.html",
            request,
            session=session,
            status_code=status,
            status=status,
            message=message,
        )

    async def checked_form(
        self, request: Request
    ) -> tuple[board.SessionRecord | None, dict[str, str] | Response]:
        """The session and the form of a POST, or the response refusing it."""
        session = await run_in_threadpool(self.session, request)
        try:
            form = await read_form(request)
        except FormError as exc:
            return session, self.error(request, exc.status, str(exc), session)
        if session is None:
            return None, self.error(request, 403, "you are not logged in (or the session ended)")
        if not auth.tokens_match(session.csrf_token, form.get(auth.CSRF_FIELD)):
            return session, self.error(
                request,
                403,
                "the form's security token is missing or wrong; reload the page",
                session,
            )
        return session, form

    # Log-in -------------------------------------------------------------------------

    def login_page(
        self, request: Request, *, message: str = "", status_code: int = 200, name: str = ""
    ) -> HTMLResponse:
        token = auth.new_token()
        response = self.render(
            "login.html",
            request,
            session=None,
            status_code=status_code,
            login_csrf=token,
            message=message,
            name=name,
            next=_safe_next(request.query_params.get("next")),
        )
        response.set_cookie(
            auth.LOGIN_CSRF_COOKIE,
            token,
            max_age=3600,
            path=PREFIX + "/login",
            httponly=True,
            samesite="strict",
            secure=self.secure(request),
        )
        return response

    async def login(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except FormError as exc:
            return self.error(request, exc.status, str(exc))
        if not auth.tokens_match(
            request.cookies.get(auth.LOGIN_CSRF_COOKIE), form.get(auth.CSRF_FIELD)
        ):
            return self.error(request, 403, "the log-in form expired; reload the page")
        name = form.get("name", "").strip()[: auth.MAX_NAME_CHARS]
        password = form.get("password", "")
        address = client_address(
            request.client.host if request.client is not None else None,
            request.headers.getlist("x-forwarded-for"),
            self.settings.trusted_proxies,
        )
        outcome = await run_in_threadpool(self._check_login, name, password, address)
        if isinstance(outcome, _Refusal):
            status = 429 if "too many" in outcome else 401
            return self.login_page(request, message=outcome, status_code=status, name=name)
        token = outcome
        next_path = _safe_next(form.get("next"))
        response = RedirectResponse(next_path, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(
            auth.SESSION_COOKIE,
            token,
            max_age=int(self.settings.session_lifetime.total_seconds()),
            path="/",  # the live alert stream under /api/v1 reads it too
            httponly=True,
            samesite="strict",
            secure=self.secure(request),
        )
        response.delete_cookie(auth.LOGIN_CSRF_COOKIE, path=PREFIX + "/login")
        return response

    def _check_login(self, name: str, password: str, address: str) -> str:
        """A new session token, or the reason the log-in is refused."""
        now = self.now()
        keys = auth.throttle_keys(name, address)
        limits = {
            keys[0]: self.settings.login_failures_per_user,
            keys[1]: self.settings.login_failures_per_address,
        }
        with self.store.read() as connection:
            if board.login_blocked(connection, limits, now=now, window=self.settings.login_window):
                return _Refusal("too many failed log-ins; wait a few minutes and try again")
            user = board.get_user(connection, name) if name else None
        # argon2 takes tens of milliseconds: outside any transaction.
        if not auth.verify_password(user.password_hash if user else None, password) or user is None:
            with self.store.write() as connection:
                board.record_login_failure(
                    connection, keys, now=now, window=self.settings.login_window
                )
            return _Refusal("wrong user name or password")
        token = auth.new_token()
        with self.store.write() as connection:
            board.clear_login_failures(connection, (keys[0],))
            if auth.needs_rehash(user.password_hash):
                board.set_password_hash(
                    connection, name=user.name, password_hash=auth.hash_password(password)
                )
            board.create_session(
                connection,
                user_id=user.id,
                token_sha256=auth.token_digest(token),
                csrf_token=auth.new_token(),
                now=now,
                lifetime=self.settings.session_lifetime,
            )
        return token

    async def logout(self, request: Request) -> Response:
        _session, form = await self.checked_form(request)
        if not isinstance(form, dict):
            return form
        token = request.cookies.get(auth.SESSION_COOKIE, "")

        def forget() -> None:
            with self.store.write() as connection:
                board.end_session(connection, auth.token_digest(token))

        await run_in_threadpool(forget)
        response = RedirectResponse(f"{PREFIX}/login", status_code=303, headers=SECURITY_HEADERS)
        response.delete_cookie(auth.SESSION_COOKIE, path="/")
        return response

    # Pages --------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.login_redirect(request)
        now = self.now()
        with self.store.read() as connection:
            data = self.overview_data(connection, now)
            recent = list_alerts(
                connection, states=(AlertState.OPEN, AlertState.ACKNOWLEDGED), limit=10
            )
        # The stream resumes after the last event the page already reflects.
        live_after = self.last_event_id() if self.last_event_id is not None else None
        week0 = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return self.render(
            "overview.html",
            request,
            session=session,
            live_after=live_after,
            data=data,
            recent_alerts=recent,
            timeline=expiry_timeline_svg(data.expiring_by_week, start=week0, chart_id="timeline"),
            issuers_chart=bar_list_svg(
                data.issuers, title="Leaf certificates per issuer", chart_id="issuers"
            )
            if data.issuers
            else None,
            grades_chart=bar_list_svg(data.grades, title="Endpoints per grade", chart_id="grades")
            if data.grades
            else None,
            week_start=lambda i: (week0 + timedelta(weeks=i)).strftime("%Y-%m-%d"),
        )

    def inventory(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.login_redirect(request)
        params = request.query_params
        problems: list[str] = []

        def number(name: str, default: int | None, low: int, high: int) -> int | None:
            raw = params.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or not low <= int(raw) <= high:
                problems.append(f"{name}: expected a whole number from {low} to {high}")
                return default
            return int(raw)

        sort_raw = params.get("sort", "expires")
        try:
            sort = board.SortKey(sort_raw)
        except ValueError:
            problems.append(f"sort: one of {', '.join(k.value for k in board.SortKey)}")
            sort = board.SortKey.EXPIRES
        per_page = number("per_page", 50, 1, board.MAX_PAGE_SIZE) or 50
        query = board.InventoryQuery(
            search=params.get("q", "")[:200],
            status=params.get("status") or None,
            expiring_within_days=number("within", None, 0, 3650),
            issuer=params.get("issuer", "")[:200],
            tag=params.get("tag", "")[:100],
            sort=sort,
            descending=params.get("dir") == "desc",
            page=number("page", 1, 1, 1_000_000) or 1,
            per_page=per_page,
        )
        with self.store.read() as connection:
            page = board.inventory_page(connection, query, now=self.now())
            statuses = board.endpoint_statuses(connection)
        pages = max(1, -(-page.total // query.per_page))

        def link(**changes: Any) -> str:
            current = {
                "q": query.search,
                "status": query.status or "",
                "issuer": query.issuer,
                "tag": query.tag,
                "within": ""
                if query.expiring_within_days is None
                else str(query.expiring_within_days),
                "sort": query.sort.value,
                "dir": "desc" if query.descending else "asc",
                "per_page": str(query.per_page),
                "page": str(query.page),
            }
            current.update({k: str(v) for k, v in changes.items()})
            kept = {k: v for k, v in current.items() if v}
            return f"{PREFIX}/inventory?{urlencode(kept)}"

        return self.render(
            "inventory.html",
            request,
            session=session,
            page=page,
            query=query,
            pages=pages,
            statuses=statuses,
            problems=problems,
            link=link,
            sort_keys=list(board.SortKey),
            per_page_choices=_PER_PAGE_CHOICES,
            days_left=_days_left,
            status_code=400 if problems else 200,
        )

    def endpoint(self, request: Request, endpoint_id: int) -> Response:
        session = self.session(request)
        if session is None:
            return self.login_redirect(request)
        with self.store.read() as connection:
            endpoint = board.get_endpoint(connection, endpoint_id)
            if endpoint is None:
                return self.error(request, 404, f"no endpoint {endpoint_id}", session)
            history = queries.endpoint_history(connection, endpoint_id, limit=100)
            changes = queries.endpoint_changes(connection, endpoint_id)
            alerts = list_alerts(connection, endpoint_id=endpoint_id, limit=50)
        return self.render(
            "endpoint.html",
            request,
            session=session,
            endpoint=endpoint,
            history=history,
            changes=tuple(reversed(changes)),
            alerts=alerts,
        )

    def certificate(self, request: Request, sha256: str) -> Response:
        session = self.session(request)
        if session is None:
            return self.login_redirect(request)
        if not _SHA256.fullmatch(sha256):
            return self.error(request, 404, "not a SHA-256 fingerprint", session)
        fingerprint = queries.normalise_fingerprint(sha256)
        with self.store.read() as connection:
            facts = queries.get_certificate(connection, fingerprint)
            if facts is None:
                return self.error(request, 404, "no such certificate in the inventory", session)
            deployments = queries.certificate_deployments(connection, fingerprint)
            chain = [
                (sha, queries.get_certificate(connection, sha))
                for sha in board.latest_chain(connection, fingerprint)
            ]
            findings = board.latest_findings(connection, fingerprint)
            alerts = list_alerts(connection, certificate_sha256=fingerprint, limit=50)
        return self.render(
            "certificate.html",
            request,
            session=session,
            cert=facts,
            deployments=deployments,
            chain=chain,
            findings=findings,
            alerts=alerts,
            days_left=_days_left(facts.not_after_utc, self.now()),
        )

    def alerts_page(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.login_redirect(request)
        state = request.query_params.get("state", "active")
        if state not in _ALERT_STATES:
            state = "active"
        with self.store.read() as connection:
            alerts = list_alerts(connection, states=_ALERT_STATES[state], limit=500)
        return self.render(
            "alerts.html",
            request,
            session=session,
            alerts=alerts,
            state=state,
            states=list(_ALERT_STATES),
            done=request.query_params.get("done", "")[:200],
        )

    async def alert_action(self, request: Request, alert_id: int | None, action: str) -> Response:
        session, form = await self.checked_form(request)
        if not isinstance(form, dict):
            return form
        assert_session = session
        if assert_session is None:  # checked_form answered already; for the type checker
            return self.error(request, 403, "you are not logged in")
        if not assert_session.may_change_alerts:
            return self.error(
                request,
                403,
                "your dashboard role is viewer: it reads alerts, it does not acknowledge "
                "or resolve them",
                assert_session,
            )
        if alert_id is None:
            return self.error(request, 404, "no such alert", assert_session)
        note = form.get("note", "").strip()[:500] or None

        def act() -> str:
            user = assert_session.user_name
            if self.alert_changer is not None:
                self.alert_changer(request, alert_id, user, action == "resolve", note)
            elif action == "acknowledge":
                self.alerts.acknowledge(alert_id, by=user, now=self.now(), note=note)
            else:
                self.alerts.resolve(alert_id, now=self.now(), by=user, note=note)
            return f"Alert {alert_id} {'resolved' if action == 'resolve' else 'acknowledged'}."

        try:
            done = await run_in_threadpool(act)
        except UsageError as exc:
            return self.error(request, 409, str(exc), assert_session)
        back = _safe_next(form.get("back")) if form.get("back") else f"{PREFIX}/alerts"
        separator = "&" if "?" in back else "?"
        return RedirectResponse(
            f"{back}{separator}{urlencode({'done': done})}",
            status_code=303,
            headers=SECURITY_HEADERS,
        )

    def agents_page(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.login_redirect(request)
        agents = self.agents() if self.agents is not None else None
        return self.render("agents.html", request, session=session, agents=agents)

    def ct_page(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.login_redirect(request)
        findings = self.ct_findings(200) if self.ct_findings is not None else None
        return self.render("ct.html", request, session=session, findings=findings)

    def static_file(self, name: str) -> Response:
        asset = self.static.get(name)
        if asset is None:
            return Response("not found", status_code=404, media_type="text/plain")
        body, media_type = asset
        return Response(
            body,
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )


def _row_id(text: str) -> int | None:
    """A database row id from a URL, ``None`` unless it is one (digits, within 63 bits)."""
    if not text.isdigit() or len(text) > 18:
        return None
    return int(text)


AlertChanger = Callable[[Request, int, str, bool, "str | None"], None]
"""Acknowledges (``False``) or resolves (``True``) an alert as a user, with a note;
raises ``UsageError`` when the alert is missing or not in a state that allows it."""


class _Refusal(str):
    """A log-in refused, with the reason to show (a token is a plain ``str``)."""


def dashboard_router(
    store: Store,
    *,
    settings: auth.DashboardSettings | None = None,
    alerts: AlertEngine | None = None,
    agents: AgentsSource | None = None,
    ct_findings: CtFindingsSource | None = None,
    alert_changer: AlertChanger | None = None,
    last_event_id: Callable[[], int] | None = None,
) -> APIRouter:
    """The dashboard's routes, under ``/dashboard``, to include in the server's app.

    Args:
        store: The inventory.
        settings: Sessions, cookies, log-in throttling and the clock.
        alerts: The alert engine acknowledging and resolving (with the server's routes,
            so a manual resolve is notified like an automatic one); one with no routes
            by default.
        agents: Reads the agents for the agents page; ``None`` shows that none report.
        ct_findings: Reads CT findings; ``None`` shows that the CT watch is not set up.
        alert_changer: Acknowledges or resolves for the server (recording the stream
            event with it); ``None`` uses ``alerts`` directly.
        last_event_id: The newest alert-stream event id; with it the overview
            subscribes to the live stream from there, without it no script is loaded.

    Returns:
        The router (leave it out of the OpenAPI document: these are pages, not API).
    """
    pages = _Pages(
        store,
        settings or auth.DashboardSettings(),
        alerts or AlertEngine(store),
        agents,
        ct_findings,
        alert_changer,
        last_event_id,
    )
    router = APIRouter(include_in_schema=False)

    def get(path: str, handler: Callable[..., Any]) -> None:
        router.add_api_route(PREFIX + path, handler, methods=["GET"], response_class=HTMLResponse)

    def post(path: str, handler: Callable[..., Any]) -> None:
        router.add_api_route(PREFIX + path, handler, methods=["POST"], response_class=HTMLResponse)

    def root() -> Response:
        return RedirectResponse(PREFIX + "/", status_code=307)

    def login_form(request: Request) -> Response:
        return pages.login_page(request)

    async def login(request: Request) -> Response:
        return await pages.login(request)

    async def logout(request: Request) -> Response:
        return await pages.logout(request)

    def overview(request: Request) -> Response:
        return pages.overview(request)

    def inventory(request: Request) -> Response:
        return pages.inventory(request)

    def endpoint(request: Request, endpoint_id: str) -> Response:
        number = _row_id(endpoint_id)
        if number is None:
            return pages.error(request, 404, "no such endpoint", pages.session(request))
        return pages.endpoint(request, number)

    def certificate(request: Request, sha256: str) -> Response:
        return pages.certificate(request, sha256)

    def alerts_page(request: Request) -> Response:
        return pages.alerts_page(request)

    async def acknowledge(request: Request, alert_id: str) -> Response:
        return await pages.alert_action(request, _row_id(alert_id), "acknowledge")

    async def resolve(request: Request, alert_id: str) -> Response:
        return await pages.alert_action(request, _row_id(alert_id), "resolve")

    def agents_page(request: Request) -> Response:
        return pages.agents_page(request)

    def ct_page(request: Request) -> Response:
        return pages.ct_page(request)

    def static(name: str) -> Response:
        return pages.static_file(name)

    router.add_api_route(PREFIX, root, methods=["GET"])
    get("/", overview)
    get("/login", login_form)
    post("/login", login)
    post("/logout", logout)
    get("/inventory", inventory)
    get("/endpoints/{endpoint_id}", endpoint)
    get("/certificates/{sha256}", certificate)
    get("/alerts", alerts_page)
    post("/alerts/{alert_id}/acknowledge", acknowledge)
    post("/alerts/{alert_id}/resolve", resolve)
    get("/agents", agents_page)
    get("/ct", ct_page)
    router.add_api_route(PREFIX + "/static/{name}", static, methods=["GET"])
    return router
