"""The Target: one endpoint to check, as (host, port, SNI, STARTTLS protocol)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from certvigil.targets.ipaddr import is_ip_literal


class StartTLS(StrEnum):
    """Plain-text protocols that upgrade to TLS in-band before the handshake."""

    SMTP = "smtp"
    IMAP = "imap"
    POP3 = "pop3"
    FTP = "ftp"
    LDAP = "ldap"
    XMPP = "xmpp"
    POSTGRES = "postgres"


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One endpoint to probe.

    Attributes:
        host: A DNS name (lower-case, A-label form for IDNs) or an IP address literal
            (IPv6 without brackets).
        port: TCP port, 1-65535.
        sni: The server name to send and to match the certificate against; ``None``
            means "use ``host`` when it is a name, send none for an IP address".
        starttls: The in-band upgrade protocol, or ``None`` for implicit TLS.
    """

    host: str
    port: int
    sni: str | None = None
    starttls: StartTLS | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be in 1..65535, not {self.port}")
        if not self.host:
            raise ValueError("host must not be empty")

    @property
    def is_ip(self) -> bool:
        """Whether ``host`` is an IP address literal rather than a DNS name."""
        return is_ip_literal(self.host)

    @property
    def server_name(self) -> str | None:
        """The name sent as SNI: the override, else the host when it is a DNS name."""
        if self.sni is not None:
            return self.sni
        return None if self.is_ip else self.host

    @property
    def expected_name(self) -> str:
        """The name or address the certificate must match."""
        return self.sni if self.sni is not None else self.host

    @property
    def endpoint(self) -> str:
        """``host:port``, with IPv6 literals in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        text = self.endpoint
        if self.sni is not None and self.sni != self.host:
            text += f" (sni {self.sni})"
        if self.starttls is not None:
            text += f" (starttls {self.starttls.value})"
        return text
