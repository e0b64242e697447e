"""Protocol and cipher probes of STARTTLS endpoints against the lab's loopback servers."""

from __future__ import annotations

import asyncio

import pytest

from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import StartTlsServer
from certvigil.observed.handshake import FailureKind, ProbeFailure
from certvigil.observed.tls_config import TlsConfigObservation, TlsProtocol
from certvigil.probe.tls_config import observe_tls_config
from certvigil.targets.target import StartTLS, Target


@pytest.fixture(scope="module")
def pki() -> ThrowawayPki:
    """A throwaway PKI for the STARTTLS servers."""
    return ThrowawayPki.create()


@pytest.mark.parametrize("protocol", [StartTLS.SMTP, StartTLS.IMAP, StartTLS.POSTGRES])
def test_each_probe_speaks_the_dialogue_first(pki: ThrowawayPki, protocol: StartTLS) -> None:
    """Every probe connection upgrades first, so TLS 1.2 and 1.3 are seen as accepted."""
    leaf = pki.issue_leaf()
    server = StartTlsServer(protocol, chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem)
    with server as address:
        target = Target(host="127.0.0.1", port=address.port, sni="localhost", starttls=protocol)
        result = asyncio.run(observe_tls_config(target, connect_timeout_s=2, handshake_timeout_s=2))
    assert isinstance(result, TlsConfigObservation), result
    accepted = {p.protocol for p in result.protocols if p.is_accepted}
    assert {TlsProtocol.TLS_1_2, TlsProtocol.TLS_1_3} <= accepted
    assert result.handshake_count == server.connections_accepted


def test_a_refused_upgrade_is_a_starttls_failure(pki: ThrowawayPki) -> None:
    """A server that declines STARTTLS on every connection yields a starttls_failure."""
    leaf = pki.issue_leaf()
    server = StartTlsServer(
        StartTLS.SMTP, chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem, refuse=True
    )
    with server as address:
        target = Target(host="127.0.0.1", port=address.port, starttls=StartTLS.SMTP)
        result = asyncio.run(observe_tls_config(target, connect_timeout_s=2, handshake_timeout_s=2))
    assert isinstance(result, ProbeFailure)
    assert result.kind is FailureKind.STARTTLS_FAILURE, result
