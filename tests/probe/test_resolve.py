"""DNS resolution of targets: literals pass through, names resolve, failures are classified."""

from __future__ import annotations

import asyncio

import pytest

from certvigil.observed.handshake import FailureKind
from certvigil.probe.resolve import DnsFailure, resolve_addresses


def test_ip_literals_are_returned_without_lookup() -> None:
    """An IPv4 or IPv6 literal comes back as the only address, canonicalised."""
    assert asyncio.run(resolve_addresses("127.0.0.1", 443)) == ("127.0.0.1",)
    assert asyncio.run(resolve_addresses("0:0:0:0:0:0:0:1", 443)) == ("::1",)


def test_localhost_resolves_to_loopback() -> None:
    """``localhost`` resolves (from the hosts file) to loopback addresses only."""
    addresses = asyncio.run(resolve_addresses("localhost", 443))
    assert addresses
    assert all(a == "::1" or a.startswith("127.") for a in addresses)
    assert len(addresses) == len(set(addresses))


def test_invalid_name_is_a_definitive_dns_failure() -> None:
    """A name that cannot be encoded is a dns_failure that a retry would not fix."""
    with pytest.raises(DnsFailure) as caught:
        asyncio.run(resolve_addresses("x" * 64 + ".example", 443))
    assert caught.value.kind == FailureKind.DNS_FAILURE
    assert caught.value.is_transient is False
    assert "x" * 64 in caught.value.detail
