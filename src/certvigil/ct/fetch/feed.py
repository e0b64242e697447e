"""``certvigil ct feed``: a certstream-compatible WebSocket server of what certvigil reads.

Existing CertStream consumers (CertStreamMonitor, phishing_catcher, certstream-python)
can point at it instead of a public server:

* ``/`` the lite stream (no ``as_der``, no ``chain``), ``/full-stream``, and
  ``/domains-only`` (``dns_entries`` messages), as certstream-server-go serves them;
* ``/example.json`` (and ``/full-stream/example.json``, ``/domains-only/example.json``):
  the latest message over plain HTTP;
* a ``heartbeat`` message every 30 s on every stream.

``CertstreamFeed.run(entries)`` publishes every ``FeedEntry`` of an async iterator (the
CT watch drives it). A slow client is not waited for: each client has a bounded queue,
and when it is full new messages for that client are dropped and counted (CertStream
servers shed load the same way; the certstream protocol has no back-pressure). Incoming
messages are capped at 4 KiB (clients only ping); keep-alive pings close dead peers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus

import httpx
import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from certvigil.ct.certstream import (
    FeedEntry,
    certstream_messages,
    feed_entry,
    heartbeat_message,
)
from certvigil.ct.entry import LogEntry
from certvigil.ct.errors import CtError
from certvigil.ct.fetch.http import FetchPolicy
from certvigil.ct.fetch.static import StaticReader
from certvigil.ct.fetch.tail import LogTail, TailState
from certvigil.ct.log_list import CtLog

STREAMS = {"/": "lite", "/full-stream": "full", "/domains-only": "domains"}
EXAMPLES = {
    "/example.json": "lite",
    "/full-stream/example.json": "full",
    "/domains-only/example.json": "domains",
}
HEARTBEAT_S = 30.0


@dataclass(eq=False)  # one per connection, kept in a set by identity
class _Client:
    stream: str
    queue: asyncio.Queue[str]
    dropped: int = 0


@dataclass
class FeedStats:
    """What the feed did: entries published, clients now, messages dropped for slow ones."""

    published: int = 0
    clients: int = 0
    dropped: int = 0
    latest: dict[str, str] = field(default_factory=dict)


class CertstreamFeed:
    """The server. ``start`` listens, ``publish`` sends one entry, ``run`` drives it.

    Args:
        host: Address to listen on (loopback by default).
        port: Port (0: any free one; ``address`` tells which).
        client_queue: Messages buffered per client before new ones are dropped.
        heartbeat_s: Seconds between heartbeats (``None``: none).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8765,
        *,
        client_queue: int = 1000,
        heartbeat_s: float | None = HEARTBEAT_S,
    ) -> None:
        self.host = host
        self.port = port
        self.stats = FeedStats()
        self._client_queue = client_queue
        self._heartbeat_s = heartbeat_s
        self._clients: set[_Client] = set()
        self._server: Server | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The address listened on (after ``start``)."""
        if self._server is None:
            raise RuntimeError("the feed is not started")
        sock = next(iter(self._server.sockets))
        host, port = sock.getsockname()[:2]
        return str(host), int(port)

    async def start(self) -> tuple[str, int]:
        """Listen; return the address.

        Raises:
            OSError: The address cannot be listened on (in use, not local).
        """
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._http,
            max_size=4096,
            max_queue=4,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=5,
            open_timeout=10,
            server_header="certvigil-ct-feed",
        )
        if self._heartbeat_s is not None:
            self._heartbeat = asyncio.create_task(self._beat(self._heartbeat_s))
        return self.address

    async def close(self) -> None:
        """Stop listening and close every client."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> CertstreamFeed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def publish(self, entry: FeedEntry) -> None:
        """Send one entry to every client of every stream (never waits)."""
        messages = certstream_messages(entry)
        by_stream = {"lite": messages.lite, "full": messages.full, "domains": messages.domains}
        self.stats.latest = by_stream
        self.stats.published += 1
        self._send(by_stream)

    async def run(self, entries: AsyncIterator[FeedEntry]) -> None:
        """Publish every entry of ``entries`` until it ends."""
        async for entry in entries:
            self.publish(entry)

    def _send(self, by_stream: dict[str, str]) -> None:
        for client in list(self._clients):
            try:
                client.queue.put_nowait(by_stream[client.stream])
            except asyncio.QueueFull:
                client.dropped += 1
                self.stats.dropped += 1

    async def _beat(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            beat = heartbeat_message(datetime.now(UTC))
            self._send({"lite": beat, "full": beat, "domains": beat})

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0].rstrip("/") or "/"
        if path in STREAMS and request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        if path in EXAMPLES:
            latest = self.stats.latest.get(EXAMPLES[path])
            if latest is None:
                return _response(HTTPStatus.SERVICE_UNAVAILABLE, '{"error": "no entry yet"}\n')
            return _response(HTTPStatus.OK, latest)
        if path in STREAMS:
            return _response(HTTPStatus.UPGRADE_REQUIRED, '{"error": "WebSocket only"}\n')
        return _response(HTTPStatus.NOT_FOUND, '{"error": "not found"}\n')

    async def _handle(self, connection: ServerConnection) -> None:
        request = connection.request
        path = (request.path.split("?", 1)[0].rstrip("/") or "/") if request else "/"
        client = _Client(STREAMS.get(path, "lite"), asyncio.Queue(self._client_queue))
        self._clients.add(client)
        self.stats.clients = len(self._clients)
        reader = asyncio.create_task(_drain(connection))
        try:
            while not reader.done():
                getter = asyncio.create_task(client.queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                await connection.send(getter.result())
        except websockets.ConnectionClosed:
            pass  # the client went: one client never stops the feed
        finally:
            reader.cancel()
            self._clients.discard(client)
            self.stats.clients = len(self._clients)


async def _drain(connection: ServerConnection) -> None:
    """Read (and ignore) what a client sends until it goes, so pings and closes are seen."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async for _ in connection:
            pass


def _response(status: HTTPStatus, body: str) -> Response:
    data = body.encode("utf-8")
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
        ]
    )
    return Response(status.value, status.phrase, headers, data)


async def tail_feed_entries(
    logs: Sequence[CtLog],
    *,
    from_start: bool = False,
    poll_s: float = 60.0,
    policy: FetchPolicy | None = None,
    errors: Callable[[CtLog, str], None] | None = None,
) -> AsyncIterator[FeedEntry]:
    """Entries of ``logs`` as they are read, for the feed: a standalone source.

    Each log is tailed from its current tree head (``from_start``: from entry 0), with
    every entry verified against the signed tree as ``LogTail`` does, then polled again
    every ``poll_s`` seconds. Malformed entries are skipped. The CT watch drives the
    feed itself with what it reads; this source serves ``ct feed`` on its own.

    Args:
        logs: The logs to tail.
        from_start: Read each log from entry 0 instead of from its end.
        poll_s: Seconds between passes over a log.
        policy: Rate, deadlines and back-off for the logs.
        errors: Called with a log and the words of a fault that ended a pass.
    """
    queue: asyncio.Queue[FeedEntry] = asyncio.Queue(maxsize=10_000)

    async def follow(log: CtLog, client: httpx.AsyncClient) -> None:
        state = TailState()
        if not from_start:
            state = TailState(position=await _tree_size(log, policy, client, errors))
        while True:
            tail = LogTail(log, state, policy=policy, client=client)
            async with tail:
                async for item in tail.entries():
                    if isinstance(item, LogEntry):
                        try:
                            entry = feed_entry(
                                item,
                                log_name=log.description,
                                log_url=log.url,
                                seen_utc=datetime.now(UTC),
                            )
                        except CtError:
                            continue
                        await queue.put(entry)
            state = tail.state
            if state.last_error and errors is not None:
                errors(log, state.last_error)
            await asyncio.sleep(poll_s)

    async with httpx.AsyncClient(
        timeout=httpx.Timeout(30.0), follow_redirects=False, headers={"User-Agent": "certvigil-ct"}
    ) as client:
        tasks = [asyncio.create_task(follow(log, client)) for log in logs]
        try:
            while True:
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getter, *tasks}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                failed = [t for t in tasks if t.done()]
                for task in failed:
                    tasks.remove(task)
                if not tasks:
                    return
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _tree_size(
    log: CtLog,
    policy: FetchPolicy | None,
    client: httpx.AsyncClient,
    errors: Callable[[CtLog, str], None] | None,
) -> int:
    """The log's current verified tree size (where a feed that starts at the end starts)."""
    while True:
        tail = LogTail(log, TailState(), policy=policy, client=client)
        try:
            async with tail:
                reader = tail.reader
                if isinstance(reader, StaticReader):
                    return (await reader.checkpoint()).checkpoint.tree_size
                return (await reader.tree_head()).tree_size
        except CtError as exc:
            if errors is not None:
                errors(log, str(exc))
        await asyncio.sleep(60.0)
