"""What the server may probe or fetch on a request's behalf: CIDR blocks and name patterns.

The server must never become an open scanning proxy. ``POST /api/v1/scans`` probes
only targets inside ``serve.scan_allow``: an address literal must fall in one of its
CIDR blocks, a host name must match one of its patterns (the scan then connects to
where the server's DNS says the name is: a pattern trusts the operator's DNS).
``allows_url`` applies the same rule to a URL; the scans on request fetch nothing at
all (no AIA, OCSP or CRL), see ``certvigil.server.scans``.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from certvigil.errors import UsageError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AllowList:
    """The networks and host-name patterns requests may reach.

    Attributes:
        networks: CIDR blocks.
        patterns: Lower-case host-name globs (``*.internal.example``, ``db1.lan``).
    """

    networks: tuple[IpNetwork, ...] = ()
    patterns: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str]) -> AllowList:
        """Reads ``serve.scan_allow``.

        Raises:
            UsageError: An entry is neither a CIDR block nor a name pattern.
        """
        networks: list[IpNetwork] = []
        patterns: list[str] = []
        for entry in entries:
            text = entry.strip().lower()
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            if not text or any(c in text for c in "/: \\[]") or text.strip("*.") == "":
                raise UsageError(
                    f"serve.scan_allow: {entry!r}: give a CIDR block or a host name pattern"
                )
            patterns.append(text.rstrip("."))
        return cls(tuple(networks), tuple(patterns))

    @property
    def is_empty(self) -> bool:
        """Nothing may be scanned on request."""
        return not self.networks and not self.patterns

    def allows_host(self, host: str) -> bool:
        """Whether a host (name or address literal) may be reached."""
        text = host.strip().lower().rstrip(".")
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return any(fnmatch.fnmatchcase(text, p) for p in self.patterns)
        return any(address in network for network in self.networks)

    def allows_url(self, url: str) -> bool:
        """Whether a fetch of ``url`` (http only, as AIA/OCSP/CRL are) may be made."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return False
        return parts.scheme in ("http", "https") and bool(host) and self.allows_host(host or "")
