"""IP address literals, parsed once: a scan asks the same question of one string many times.

Target parsing, resolution, the per-address limits, hostname matching and chain
verification each need to know whether a host is an address and which one. Parsing
with ``ipaddress`` costs several microseconds (more when the text is a DNS name and the
answer is an exception); these helpers remember the answer for recent strings.
"""

from __future__ import annotations

import functools
import ipaddress

__all__ = ["IPAddress", "ip_or_none", "is_ip_literal", "parse_ip"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# A sweep of a fleet asks about each address several times, phase after phase (its
# configuration, expansion, resolution): the cache holds a large fleet's addresses
# (some 7 MB when full) so that the later phases find them.
_CACHE_ENTRIES = 32768


@functools.lru_cache(maxsize=_CACHE_ENTRIES)
def ip_or_none(text: str) -> IPAddress | None:
    """The address ``text`` spells, or ``None`` when it is not an IP address literal.

    Args:
        text: A host: an IPv4 or IPv6 literal (IPv6 without brackets) or a DNS name.

    Returns:
        The parsed address (immutable and shared between callers), or ``None``.
    """
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_ip(text: str) -> IPAddress:
    """The address ``text`` spells.

    Raises:
        ValueError: ``text`` is not an IP address literal.
    """
    address = ip_or_none(text)
    if address is None:
        raise ValueError(f"{text!r} does not appear to be an IPv4 or IPv6 address")
    return address


def is_ip_literal(text: str) -> bool:
    """Whether ``text`` is an IP address literal rather than a DNS name."""
    return ip_or_none(text) is not None
