"""One TCP connection and TLS handshake per call: capture what the server sent, or why not.

The probe verifies nothing: it accepts any certificate, any protocol version and any cipher
the local OpenSSL can still speak (``@SECLEVEL=0``), because judging trust is the job of
``certvigil.analysis``. What it records is the chain exactly as the server sent it, in the
server's order, together with the negotiated parameters and timings.

The handshake runs over an ``ssl.SSLObject`` and two memory BIOs on a plain non-blocking
socket, driven by ``loop.sock_recv``/``loop.sock_sendall``. That gives one code path for
implicit TLS and STARTTLS (the plain-text dialogue uses the same socket first), exact control
of the connect and handshake time-outs, and no per-connection transport machinery.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from certvigil.errors import ProbeError
from certvigil.probe.observation import FailureKind, ProbeFailure, TlsObservation
from certvigil.probe.starttls import PlainChannel, negotiate_starttls
from certvigil.target import Target

# OpenSSL 3 no longer sets SSL_OP_LEGACY_SERVER_CONNECT by default, and Python < 3.12 has
# no name for it; without it, servers that predate RFC 5746 cannot be observed at all.
_OP_LEGACY_SERVER_CONNECT = getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)

_RECV_BYTES = 65536

# _ssl.Certificate.public_bytes format code for DER (ssl does not re-export it before 3.13).
_ENCODING_DER = int(getattr(ssl, "_ssl").ENCODING_DER)  # noqa: B009

# The TLS alert descriptions (RFC 8446 §6 and earlier), as OpenSSL spells them in its
# reason codes once upper-cased: "SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_UNRECOGNIZED_NAME".
_TLS_ALERTS = frozenset(
    {
        "close_notify",
        "unexpected_message",
        "bad_record_mac",
        "decryption_failed",
        "record_overflow",
        "decompression_failure",
        "handshake_failure",
        "no_certificate",
        "bad_certificate",
        "unsupported_certificate",
        "certificate_revoked",
        "certificate_expired",
        "certificate_unknown",
        "illegal_parameter",
        "unknown_ca",
        "access_denied",
        "decode_error",
        "decrypt_error",
        "export_restriction",
        "protocol_version",
        "insufficient_security",
        "internal_error",
        "inappropriate_fallback",
        "user_cancelled",
        "no_renegotiation",
        "missing_extension",
        "unsupported_extension",
        "certificate_unobtainable",
        "unrecognized_name",
        "bad_certificate_status_response",
        "bad_certificate_hash_value",
        "unknown_psk_identity",
        "certificate_required",
        "no_application_protocol",
    }
)
_ALERT_REASON = re.compile(r"^(?:SSLV3|TLSV1|TLSV13)_(?:ALERT_)?(?P<name>[A-Z_]+)$")

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


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeOptions:
    """How one probe connects and shakes hands.

    Attributes:
        connect_timeout_s: Limit on establishing the TCP connection.
        handshake_timeout_s: Limit on the TLS handshake, from the first ClientHello byte
            to the server's Finished.
        starttls_timeout_s: Limit on the plain-text upgrade dialogue before the
            handshake (STARTTLS targets only).
        alpn_protocols: ALPN protocols offered, in preference order; empty offers none.
    """

    connect_timeout_s: float = 5.0
    handshake_timeout_s: float = 10.0
    starttls_timeout_s: float = 10.0
    alpn_protocols: tuple[str, ...] = ("h2", "http/1.1")

    def __post_init__(self) -> None:
        for name in ("connect_timeout_s", "handshake_timeout_s", "starttls_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")


@functools.lru_cache(maxsize=16)
def client_context(alpn_protocols: tuple[str, ...] = ()) -> ssl.SSLContext:
    """The probe's client context: every version and cipher allowed, verification off.

    Built once per ALPN list and shared by every probe: creating an ``SSLContext`` costs
    more than a loopback handshake.

    Args:
        alpn_protocols: ALPN protocols to offer.

    Returns:
        A client ``SSLContext`` that accepts any certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    # SECLEVEL=0 lets OpenSSL offer and accept the weak suites, small keys and SHA-1
    # signatures that analysis is there to report.
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.options |= _OP_LEGACY_SERVER_CONNECT
    if alpn_protocols:
        context.set_alpn_protocols(list(alpn_protocols))
    return context


