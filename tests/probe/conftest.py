"""Fixtures for the probe tests: one throwaway PKI and leaves served by loopback servers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from certvigil.demo.pki import IssuedCert, ThrowawayPki


def ipv6_loopback_works() -> bool:
    """Whether this machine can listen on ``::1``."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


LOOPBACKS = [
    "127.0.0.1",
    pytest.param(
        "::1",
        marks=pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback here"),
    ),
]
"""Both loopback families, the IPv6 one skipped where the machine has none."""


@pytest.fixture(scope="session")
def pki() -> ThrowawayPki:
    """A root and an intermediate for the whole test session."""
    return ThrowawayPki.create()


@pytest.fixture(scope="session")
def leaf(pki: ThrowawayPki) -> IssuedCert:
    """A leaf for localhost and 127.0.0.1, issued by the intermediate."""
    return pki.issue_leaf(dns_names=("localhost", "a.test"), ip_addresses=("127.0.0.1", "::1"))


@pytest.fixture(scope="session")
def chain(pki: ThrowawayPki, leaf: IssuedCert) -> tuple[bytes, ...]:
    """The leaf then the intermediate, as a well-configured server sends them."""
    return pki.served_chain_der(leaf)


@pytest.fixture
def unused_port() -> Iterator[int]:
    """A port number nothing listens on (reserved by a bound socket meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
