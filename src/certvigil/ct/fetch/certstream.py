"""A CertStream client: certificate updates from a certstream-compatible server, as input.

For users who already run certstream-server-go: ``read_certstream(url)`` connects with
``websockets``, reads messages within bounds (one message at most ``MAX_MESSAGE_BYTES``,
a handful buffered), answers the server's pings and sends its own (the Go server drops
a client that has not pinged for 60 s), and yields each message parsed. A message that
cannot be read is yielded as a ``CertstreamMessageError`` and the stream goes on; the
connection has a deadline to open and, once open, a deadline for silence: a server that
sends nothing (not even a heartbeat) for ``idle_timeout_s`` is given up on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import websockets
from websockets.asyncio.client import connect

from certvigil.ct.certstream import (
    MAX_MESSAGE_BYTES,
    CertstreamMessage,
    CertstreamMessageError,
    parse_certstream_message,
)
from certvigil.ct.errors import FetchError


async def read_certstream(
    url: str,
    *,
    open_timeout_s: float = 10.0,
    idle_timeout_s: float = 90.0,
    ping_interval_s: float = 20.0,
    max_messages: int | None = None,
) -> AsyncIterator[CertstreamMessage | CertstreamMessageError]:
    """Messages from a CertStream server, parsed, until it closes or goes silent.

    Args:
        url: The server's WebSocket URL (``ws://127.0.0.1:8080/full-stream``).
        open_timeout_s: Seconds the connection may take to open.
        idle_timeout_s: Seconds without any message before giving up.
        ping_interval_s: Seconds between keep-alive pings.
        max_messages: Stop after this many (``None``: no limit).

    Raises:
        FetchError: The connection could not be opened, broke, or went silent.
    """
    count = 0
    try:
        async with connect(
            url,
            open_timeout=open_timeout_s,
            ping_interval=ping_interval_s,
            ping_timeout=ping_interval_s,
            close_timeout=5,
            max_size=MAX_MESSAGE_BYTES,
            max_queue=64,
            user_agent_header="certvigil-ct",
        ) as connection:
            while max_messages is None or count < max_messages:
                try:
                    async with asyncio.timeout(idle_timeout_s):
                        raw = await connection.recv()
                except TimeoutError:
                    raise FetchError(
                        url, f"no message for {idle_timeout_s:g} s (not even a heartbeat)"
                    ) from None
                count += 1
                try:
                    yield parse_certstream_message(raw)
                except CertstreamMessageError as exc:
                    yield exc
    except websockets.ConnectionClosedOK:
        return
    except websockets.ConnectionClosedError as exc:
        raise FetchError(url, f"connection closed: {exc.rcvd or 'no close frame'}") from None
    except websockets.InvalidStatus as exc:
        raise FetchError(url, f"HTTP status {exc.response.status_code}") from None
    except (websockets.InvalidHandshake, websockets.InvalidURI) as exc:
        raise FetchError(url, f"not a WebSocket server: {type(exc).__name__}") from None
    except TimeoutError:
        raise FetchError(url, f"the connection did not open within {open_timeout_s:g} s") from None
    except OSError as exc:
        raise FetchError(url, f"cannot connect: {exc.strerror or type(exc).__name__}") from None
