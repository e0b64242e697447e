"""One TCP connection and TLS handshake per call: capture what the server sent, or why not.

The probe verifies nothing: it accepts any certificate, any protocol version and any cipher
the local OpenSSL can still speak (``@SECLEVEL=0``), because judging trust is the job of
``certvigil.analysis``. What it records is the chain exactly as the server sent it, in the
server's order, together with the negotiated parameters and timings.

The handshake runs in pyOpenSSL over memory BIOs on a plain non-blocking socket, driven by
``certvigil.probe.sockio`` (``loop.sock_recv``/``loop.sock_sendall`` plus a loop turn per
call, so the time-outs hold against a server that never stops sending, which is also
capped at ``MAX_HANDSHAKE_BYTES``). The alert that ends a failed handshake is read from
the alert record itself (``certvigil.tls.alert_watch``), not from OpenSSL's words. That
gives one code path for implicit TLS and STARTTLS (the plain-text dialogue uses the same
socket first), exact control of the connect and handshake time-outs, and no
per-connection transport machinery. pyOpenSSL rather than
the stdlib ``ssl`` module because it runs on the OpenSSL that ``cryptography`` ships (a
client handshake costs about half the CPU of Debian 12's OpenSSL 3.0 that ``ssl`` links)
and because it can ask for and read a stapled OCSP response, which ``ssl`` cannot: one
connection gives the chain and the staple.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

from OpenSSL import SSL, crypto

from certvigil.errors import ProbeError
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.probe.large_chain import capture_chain_in_clear
from certvigil.probe.options import ProbeOptions
from certvigil.probe.sockio import receive, send_all
from certvigil.probe.starttls import (
    PlainChannel,
    negotiate_starttls,
    plaintext_service_hint,
    quoted_start,
)
from certvigil.targets.target import Target
from certvigil.tls.alert_watch import AlertWatcher, ReceivedAlert
from certvigil.tls.cipher_suites import SUITES
from certvigil.tls.records import TlsProtocol

_RECV_BYTES = 65536

# What a server may send before its Finished: the certificate list OpenSSL accepts (its
# default, see client_context), the other handshake messages, and room for record framing.
# A server that sends more without finishing is not going to finish.
MAX_HANDSHAKE_BYTES = 2 * 1024 * 1024

# OpenSSL's max_cert_list default. The bindings in use (cryptography's) expose no
# SSL_CTX_ctrl, so the limit cannot be raised on the context; a chain over it is read by
# a second, TLS 1.2 connection instead, up to MAX_CERTIFICATE_LIST_BYTES.
_OPENSSL_MAX_CERT_LIST = 102400
MAX_CERTIFICATE_LIST_BYTES = 1024 * 1024

_OPENSSL_PROTOCOL_NAMES = {
    TlsProtocol.SSL_3_0: "SSLv3",
    TlsProtocol.TLS_1_0: "TLSv1",
    TlsProtocol.TLS_1_1: "TLSv1.1",
    TlsProtocol.TLS_1_2: "TLSv1.2",
}

# OpenSSL reasons meaning "the first bytes the server sent were not a TLS record".
_NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "HTTP_REQUEST",
        "HTTPS_PROXY_REQUEST",
        "PACKET_LENGTH_TOO_LONG",
        "RECORD_LENGTH_MISMATCH",
        "UNSUPPORTED_PROTOCOL",
    }
)

_UNREACHABLE_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN, errno.EHOSTDOWN}
)


class _Seen:
    """What OpenSSL's callbacks saw on one connection: the staple, the alerts it read.

    The wire watcher (``AlertWatcher``) reads alerts sent in the clear; alerts sent
    after the switch to encryption reach only OpenSSL, which reports each one it reads
    from its record (level and description, not words) to the info callback.
    """

    __slots__ = ("alerts", "der")

    def __init__(self) -> None:
        self.der: bytes | None = None
        self.alerts: list[ReceivedAlert] = []


def _on_ocsp_staple(connection: SSL.Connection, data: bytes, _unused: object) -> bool:
    box = connection.get_app_data()
    if isinstance(box, _Seen) and data:
        box.der = bytes(data)
    # Accept whatever came: judging the staple is analysis's job, not the handshake's.
    return True


def _on_info(connection: SSL.Connection, where: int, value: int) -> None:
    # SSL_CB_READ_ALERT is SSL_CB_ALERT | SSL_CB_READ: both bits, or it is our own alert.
    if where & SSL.SSL_CB_READ_ALERT == SSL.SSL_CB_READ_ALERT:
        box = connection.get_app_data()
        if isinstance(box, _Seen) and len(box.alerts) < 16:
            box.alerts.append(ReceivedAlert(level=(value >> 8) & 0xFF, description=value & 0xFF))


@functools.lru_cache(maxsize=16)
def client_context(alpn_protocols: tuple[str, ...] = ()) -> SSL.Context:
    """The probe's client context: every version and cipher allowed, verification off.

    Built once per ALPN list and shared by every probe: creating a context costs more
    than a loopback handshake.

    Args:
        alpn_protocols: ALPN protocols to offer.

    Returns:
        A pyOpenSSL client context that accepts any certificate and asks for OCSP staples.
    """
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_verify(SSL.VERIFY_NONE)
    context.set_min_proto_version(0)  # the lowest this OpenSSL can speak
    # SECLEVEL=0 lets OpenSSL offer and accept the weak suites, small keys and SHA-1
    # signatures that analysis is there to report.
    context.set_cipher_list(b"ALL:@SECLEVEL=0")
    # Servers that predate RFC 5746 are refused without this since OpenSSL 3.
    context.set_options(SSL.OP_LEGACY_SERVER_CONNECT)
    if alpn_protocols:
        context.set_alpn_protos([p.encode("ascii") for p in alpn_protocols])
    context.set_ocsp_client_callback(_on_ocsp_staple)
    context.set_info_callback(_on_info)
    return context


class _HandshakeFailed(Exception):
    """Internal: a classified failure inside the probe, turned into a ProbeFailure."""

    def __init__(
        self,
        kind: FailureKind,
        detail: str,
        *,
        tls_alert: str | None = None,
        oversized_certificates: bool = False,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.tls_alert = tls_alert
        self.oversized_certificates = oversized_certificates


async def probe_tls(
    target: Target,
    *,
    address: str,
    options: ProbeOptions,
    clock: Callable[[], datetime] | None = None,
) -> TlsObservation | ProbeFailure:
    """Connect to ``address``, upgrade with STARTTLS if asked, shake hands, record the result.

    Opens one connection, and a second only when OpenSSL refuses a certificate list
    over its 100 KiB limit (read then from a TLS 1.2 handshake, see
    ``certvigil.probe.large_chain``). Each phase holds its time-out whatever the server
    sends. Network problems never raise: they come back as a ``ProbeFailure`` whose
    ``kind`` classifies them.

    Args:
        target: The endpoint; its ``server_name`` is sent as SNI and its ``starttls``
            protocol, if any, is spoken first.
        address: The IP address to connect to (from ``certvigil.probe.resolve``).
        options: Time-outs and ALPN.
        clock: Source of the observation time; defaults to the system clock in UTC.

    Returns:
        The observation, or the classified failure.
    """
    now = clock or _utc_now
    with _new_socket(address) as sock:
        start = time.perf_counter()
        failure = await _connect(target, sock, address=address, options=options, now=now)
        if failure is not None:
            return failure
        connected = time.perf_counter()
        try:
            async with asyncio.timeout(options.handshake_timeout_s):
                observation = await _handshake(
                    target, sock, address=address, options=options, now=now
                )
        except TimeoutError:
            return _failure(
                target,
                address,
                now,
                FailureKind.TIMEOUT,
                f"no complete TLS handshake within {options.handshake_timeout_s:g} s",
            )
        except _HandshakeFailed as exc:
            failure = _failure(target, address, now, exc.kind, exc.detail, tls_alert=exc.tls_alert)
            if not exc.oversized_certificates:
                return failure
        except OSError as exc:
            return _failure(target, address, now, *_classify_os_error(exc, "handshake"))
        else:
            handshake_s = time.perf_counter() - connected
            return _with_timings(observation, connect_s=connected - start, handshake_s=handshake_s)
    # OpenSSL refused a certificate list over its limit: read it in the clear instead.
    return await _probe_large_chain(
        target, address=address, options=options, now=now, refused=failure
    )


def _new_socket(address: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


async def _connect(
    target: Target,
    sock: socket.socket,
    *,
    address: str,
    options: ProbeOptions,
    now: Callable[[], datetime],
) -> ProbeFailure | None:
    """Connect ``sock`` and speak the STARTTLS dialogue if asked; the failure, if any."""
    try:
        # asyncio.timeout rather than wait_for: no extra task per phase.
        async with asyncio.timeout(options.connect_timeout_s):
            await asyncio.get_running_loop().sock_connect(sock, (address, target.port))
    except TimeoutError:
        detail = f"no TCP connection within {options.connect_timeout_s:g} s"
        return _failure(target, address, now, FailureKind.TIMEOUT, detail)
    except OSError as exc:
        return _failure(target, address, now, *_classify_os_error(exc, "TCP connect"))
    if target.starttls is not None:
        return await _upgrade(target, sock, address=address, options=options, now=now)
    return None


async def _probe_large_chain(
    target: Target,
    *,
    address: str,
    options: ProbeOptions,
    now: Callable[[], datetime],
    refused: ProbeFailure,
) -> TlsObservation | ProbeFailure:
    """A second connection that reads an oversized chain from a TLS 1.2 handshake.

    It has the same connect, STARTTLS and handshake time-outs as the first. When it
    cannot get the chain (the server speaks no TLS 1.2, or the list is over
    ``MAX_CERTIFICATE_LIST_BYTES``), the first connection's failure stands, with why.
    """
    with _new_socket(address) as sock:
        start = time.perf_counter()
        failure = await _connect(target, sock, address=address, options=options, now=now)
        if failure is not None:
            return refused
        connected = time.perf_counter()
        flight = await capture_chain_in_clear(
            sock,
            server_name=_sni_text(target.server_name),
            alpn_protocols=options.alpn_protocols,
            timeout_s=options.handshake_timeout_s,
            max_list_bytes=MAX_CERTIFICATE_LIST_BYTES,
        )
        handshake_s = time.perf_counter() - connected
    if isinstance(flight, str):
        return _failure(
            target,
            address,
            now,
            refused.kind,
            f"the server's certificates exceed OpenSSL's {_OPENSSL_MAX_CERT_LIST // 1024} KiB "
            f"limit (max_cert_list), and reading them in a TLS 1.2 handshake failed: {flight}",
            tls_alert=refused.tls_alert,
        )
    protocol = flight.hello.protocol
    suite = SUITES.get(flight.hello.cipher_suite)
    return TlsObservation(
        target=target,
        peer_address=address,
        observed_at_utc=now(),
        chain_der=flight.chain_der,
        protocol=_OPENSSL_PROTOCOL_NAMES.get(protocol, "unknown") if protocol else "unknown",
        cipher=suite.openssl_name if suite is not None else f"0x{flight.hello.cipher_suite:04X}",
        alpn=flight.alpn,
        connect_s=connected - start,
        handshake_s=handshake_s,
        ocsp_staple_der=flight.ocsp_staple_der,
    )


def _sni_text(server_name: str | None) -> str | None:
    return _sni_bytes(server_name).decode("ascii") if server_name is not None else None


async def _handshake(
    target: Target,
    sock: socket.socket,
    *,
    address: str,
    options: ProbeOptions,
    now: Callable[[], datetime],
) -> TlsObservation:
    loop = asyncio.get_running_loop()
    tls = SSL.Connection(client_context(options.alpn_protocols), None)
    tls.set_connect_state()
    if target.server_name is not None:
        tls.set_tlsext_host_name(_sni_bytes(target.server_name))
    seen = _Seen()
    tls.set_app_data(seen)
    tls.request_ocsp()
    wire = _Wire()
    while True:
        try:
            tls.do_handshake()
            done = True
        except SSL.WantReadError:
            done = False
        except SSL.Error as exc:
            # Send OpenSSL's own alert, if it wrote one, as a courtesy to the server.
            try:
                await _flush(loop, sock, tls)
            except OSError:
                pass
            raise _classify_ssl_error(exc, wire=wire, seen=seen) from exc
        await _flush(loop, sock, tls)
        if done:
            break
        data = await receive(loop, sock, _RECV_BYTES)
        if not data:
            raise _closed_by_server(wire=wire, seen=seen)
        wire.add(data)
        if wire.received > MAX_HANDSHAKE_BYTES:
            raise _HandshakeFailed(
                FailureKind.HANDSHAKE_FAILURE,
                f"the server sent more than {MAX_HANDSHAKE_BYTES // 1048576} MiB without "
                "completing the TLS handshake",
            )
        tls.bio_write(data)
    alpn = tls.get_alpn_proto_negotiated()
    return TlsObservation(
        target=target,
        peer_address=address,
        observed_at_utc=now(),
        chain_der=served_chain_der(tls),
        protocol=tls.get_protocol_version_name(),
        cipher=tls.get_cipher_name() or "unknown",
        alpn=alpn.decode("ascii", "replace") if alpn else None,
        connect_s=0.0,
        handshake_s=0.0,
        ocsp_staple_der=seen.der,
    )


def _sni_bytes(name: str) -> bytes:
    """``name`` as the SNI extension carries it (A-labels); U-labels are converted."""
    try:
        return name.encode("ascii")
    except UnicodeError:
        pass
    try:
        return name.encode("idna")
    except UnicodeError as exc:
        raise _HandshakeFailed(
            FailureKind.HANDSHAKE_FAILURE, f'the SNI name "{name}" cannot be encoded: {exc}'
        ) from exc


async def _flush(loop: asyncio.AbstractEventLoop, sock: socket.socket, tls: SSL.Connection) -> None:
    """Send whatever OpenSSL has written to its outgoing memory BIO."""
    while True:
        try:
            pending = tls.bio_read(_RECV_BYTES)
        except SSL.WantReadError:
            return
        if not pending:
            return
        await send_all(loop, sock, pending)


class _Wire:
    """What the server sent during the handshake: a byte count, its start, its alerts."""

    __slots__ = ("alerts", "first", "received")

    def __init__(self) -> None:
        self.received = 0
        self.first = b""
        self.alerts = AlertWatcher()

    def add(self, data: bytes) -> None:
        self.received += len(data)
        if len(self.first) < 512:
            self.first += data[: 512 - len(self.first)]
        self.alerts.feed(data)


def served_chain_der(tls: SSL.Connection) -> tuple[bytes, ...]:
    """The certificates the peer sent, leaf first, in the order it sent them.

    Args:
        tls: A client connection after a completed handshake.

    Returns:
        DER encodings, leaf first; empty when the server sent none (anonymous suites).
    """
    # OpenSSL's own DER encoding, not a round trip through cryptography: bytes that
    # cryptography would refuse must still reach analysis, which reports them.
    chain = tls.get_peer_cert_chain()
    return tuple(crypto.dump_certificate(crypto.FILETYPE_ASN1, cert) for cert in chain or ())


def _with_timings(
    observation: TlsObservation, *, connect_s: float, handshake_s: float
) -> TlsObservation:
    return TlsObservation(
        target=observation.target,
        peer_address=observation.peer_address,
        observed_at_utc=observation.observed_at_utc,
        chain_der=observation.chain_der,
        protocol=observation.protocol,
        cipher=observation.cipher,
        alpn=observation.alpn,
        connect_s=connect_s,
        handshake_s=handshake_s,
        ocsp_staple_der=observation.ocsp_staple_der,
    )


def _openssl_reasons(exc: SSL.Error) -> list[str]:
    """OpenSSL's reason codes from a pyOpenSSL error, as ``WRONG_VERSION_NUMBER``."""
    queue = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
    reasons = [str(entry[-1]) for entry in queue if isinstance(entry, tuple) and entry]
    return [reason.upper().replace(" ", "_") for reason in reasons if reason]