class _HandshakeFailed(Exception):
    """Internal: a classified failure inside the probe, turned into a ProbeFailure."""

    def __init__(self, kind: FailureKind, detail: str, *, tls_alert: str | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.tls_alert = tls_alert


async def probe_tls(
    target: Target,
    *,
    address: str,
    options: ProbeOptions,
    clock: Callable[[], datetime] | None = None,
) -> TlsObservation | ProbeFailure:
    """Connect to ``address``, upgrade with STARTTLS if asked, shake hands, record the result.

    Opens exactly one connection. Network problems never raise: they come back as a
    ``ProbeFailure`` whose ``kind`` classifies them.

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
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        start = time.perf_counter()
        try:
            await asyncio.wait_for(
                loop.sock_connect(sock, (address, target.port)), options.connect_timeout_s
            )
        except TimeoutError:
            detail = f"no TCP connection within {options.connect_timeout_s:g} s"
            return _failure(target, address, now, FailureKind.TIMEOUT, detail)
        except OSError as exc:
            return _failure(target, address, now, *_classify_os_error(exc, "TCP connect"))
        if target.starttls is not None:
            failure = await _upgrade(target, sock, address=address, options=options, now=now)
            if failure is not None:
                return failure
        connected = time.perf_counter()
        try:
            observation = await asyncio.wait_for(
                _handshake(target, sock, address=address, options=options, now=now),
                options.handshake_timeout_s,
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
            return _failure(target, address, now, exc.kind, exc.detail, tls_alert=exc.tls_alert)
        except OSError as exc:
            return _failure(target, address, now, *_classify_os_error(exc, "handshake"))
        handshake_s = time.perf_counter() - connected
        return _with_timings(observation, connect_s=connected - start, handshake_s=handshake_s)
    finally:
        sock.close()


async def _handshake(
    target: Target,
    sock: socket.socket,
    *,
    address: str,
    options: ProbeOptions,
    now: Callable[[], datetime],
) -> TlsObservation:
    loop = asyncio.get_running_loop()
    incoming = ssl.MemoryBIO()
    outgoing = ssl.MemoryBIO()
    tls = client_context(options.alpn_protocols).wrap_bio(
        incoming, outgoing, server_side=False, server_hostname=target.server_name
    )
    received = 0
    while True:
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        except ssl.SSLError as exc:
            # Send OpenSSL's own alert, if it wrote one, as a courtesy to the server.
            pending = outgoing.read()
            if pending:
                try:
                    await loop.sock_sendall(sock, pending)
                except OSError:
                    pass
            raise _classify_ssl_error(exc, received_bytes=received) from exc
        pending = outgoing.read()
        if pending:
            await loop.sock_sendall(sock, pending)
        if done:
            break
        data = await loop.sock_recv(sock, _RECV_BYTES)
        if data:
            received += len(data)
            incoming.write(data)
        else:
            incoming.write_eof()
    cipher = tls.cipher()
    return TlsObservation(
        target=target,
        peer_address=address,
        observed_at_utc=now(),
        chain_der=served_chain_der(tls),
        protocol=tls.version() or "unknown",
        cipher=cipher[0] if cipher else "unknown",
        alpn=tls.selected_alpn_protocol(),
        connect_s=0.0,
        handshake_s=0.0,
    )


def served_chain_der(tls: ssl.SSLObject) -> tuple[bytes, ...]:
    """The certificates the peer sent, leaf first, in the order it sent them.

    Python 3.13 makes ``get_unverified_chain`` public; 3.11 and 3.12 have it on the
    private ``_sslobj``. With verification off, ``getpeercert`` would give only the leaf.

    Args:
        tls: An ``SSLObject`` after a completed handshake.

    Returns:
        DER encodings, leaf first; empty when the server sent none (anonymous suites).
    """
    public = getattr(tls, "get_unverified_chain", None)
    if public is not None:  # Python >= 3.13: a list of DER bytes
        return tuple(bytes(der) for der in (public() or ()))
    chain = tls._sslobj.get_unverified_chain()  # type: ignore[attr-defined]
    if not chain:
        return ()
    return tuple(cert.public_bytes(_ENCODING_DER) for cert in chain)


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


def tls_alert_name(exc: ssl.SSLError) -> str | None:
    """The TLS alert the peer sent, from OpenSSL's reason code, or ``None``.

    Args:
        exc: An error from the handshake.

    Returns:
        The RFC alert description (``"unrecognized_name"``), or ``None`` when the error
        was not an alert received from the peer.
    """
    reason = getattr(exc, "reason", None)
    if not isinstance(reason, str):
        return None
    match = _ALERT_REASON.match(reason)
    if match is None:
        return None
    name = match.group("name").lower()
    return name if name in _TLS_ALERTS else None


def _classify_ssl_error(exc: ssl.SSLError, *, received_bytes: int) -> _HandshakeFailed:
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError) or reason in (
        "UNEXPECTED_EOF_WHILE_READING",
    ):
        if received_bytes == 0:
            return _HandshakeFailed(
                FailureKind.CONNECTION_RESET,
                "the server closed the connection without answering the ClientHello",
            )
        return _HandshakeFailed(
            FailureKind.HANDSHAKE_FAILURE,
            "the server closed the connection in the middle of the TLS handshake",
        )
    alert = tls_alert_name(exc)
    if alert is not None:
        return _HandshakeFailed(
            FailureKind.HANDSHAKE_FAILURE,
            f"the server sent the TLS alert {alert}",
            tls_alert=alert,
        )
    if reason in _NOT_TLS_REASONS and received_bytes > 0:
        return _HandshakeFailed(
            FailureKind.NOT_TLS,
            f"the server's answer is not TLS ({reason.lower().replace('_', ' ')})",
        )
    text = reason.lower().replace("_", " ") if isinstance(reason, str) else str(exc)
    return _HandshakeFailed(FailureKind.HANDSHAKE_FAILURE, f"TLS handshake failed: {text}")


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
        await asyncio.wait_for(
            negotiate_starttls(
                target.starttls, channel, server_name=target.server_name or target.host
            ),
            options.starttls_timeout_s,
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
