"""What the protocol and cipher probes saw: raw facts, no judgement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from certvigil.targets.target import Target
from certvigil.tls.records import TlsProtocol


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolSupport:
    """What one protocol version probe found.

    Attributes:
        protocol: The version probed.
        is_accepted: The server negotiated exactly this version.
        cipher_suites: Accepted suite codes (three-byte cipher kinds for SSLv2); in
            the server's preference order when it enforces one, else in the order
            certvigil offered them (strongest first).
        server_enforces_order: The server picks by its own order; ``None`` when fewer
            than two suites are accepted (nothing to order) or for SSLv2.
        rejection: How the server refused the version (alert name,
            ``"connection_closed"``, ``"negotiated TLSv1.2"``...); ``None`` if accepted.
    """

    protocol: TlsProtocol
    is_accepted: bool
    cipher_suites: tuple[int, ...] = ()
    server_enforces_order: bool | None = None
    rejection: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpObservation:
    """The answer to one HTTPS ``GET /``.

    Attributes:
        status_code: The HTTP status code.
        hsts_header: The Strict-Transport-Security header value, ``None`` when absent.
    """

    status_code: int
    hsts_header: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfigObservation:
    """Raw facts about an endpoint's TLS configuration; no judgement.

    Attributes:
        target: What was probed.
        peer_address: The IP address every probe connected to.
        observed_at_utc: When the assessment finished (aware UTC).
        protocols: One entry per protocol, SSLv2 first.
        tls13_groups: Key-exchange groups accepted in TLS 1.3, in the order found
            (the server's preference when it has one); empty without TLS 1.3.
        ecdh_groups: Named curves accepted for ECDHE in TLS 1.2 and below; empty
            when no ECDHE suite is accepted there.
        dh_prime_bits: Size of the DH prime a DHE suite uses; ``None`` without DHE.
        fallback_scsv: The server refuses a downgraded hello carrying
            TLS_FALLBACK_SCSV; ``None`` when fewer than two versions are accepted.
        secure_renegotiation: The server answers renegotiation_info (RFC 5746);
            ``None`` when only TLS 1.3 (which has no renegotiation) or SSLv2 is spoken.
        compression: The server accepts DEFLATE compression; ``None`` when only
            TLS 1.3 or SSLv2 is spoken.
        heartbleed: The server answers a heartbeat request that claims more payload
            than it carries (CVE-2014-0160); ``None`` when not tested (only TLS 1.3 or
            SSLv2 spoken) or the test was inconclusive.
        http: The HTTPS answer, ``None`` when the endpoint does not speak HTTP (or
            HTTP was not probed, as for STARTTLS endpoints).
        handshake_count: Connections opened.
        elapsed_s: Wall-clock seconds the assessment took.
        probe_errors: Odd replies met along the way (malformed records, a suite that
            was not offered), each one line; the verdicts above stand without them.
    """

    target: Target
    peer_address: str
    observed_at_utc: datetime
    protocols: tuple[ProtocolSupport, ...]
    tls13_groups: tuple[int, ...] = ()
    ecdh_groups: tuple[int, ...] = ()
    dh_prime_bits: int | None = None
    fallback_scsv: bool | None = None
    secure_renegotiation: bool | None = None
    compression: bool | None = None
    heartbleed: bool | None = None
    http: HttpObservation | None = None
    handshake_count: int = 0
    elapsed_s: float = 0.0
    probe_errors: tuple[str, ...] = ()

    def support(self, protocol: TlsProtocol) -> ProtocolSupport:
        """The entry for ``protocol``."""
        for entry in self.protocols:
            if entry.protocol is protocol:
                return entry
        return ProtocolSupport(protocol=protocol, is_accepted=False, rejection="not probed")

    @property
    def accepted_protocols(self) -> tuple[TlsProtocol, ...]:
        """Accepted protocols, oldest first."""
        return tuple(p.protocol for p in self.protocols if p.is_accepted)