def _openssl_libraries(exc: SSL.Error) -> set[str]:
    """The OpenSSL libraries (``asn1 encoding routines``, ...) named in a pyOpenSSL error."""
    queue = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
    return {str(entry[0]).lower() for entry in queue if isinstance(entry, tuple) and entry}


def _alert_received(wire: _Wire, seen: _Seen) -> ReceivedAlert | None:
    """The alert that ended the handshake: read on the wire, else by OpenSSL (encrypted)."""
    alert = wire.alerts.decisive_alert()
    if alert is None:
        fatal = [a for a in seen.alerts if a.is_fatal]
        alert = fatal[-1] if fatal else None
    return alert


def _closed_by_server(*, wire: _Wire, seen: _Seen) -> _HandshakeFailed:
    alert = _alert_received(wire, seen)
    if alert is not None and alert.description != 0:
        return _alert_failure(alert)
    tls_alert = alert.name if alert is not None else None
    if wire.received == 0:
        return _HandshakeFailed(
            FailureKind.CONNECTION_RESET,
            "the server closed the connection without answering the ClientHello",
        )
    if wire.alerts.stopped == "not_tls":
        return _not_tls(wire)
    return _HandshakeFailed(
        FailureKind.HANDSHAKE_FAILURE,
        "the server closed the connection in the middle of the TLS handshake",
        tls_alert=tls_alert,
    )


