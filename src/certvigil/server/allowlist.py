"""What the server may probe or fetch on a request's behalf: CIDR blocks and name patterns.

The server must never become an open scanning proxy. ``POST /api/v1/scans`` probes
only targets inside ``serve.scan_allow``, and every AIA, OCSP and CRL fetch it makes for
such a scan goes through the same list, each redirect hop included
(``certvigil.probe.fenced_http``): an address literal must fall in one of its CIDR
blocks, a host name must match one of its patterns.

A name is not taken on DNS's word. With ``serve.scan_allow_dns: check`` (the default) it
is resolved once and only the addresses inside the list's CIDR blocks are used; a name
that resolves to none of them is refused, and the connection goes to the address that
was checked (no second lookup). A list of name patterns without any block is then
refused at start-up, since nothing could pass. ``serve.scan_allow_dns: trust`` takes the
addresses of a matching name as they come (the operator vouches for that DNS); the
connection still goes to the addresses of the one lookup.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from certvigil.errors import UsageError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DNS_MODES = ("check", "trust")
"""The values of ``serve.scan_allow_dns``."""


@dataclass(frozen=True, slots=True)
class AllowList:
    """The networks and host-name patterns requests may reach.

    Attributes:
        networks: CIDR blocks.
        patterns: Lower-case host-name globs (``*.internal.example``, ``db1.lan``).
        trusts_dns: A name's addresses are used without checking them against
            ``networks`` (``serve.scan_allow_dns: trust``).
    """

    networks: tuple[IpNetwork, ...] = ()
    patterns: tuple[str, ...] = ()
    trusts_dns: bool = False

    @classmethod
    def parse(cls, entries: Sequence[str], *, dns: str = "check") -> AllowList:
        """Reads ``serve.scan_allow`` and ``serve.scan_allow_dns``.

        Raises:
            UsageError: An entry is neither a CIDR block nor a name pattern, ``dns`` is
                not one of :data:`DNS_MODES`, or name patterns come without a block to
                check their addresses against.
        """
        if dns not in DNS_MODES:
            raise UsageError(f"serve.scan_allow_dns: {dns!r}: give check or trust")
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
        if patterns and not networks and dns == "check":
            raise UsageError(
                "serve.scan_allow: name patterns need CIDR blocks to check the addresses "
                "they resolve to against: add the blocks, or set serve.scan_allow_dns: trust"
            )
        return cls(tuple(networks), tuple(patterns), trusts_dns=dns == "trust")

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

    def allows_address(self, address: str) -> bool:
        """Whether an IP address (text) is inside one of the CIDR blocks."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def allowed_addresses(self, host: str, addresses: tuple[str, ...]) -> tuple[str, ...]:
        """Of the addresses ``host`` resolved to, those a connection may go to.

        An address literal passes only inside a block; a name's addresses all pass when
        the list trusts DNS, else only those inside a block.
        """
        literal = host.strip().strip("[]")
        try:
            ipaddress.ip_address(literal)
            is_literal = True
        except ValueError:
            is_literal = False
        if self.trusts_dns and not is_literal:
            return addresses
        return tuple(a for a in addresses if self.allows_address(a))

    def allows_url(self, url: str) -> bool:
        """Whether a fetch of ``url`` (http only, as AIA/OCSP/CRL are) may be made."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return False
        return parts.scheme in ("http", "https") and bool(host) and self.allows_host(host or "")
