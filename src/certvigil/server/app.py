"""The server application: ``create_app(loaded, store)`` builds the FastAPI app.

One process serves the API and runs, in the background, the alert event poller (the
live stream), the delivery outbox for the alerts reported data raised, and the check
for agents that went silent. Other front ends (the dashboard) are mounted with
``dashboard_router``; they may authenticate their own way and hand the route a
:class:`~certvigil.server.keys.Principal` in ``request.state.principal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request

from certvigil import __version__
from certvigil.alerts.delivery import channels_for_routes, deliver_due
from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.routing import AlertRoute, routes_from_config
from certvigil.alerts.rules import AlertPolicy
from certvigil.analysis.certificate import keep_certificates
from certvigil.config.loading import LoadedConfig
from certvigil.daemon.runner import expiry_thresholds
from certvigil.errors import StoreError
from certvigil.server.allowlist import AllowList
from certvigil.server.auth import PrincipalCache
from certvigil.server.errors import ApiError, install_error_handlers
from certvigil.server.events import DEFAULT_POLL_S, AlertEventHub
from certvigil.server.ingest import IngestThread
from certvigil.server.ingest_process import IngestProcess, setup_for
from certvigil.server.watch import check_silent_agents, tell_failed_deliveries
from certvigil.store import Store

log = logging.getLogger("certvigil.server")

API_PREFIX = "/api/v1"
"""Where the versioned API lives."""

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest request body accepted (a batch of 1,000 observations with long chains)."""

BODY_READ_TIMEOUT_S = 30.0
"""Longest wait for the next part of a request body."""

DRAIN_BYTES = MAX_BODY_BYTES
"""How much more of a refused, too large body is read and dropped before closing."""

DRAIN_S = 5.0
"""How long a refused, too large body is read and dropped before closing."""


def utc_now() -> datetime:
    """The wall clock, aware UTC."""
    return datetime.now(UTC)


@dataclass(slots=True, kw_only=True)
class ServerState:
    """What routes share: the store, the configuration, the engine, the stream.

    Attributes:
        loaded: The server's configuration.
        store: The inventory.
        clock: ``now`` for records and alerts.
        routes: Alert routes.
        policy: Alert policy (thresholds from ``alerts.thresholds``).
        hub: The live alert stream of this process.
        allow: What scans on request may reach.
        silence_intervals: Intervals of silence after which an agent raises an alert.
        background: Run the poller, the outbox and the silence check.
        tasks: The background tasks while running.
        pages: Recent answers of the inventory lists.
        ingest: The thread that sends report batches to the ingest process, in turn.
        writer: The process that judges and stores them.
    """

    loaded: LoadedConfig
    store: Store
    clock: Callable[[], datetime]
    routes: tuple[AlertRoute, ...]
    policy: AlertPolicy
    hub: AlertEventHub
    allow: AllowList
    silence_intervals: int
    writer: IngestProcess
    background: bool = True
    poll_s: float = DEFAULT_POLL_S
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    pages: PageCache = field(default_factory=lambda: PageCache())
    ingest: IngestThread = field(default_factory=IngestThread)

    def engine(self, policy: AlertPolicy | None = None) -> AlertEngine:
        """An alert engine on the store with the server's routes."""
        return AlertEngine(self.store, self.routes, policy or self.policy)