def _alert_failure(alert: ReceivedAlert) -> _HandshakeFailed:
    level = "fatal" if alert.is_fatal else "warning" if alert.level == 1 else f"level {alert.level}"
    return _HandshakeFailed(
        FailureKind.HANDSHAKE_FAILURE,
        f"the server sent the TLS alert {alert.name} ({level}, code {alert.description})",
        tls_alert=alert.name,
    )


def _not_tls(wire: _Wire) -> _HandshakeFailed:
    detail = "the server's answer is not TLS"
    start = wire.first[:48]
    if sum(32 <= byte < 127 or byte in b"\r\n\t" for byte in start) >= 0.8 * len(start):
        detail += f': it begins "{quoted_start(start, limit=48)}"'
    else:
        detail += f": it begins with the bytes {start[:8].hex(' ')}"
    hint = plaintext_service_hint(wire.first)
    if hint is not None:
        detail += f"; {hint}"
    return _HandshakeFailed(FailureKind.NOT_TLS, detail)


def _classify_ssl_error(exc: SSL.Error, *, wire: _Wire, seen: _Seen) -> _HandshakeFailed:
    if isinstance(exc, SSL.ZeroReturnError | SSL.SysCallError):
        return _closed_by_server(wire=wire, seen=seen)
    reasons = _openssl_reasons(exc)
    if "UNEXPECTED_EOF_WHILE_READING" in reasons:
        return _closed_by_server(wire=wire, seen=seen)
    alert = _alert_received(wire, seen)
    if alert is not None:
        return _alert_failure(alert)
    if wire.received > 0 and (
        wire.alerts.stopped == "not_tls" or any(reason in _NOT_TLS_REASONS for reason in reasons)
    ):
        return _not_tls(wire)
    text = "; ".join(r.lower().replace("_", " ") for r in reasons) or type(exc).__name__
    if _openssl_libraries(exc) & {"asn1 encoding routines", "x509 certificate routines"}:
        # OpenSSL could not decode what the server sent as a certificate: say so first,
        # its own reason words after, for whoever debugs the server.
        text = f"the server sent a certificate that is not valid DER (OpenSSL: {text})"
    return _HandshakeFailed(
        FailureKind.HANDSHAKE_FAILURE,
        f"TLS handshake failed: {text}",
        # The one message OpenSSL limits by size that a server may lawfully make large.
        oversized_certificates="EXCESSIVE_MESSAGE_SIZE" in reasons,
    )


