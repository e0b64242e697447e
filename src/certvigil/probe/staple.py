"""Capture the OCSP response a server staples in its handshake (status_request, RFC 6066 §8).

Python's ``ssl`` module can neither send the status_request extension nor expose the
server's CertificateStatus, so this probe shakes hands with pyOpenSSL instead, over
memory BIOs on a non-blocking socket: one connection, no thread, STARTTLS included.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from datetime import UTC, datetime

from OpenSSL import SSL

from certvigil.errors import ProbeError
from certvigil.observed.handshake import FailureKind, ProbeFailure
from certvigil.probe.starttls import PlainChannel, negotiate_starttls
from certvigil.probe.tls import ProbeOptions
from certvigil.target import Target

_RECV_BYTES = 65536


class _StapleBox:
    """Where the OpenSSL callback leaves what it saw."""

    def __init__(self) -> None:
        self.called = False
        self.data = b""


def _on_staple(connection: SSL.Connection, data: bytes, box: _StapleBox | None) -> bool:
    if box is not None:
        box.called = True
        box.data = bytes(data)
    # Accept whatever came: judging the staple is analysis's job, not the handshake's.
    return True


def _client_context(box: _StapleBox) -> SSL.Context:
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_verify(SSL.VERIFY_NONE)
    # See what any server staples, however old its protocol or ciphers.
    context.set_cipher_list(b"ALL:@SECLEVEL=0")
    context.set_ocsp_client_callback(_on_staple, box)
    return context


async def fetch_staple(
    target: Target,
    address: str,
    options: ProbeOptions,
    *,
    clock: Callable[[], datetime] | None = None,
) -> bytes | ProbeFailure | None:
    """Shake hands asking for a stapled OCSP response and return it.

    Opens exactly one connection; speaks the target's STARTTLS dialogue first if it has
    one. Network problems never raise.

    Args:
        target: The endpoint; its ``server_name`` is sent as SNI.
        address: The IP address to connect to.
        options: Connect, STARTTLS and handshake time-outs.
        clock: Source of the failure time; defaults to the system clock in UTC.

    Returns:
        The DER OCSP response the server stapled, ``None`` when it stapled nothing, or
        the classified failure when no handshake completed.
    """
    now = clock or (lambda: datetime.now(UTC))
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)

    def failure(kind: FailureKind, detail: str) -> ProbeFailure:
        return ProbeFailure(
            target=target, kind=kind, detail=detail, observed_at_utc=now(), peer_address=address
        )

    try:
        try:
            await asyncio.wait_for(
                loop.sock_connect(sock, (address, target.port)), options.connect_timeout_s
            )
        except TimeoutError:
            return failure(
                FailureKind.TIMEOUT, f"no TCP connection within {options.connect_timeout_s:g} s"
            )
        except OSError as exc:
            return failure(*_classify_os_error(exc))
        if target.starttls is not None:
            channel = PlainChannel(loop, sock)
            try:
                await asyncio.wait_for(
                    negotiate_starttls(
                        target.starttls, channel, server_name=target.server_name or target.host
                    ),
                    options.starttls_timeout_s,
                )
            except TimeoutError:
                return failure(FailureKind.TIMEOUT, "no STARTTLS upgrade in time")
            except ProbeError as exc:
                return failure(FailureKind(exc.kind), exc.detail)
            except OSError as exc:
                return failure(*_classify_os_error(exc))
        box = _StapleBox()
        try:
            await asyncio.wait_for(_handshake(sock, target, box), options.handshake_timeout_s)
        except TimeoutError:
            return failure(
                FailureKind.TIMEOUT,
                f"no complete TLS handshake within {options.handshake_timeout_s:g} s",
            )
        except SSL.Error as exc:
            return failure(FailureKind.HANDSHAKE_FAILURE, _ssl_error_text(exc))
        except OSError as exc:
            return failure(*_classify_os_error(exc))
        return box.data or None
    finally:
        sock.close()


async def _handshake(sock: socket.socket, target: Target, box: _StapleBox) -> None:
    loop = asyncio.get_running_loop()
    connection = SSL.Connection(_client_context(box), None)
    connection.set_connect_state()
    if target.server_name is not None:
        connection.set_tlsext_host_name(target.server_name.encode("idna"))
    connection.request_ocsp()
    while True:
        try:
            connection.do_handshake()
            done = True
        except SSL.WantReadError:
            done = False
        await _flush(loop, sock, connection)
        if done:
            return
        data = await loop.sock_recv(sock, _RECV_BYTES)
        if not data:
            raise ConnectionResetError(errno.ECONNRESET, "the server closed the connection")
        connection.bio_write(data)


async def _flush(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, connection: SSL.Connection
) -> None:
    while True:
        try:
            pending = connection.bio_read(_RECV_BYTES)
        except SSL.WantReadError:
            return
        if not pending:
            return
        await loop.sock_sendall(sock, pending)


def _ssl_error_text(exc: SSL.Error) -> str:
    parts = [str(item[-1]) for item in (exc.args[0] if exc.args else ()) if item]
    return "; ".join(parts) or type(exc).__name__


def _classify_os_error(exc: OSError) -> tuple[FailureKind, str]:
    if exc.errno == errno.ECONNREFUSED:
        return FailureKind.CONNECTION_REFUSED, "connection refused"
    if exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return FailureKind.CONNECTION_RESET, "the server reset the connection"
    if exc.errno == errno.ETIMEDOUT:
        return FailureKind.TIMEOUT, "the operating system timed out the connection"
    return FailureKind.UNREACHABLE, exc.strerror or str(exc)