class PageCache:
    """Recent answers of the inventory lists, valid while nothing new was recorded.

    Many clients ask the same question ("what expires within 30 days") at once; the
    answer depends only on what is recorded (``inventory_version``) and, through
    ``days_remaining`` and the expiry horizon, on the clock, so an answer is reused for
    at most ``ttl_s`` and only while no observation was added (as seen at most
    ``version_ttl_s`` ago: a report is visible in the lists a second after it is stored).
    """

    def __init__(self, *, ttl_s: float = 5.0, size: int = 256, version_ttl_s: float = 1.0) -> None:
        self._ttl_s = ttl_s
        self._version_ttl_s = version_ttl_s
        self._version: tuple[int, float] | None = None
        self._version_lock = threading.Lock()
        self._size = size
        self._entries: dict[Any, tuple[int, float, Any]] = {}
        self._making: dict[Any, threading.Lock] = {}
        self._lock = threading.Lock()

    def version(self, read: Callable[[], int]) -> int:
        """The inventory's version, read from the database at most once a second (so a
        repeated question is answered without touching the database at all)."""
        with self._version_lock:
            if self._version is None or self._version[1] < time.monotonic():
                self._version = (read(), time.monotonic() + self._version_ttl_s)
            return self._version[0]

    def known_version(self) -> int | None:
        """The inventory's version while the last reading is fresh, else ``None`` (the
        caller then reads it, in a worker thread, through :meth:`version`)."""
        with self._version_lock:
            if self._version is None or self._version[1] < time.monotonic():
                return None
            return self._version[0]

    def get(self, key: Any, version: int) -> Any | None:
        """The answer kept for ``key`` at ``version``, ``None`` when there is none."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] != version or entry[1] < time.monotonic():
            return None
        return entry[2]

    def put(self, key: Any, version: int, value: Any) -> None:
        """Keeps an answer."""
        with self._lock:
            if len(self._entries) >= self._size:
                self._entries.clear()
            self._entries[key] = (version, time.monotonic() + self._ttl_s, value)

    def get_or_make(self, key: Any, version: int, make: Callable[[], Any]) -> Any:
        """The kept answer, else ``make()``'s, made once however many ask at the same
        time (the others wait for it rather than all querying the database)."""
        found = self.get(key, version)
        if found is not None:
            return found
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:
            found = self.get(key, version)
            if found is None:
                found = make()
                self.put(key, version, found)
        with self._lock:
            self._making.pop(key, None)
        return found


class BoundedRequests:
    """ASGI middleware: a request body is at most ``MAX_BODY_BYTES``, chunked ones
    included, and each part of it must arrive within ``BODY_READ_TIMEOUT_S`` (a client
    that stops sending mid-body is answered 408 rather than held for ever). Once the
    body is complete, waiting for the client (an SSE stream listening for the
    disconnect) has no deadline."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length")
        too_large = f"request body: more than {MAX_BODY_BYTES} bytes"
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await _refuse(send, 413, "too_large", too_large, drain=receive)
            return
        seen = 0
        body_done = False
        refused = False

        async def refuse(status: int, code: str, message: str, drain: Any = None) -> Any:
            # Answer now and tell the app the client left: what it sends after is dropped.
            nonlocal refused
            refused = True
            await _refuse(send, status, code, message, drain=drain)
            return {"type": "http.disconnect"}

        async def bounded_receive() -> Any:
            nonlocal seen, body_done
            if body_done or refused:
                return await receive() if not refused else {"type": "http.disconnect"}
            try:
                async with asyncio.timeout(BODY_READ_TIMEOUT_S):
                    message = await receive()
            except TimeoutError:
                return await refuse(408, "timeout", "request body: not received in time")
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY_BYTES:
                    # The rest of a body still coming is read and dropped (_refuse).
                    rest = receive if message.get("more_body", False) else None
                    return await refuse(413, "too_large", too_large, drain=rest)
                body_done = not message.get("more_body", False)
            return message

        async def guarded_send(message: Any) -> None:
            if not refused:
                await send(message)

        await self.app(scope, bounded_receive, guarded_send)


async def _refuse(send: Any, status: int, code: str, message: str, *, drain: Any = None) -> None:
    """Answer ``status`` with the error document and close the connection.

    With ``drain`` (the request's ``receive``), the rest of a body the client is still
    sending is read and dropped first, for at most ``DRAIN_BYTES`` and ``DRAIN_S``: a
    connection closed with unread data is reset, and the reset may destroy the answer
    before the client has read it (nginx's "lingering close" for the same reason).
    """
    from certvigil.server.errors import error_body

    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    if drain is None:
        await send({"type": "http.response.body", "body": body})
        return
    # The answer is sent whole now; the server closes once the response is complete.
    await send({"type": "http.response.body", "body": body, "more_body": True})
    dropped = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_S):
            while dropped <= DRAIN_BYTES:
                part = await drain()
                if part["type"] != "http.request":
                    break
                dropped += len(part.get("body", b""))
                if not part.get("more_body", False):
                    break
    await send({"type": "http.response.body", "body": b""})


