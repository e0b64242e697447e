"""What a probe saw: raw facts from one connection, or a classified failure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from certvigil.targets.target import Target


class FailureKind(StrEnum):
    """Why an endpoint could not be observed; stable strings used in JSON and the store."""

    DNS_FAILURE = "dns_failure"
    CONNECTION_REFUSED = "connection_refused"
    TIMEOUT = "timeout"
    CONNECTION_RESET = "connection_reset"
    NOT_TLS = "not_tls"
    HANDSHAKE_FAILURE = "handshake_failure"
    STARTTLS_FAILURE = "starttls_failure"
    UNREACHABLE = "unreachable"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsObservation:
    """One successful TLS handshake, as the server answered it.

    Attributes:
        target: What was probed.
        peer_address: The IP address connected to.
        observed_at_utc: When the handshake completed (aware UTC).
        chain_der: The certificates exactly as the server sent them, leaf first,
            in the server's order (unneeded or misordered ones included).
        protocol: Negotiated protocol as OpenSSL names it (``"TLSv1.3"``).
        cipher: Negotiated cipher suite, OpenSSL name (``"TLS_AES_256_GCM_SHA384"``).
        alpn: Negotiated ALPN protocol, ``None`` when none was agreed.
        connect_s: Seconds from the connect call to an established TCP connection
            (for STARTTLS: to the end of the plain-text upgrade).
        handshake_s: Seconds the TLS handshake took.
        ocsp_staple_der: The stapled OCSP response, ``None`` when none was sent or
            the probe did not ask for one.
    """

    target: Target
    peer_address: str
    observed_at_utc: datetime
    chain_der: tuple[bytes, ...]
    protocol: str
    cipher: str
    alpn: str | None = None
    connect_s: float
    handshake_s: float
    ocsp_staple_der: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeFailure:
    """An endpoint that could not be observed, and why.

    Attributes:
        target: What was probed.
        kind: The failure class.
        detail: Human-readable detail (OS error text, TLS alert, server reply).
        observed_at_utc: When the failure was seen (aware UTC).
        peer_address: The IP address tried, ``None`` when DNS failed.
        tls_alert: The TLS alert description (``"handshake_failure"``,
            ``"unrecognized_name"``) when the server sent one.
    """

    target: Target
    kind: FailureKind
    detail: str
    observed_at_utc: datetime
    peer_address: str | None = None
    tls_alert: str | None = None


ProbeResult = TlsObservation | ProbeFailure
