"""How one probe connects and shakes hands: options apart from the probe, so that what
only configures scans does not import the TLS stack."""

from __future__ import annotations

from dataclasses import dataclass


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
