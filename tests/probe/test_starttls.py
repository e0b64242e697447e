"""STARTTLS probes against real plain-text-then-TLS servers on loopback, one per protocol."""

from __future__ import annotations

import asyncio

import pytest

from certvigil.demo.pki import IssuedCert
from certvigil.demo.servers import StartTlsServer, TlsServer
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.probe.options import ProbeOptions
from certvigil.probe.tls import probe_tls
from certvigil.targets.target import StartTLS, Target
from tests.support.fault_servers import SilentServer

FAST = ProbeOptions(connect_timeout_s=2.0, handshake_timeout_s=2.0, starttls_timeout_s=1.0)

# What each protocol's refusal looks like in the failure detail: the server's own words.
REFUSAL_WORDS = {
    StartTLS.SMTP: "250 8BITMIME",
    StartTLS.IMAP: "cv1 BAD",
    StartTLS.POP3: "-ERR",
    StartTLS.FTP: "502",
    StartTLS.LDAP: "StartTLS not supported",
    StartTLS.XMPP: "stream:features",
    StartTLS.POSTGRES: "does not accept SSL",
}


def probe(host: str, port: int, protocol: StartTLS) -> TlsObservation | ProbeFailure:
    """Probe with the given STARTTLS protocol on a fresh event loop."""
    target = Target(host=host, port=port, starttls=protocol, sni="a.test")
    return asyncio.run(probe_tls(target, address=host, options=FAST))


@pytest.mark.parametrize("protocol", list(StartTLS))
def test_upgrade_reaches_the_handshake(
    protocol: StartTLS, chain: tuple[bytes, ...], leaf: IssuedCert
) -> None:
    """Each STARTTLS dialogue upgrades and the chain behind it is captured."""
    with StartTlsServer(protocol, chain=chain, key_pem=leaf.key_pem) as at:
        result = probe(at.host, at.port, protocol)
    assert isinstance(result, TlsObservation), result
    assert result.chain_der == chain
    assert result.connect_s > 0


@pytest.mark.parametrize("protocol", list(StartTLS))
def test_refused_upgrade_is_a_starttls_failure(
    protocol: StartTLS, chain: tuple[bytes, ...], leaf: IssuedCert
) -> None:
    """A server that declines the upgrade is starttls_failure, quoting its reply."""
    with StartTlsServer(protocol, chain=chain, key_pem=leaf.key_pem, refuse=True) as at:
        result = probe(at.host, at.port, protocol)
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.STARTTLS_FAILURE
    assert REFUSAL_WORDS[protocol] in result.detail


def test_implicit_tls_where_starttls_was_expected(
    chain: tuple[bytes, ...], leaf: IssuedCert
) -> None:
    """An implicit-TLS server probed with SMTP STARTTLS times out in the dialogue, classified."""
    with TlsServer(chain=chain, key_pem=leaf.key_pem) as at:
        result = probe(at.host, at.port, StartTLS.SMTP)
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.TIMEOUT
    assert "smtp STARTTLS" in result.detail


def test_server_that_hangs_up_during_dialogue() -> None:
    """A server that closes during the dialogue is starttls_failure saying so."""
    with SilentServer() as at:
        # A Postgres SSLRequest to a silent server gets no byte back: time-out.
        result = probe(at.host, at.port, StartTLS.POSTGRES)
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.TIMEOUT