def _classify_os_error(exc: OSError, phase: str) -> tuple[FailureKind, str]:
    if isinstance(exc, ConnectionRefusedError):
        return FailureKind.CONNECTION_REFUSED, "connection refused (nothing listens on the port)"
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return FailureKind.CONNECTION_RESET, f"connection reset by the server during the {phase}"
    if exc.errno in _UNREACHABLE_ERRNOS:
        return FailureKind.UNREACHABLE, f"{exc.strerror or exc} during the {phase}"
    if exc.errno == errno.ETIMEDOUT:
        return FailureKind.TIMEOUT, f"the operating system timed out the {phase}"
    return FailureKind.UNREACHABLE, f"{exc.strerror or exc} during the {phase}"


async def _upgrade(
    target: Target,
    sock: socket.socket,
    *,
    address: str,
    options: ProbeOptions,
    now: Callable[[], datetime],
) -> ProbeFailure | None:
    if target.starttls is None:
        return None
    channel = PlainChannel(asyncio.get_running_loop(), sock)
    try:
        async with asyncio.timeout(options.starttls_timeout_s):
            await negotiate_starttls(
                target.starttls, channel, server_name=target.server_name or target.host
            )
    except TimeoutError:
        detail = (
            f"no {target.starttls.value} STARTTLS upgrade within {options.starttls_timeout_s:g} s"
        )
        return _failure(target, address, now, FailureKind.TIMEOUT, detail)
    except ProbeError as exc:
        return _failure(target, address, now, FailureKind(exc.kind), exc.detail)
    except OSError as exc:
        return _failure(target, address, now, *_classify_os_error(exc, "STARTTLS dialogue"))
    if channel.leftover:
        detail = (
            f"the server sent {len(channel.leftover)} unexpected bytes after agreeing to "
            f"STARTTLS: {channel.leftover[:60]!r}"
        )
        return _failure(target, address, now, FailureKind.STARTTLS_FAILURE, detail)
    return None


def _failure(
    target: Target,
    address: str,
    now: Callable[[], datetime],
    kind: FailureKind,
    detail: str,
    *,
    tls_alert: str | None = None,
) -> ProbeFailure:
    return ProbeFailure(
        target=target,
        kind=kind,
        detail=detail,
        observed_at_utc=now(),
        peer_address=address,
        tls_alert=tls_alert,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)