def create_app(
    loaded: LoadedConfig,
    store: Store,
    *,
    clock: Callable[[], datetime] = utc_now,
    background: bool = True,
    poll_s: float = DEFAULT_POLL_S,
    dashboard_router: APIRouter | None = None,
    extra_routers: Sequence[APIRouter] = (),
    announce_ready: bool = False,
) -> FastAPI:
    """Builds the server.

    Args:
        loaded: The configuration (``alerts`` for routes and thresholds, ``serve`` for
            the scan allow-list, assignments and silence rule).
        store: The opened inventory.
        clock: ``now`` (tests pin it).
        background: Run the event poller, the outbox and the silence check (tests of
            single requests turn them off; the stream then polls when asked).
        poll_s: How often the event poller and the background checks run.
        dashboard_router: The dashboard's pages, mounted at the root.
        extra_routers: More routers (the Prometheus exporter).
        announce_ready: Write ``certvigil serve: worker PID ready`` to stderr once the
            process serves (``certvigil serve`` does, for supervisors and tests).

    Returns:
        The application; its lifespan starts and stops the background tasks.
    """
    config = loaded.config
    keep_certificates(config.serve.kept_certificates)
    routes = tuple(routes_from_config(config.alerts.routes))
    policy = AlertPolicy(thresholds=expiry_thresholds(config.alerts.thresholds))
    state = ServerState(
        loaded=loaded,
        store=store,
        clock=clock,
        routes=routes,
        policy=policy,
        hub=AlertEventHub(store, poll_s=poll_s),
        allow=AllowList.parse(config.serve.scan_allow, dns=config.serve.scan_allow_dns),
        silence_intervals=config.serve.agent_silence_intervals,
        writer=IngestProcess(setup_for(store, routes, policy, config.serve.kept_certificates)),
        background=background,
        poll_s=poll_s,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await state.hub.start()
        if state.background:
            state.tasks = [
                asyncio.create_task(state.hub.run(), name="alert-events"),
                asyncio.create_task(_outbox_loop(state), name="outbox"),
                asyncio.create_task(_silence_loop(state), name="agent-silence"),
            ]
        if announce_ready:
            # Started now so that a first batch does not wait for it, and a process
            # that cannot start is seen at once.
            await asyncio.to_thread(state.writer.start)
            sys.stderr.write(
                f"certvigil serve: worker {os.getpid()} stores reports through "
                f"ingest process {state.writer.pid}\n"
            )
            sys.stderr.write(f"certvigil serve: worker {os.getpid()} ready\n")
            sys.stderr.flush()
        try:
            yield
        finally:
            for task in state.tasks:
                task.cancel()
            for task in state.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            state.tasks = []
            # Batches already taken are stored before the store closes.
            await asyncio.to_thread(state.ingest.close)
            await asyncio.to_thread(state.writer.close)

    app = FastAPI(
        title="certvigil",
        version=__version__,
        summary="TLS certificate inventory, alerts and agents",
        openapi_url=f"{API_PREFIX}/openapi.json",
        # Swagger UI loads its script from a CDN; the server ships every asset itself.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.server = state
    app.state.store = store
    app.state.principals = PrincipalCache()
    app.add_middleware(BoundedRequests)
    install_error_handlers(app)

    from certvigil.server.api import metrics, sslscout, stream, v1

    app.include_router(v1.router, prefix=API_PREFIX)
    app.include_router(stream.router, prefix=API_PREFIX)
    app.include_router(sslscout.router, prefix="/api/sslscout")
    app.include_router(metrics.router)
    for router in extra_routers:
        app.include_router(router)
    if dashboard_router is not None:
        app.include_router(dashboard_router)
    return app


def server_state(request: Request) -> ServerState:
    """The shared state of the app serving ``request``."""
    state = request.app.state.server
    if not isinstance(state, ServerState):
        raise ApiError(500, "internal_error", "server state missing")
    return state


async def state_dependency(request: Request) -> ServerState:
    """:func:`server_state` as a route dependency: a coroutine, so FastAPI runs it on the
    event loop instead of handing it to a worker thread (a thread hop per request)."""
    return server_state(request)


async def _outbox_loop(state: ServerState) -> None:
    channels = channels_for_routes(list(state.routes))
    while True:
        try:
            await deliver_due(state.store, channels, state.clock())
            if await asyncio.to_thread(tell_failed_deliveries, state.store, now=state.clock()):
                state.hub.wake()
        except StoreError as exc:
            log.warning("outbox: %s", exc)
        await asyncio.sleep(max(state.poll_s, 1.0))


async def _silence_loop(state: ServerState) -> None:
    while True:
        try:
            told = await asyncio.to_thread(
                check_silent_agents,
                state.store,
                state.engine(),
                now=state.clock(),
                intervals=state.silence_intervals,
            )
            if told:
                state.hub.wake()
        except StoreError as exc:
            log.warning("agent silence check: %s", exc)
        await asyncio.sleep(max(state.poll_s * 10, 5.0))
