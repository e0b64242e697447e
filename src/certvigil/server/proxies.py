"""Who a request came from behind reverse proxies: ``serve.trusted_proxies``.

The log-in throttle counts failures per client address, and the session cookie is
``Secure`` when the browser used https. Behind a reverse proxy the connection comes from
the proxy, so the proxy's ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are what tell;
but anyone can send those headers. They are honoured only on a connection from an
address inside ``serve.trusted_proxies`` (CIDR blocks), and otherwise ignored: the
connection's own address and scheme decide.

``X-Forwarded-For`` is read from the right, where each proxy appended the address it
saw: trusted proxies are skipped, and the first address that is not one is the client
(what is left of it the client may have written itself, so it is never read). When
every address is a trusted proxy, the leftmost is the client. An entry that is not an
IP address stops the walk at the proxy that appended it. uvicorn's own proxy-header
handling is off (``certvigil serve`` starts it with ``proxy_headers=False``), so this is
the one place that reads these headers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_FORWARDED_CHARS = 4096
"""The part of ``X-Forwarded-For`` read (from its right end): a bound on the work."""


def parse_trusted_proxies(entries: Sequence[str]) -> tuple[IpNetwork, ...]:
    """Reads ``serve.trusted_proxies``.

    Raises:
        ValueError: An entry is not a CIDR block or an address (the message names it).
    """
    networks: list[IpNetwork] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r}: give a CIDR block or an IP address") from None
    return tuple(networks)


def _address(text: str) -> IpAddress | None:
    value = text.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:443"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IpAddress, trusted: Sequence[IpNetwork]) -> bool:
    return any(address in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IpNetwork]
) -> str:
    """The address a request is counted against.

    Args:
        peer: The connection's remote address (``None`` when unknown).
        forwarded_for: Every ``X-Forwarded-For`` header value, in order.
        trusted: ``serve.trusted_proxies``.

    Returns:
        The client's address as text; ``"unknown"`` without a peer.
    """
    if peer is None:
        return "unknown"
    peer_address = _address(peer)
    if peer_address is None or not trusted or not _is_trusted(peer_address, trusted):
        return peer
    joined = ",".join(forwarded_for)[-MAX_FORWARDED_CHARS:]
    hops = [hop for hop in joined.split(",") if hop.strip()]
    if len(",".join(forwarded_for)) > MAX_FORWARDED_CHARS and hops:
        hops = hops[1:]  # the first one may have been cut in two
    client = peer_address
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # not an address: the proxy that appended it is as far as we know
        client = address
        if not _is_trusted(address, trusted):
            break
    return str(client)


def forwarded_scheme(
    peer: str | None, scheme: str, forwarded_proto: str | None, trusted: Sequence[IpNetwork]
) -> str:
    """The scheme the browser used: the proxy's ``X-Forwarded-Proto`` from a trusted
    proxy (its last value, the one the nearest proxy set), else the connection's own."""
    peer_address = _address(peer) if peer is not None else None
    if forwarded_proto is None or peer_address is None or not _is_trusted(peer_address, trusted):
        return scheme
    value = forwarded_proto.split(",")[-1].strip().lower()
    return value if value in ("http", "https") else scheme
