"""Reads and writes on a non-blocking socket that always give the event loop a turn.

``loop.sock_recv`` tries ``recv`` at once and returns without suspending when the kernel
already holds data; ``loop.sock_sendall`` does the same when the kernel takes every byte.
A loop of such calls against a server that never stops talking therefore never yields:
no ``asyncio.timeout`` can fire (cancellation is only delivered at a suspension point) and
no other task of the scan runs. Every probe loop reads through :func:`receive`, which
suspends once per call whatever the kernel had ready, so deadlines hold and the other
endpoints of a scan keep moving.
"""

from __future__ import annotations

import asyncio
import socket


async def receive(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    """Up to ``size`` bytes from ``sock`` (``b""`` at end of stream), after a loop turn.

    Args:
        loop: The running loop.
        sock: A connected non-blocking socket.
        size: Most bytes returned.

    Returns:
        What the kernel had, or ``b""`` when the peer closed its side.

    Raises:
        OSError: When the connection breaks.
        asyncio.CancelledError: When the caller's deadline passed meanwhile.
    """
    data = await loop.sock_recv(sock, size)
    # sock_recv did not suspend if data was ready: give the loop (timers, other probes,
    # the caller's time-out) its turn now.
    await asyncio.sleep(0)
    return data


async def send_all(loop: asyncio.AbstractEventLoop, sock: socket.socket, data: bytes) -> None:
    """Send all of ``data`` on ``sock``, then give the loop a turn.

    Raises:
        OSError: When the connection breaks.
        asyncio.CancelledError: When the caller's deadline passed meanwhile.
    """
    await loop.sock_sendall(sock, data)
    await asyncio.sleep(0)
