"""The TLS probe against real servers on loopback: what it captures and how it fails."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import ServedChain, TlsServer, closed_port
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.probe.ocsp_fetch import build_ocsp_request
from certvigil.probe.options import ProbeOptions
from certvigil.probe.tls import probe_tls
from certvigil.targets.target import Target
from tests.probe.conftest import LOOPBACKS
from tests.revocation.openssl_tools import openssl_stapling_server
from tests.support.fault_servers import (
    MalformedCertificateServer,
    PlainHttpServer,
    ResetServer,
    SilentServer,
)
from tests.support.ocsp_responder import OcspResponder, ResponseMode

FAST = ProbeOptions(connect_timeout_s=2.0, handshake_timeout_s=2.0, starttls_timeout_s=2.0)
PINNED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def probe(
    host: str, port: int, *, sni: str | None = None, options: ProbeOptions = FAST
) -> TlsObservation | ProbeFailure:
    """Probe ``host:port`` once on a fresh event loop."""
    target = Target(host=host, port=port, sni=sni)
    return asyncio.run(probe_tls(target, address=host, options=options, clock=lambda: PINNED))


def observed(result: TlsObservation | ProbeFailure) -> TlsObservation:
    """The observation, or a test failure that shows the probe's reason."""
    assert isinstance(result, TlsObservation), result
    return result


def failed(result: TlsObservation | ProbeFailure) -> ProbeFailure:
    """The failure, or a test failure that shows what was observed instead."""
    assert isinstance(result, ProbeFailure), result
    return result


@pytest.mark.parametrize("host", LOOPBACKS)
def test_handshake_captures_chain_in_server_order_and_parameters(
    host: str, pki: ThrowawayPki, leaf: IssuedCert
) -> None:
    """A handshake records every served certificate in order, protocol, cipher, ALPN, timings."""
    served = (leaf.der, pki.intermediate.der, pki.root.der)
    with TlsServer(chain=served, key_pem=leaf.key_pem, host=host, alpn_protocols=("h2",)) as at:
        result = observed(probe(at.host, at.port))
    assert result.chain_der == served
    assert result.protocol == "TLSv1.3"
    assert result.cipher.startswith("TLS_")
    assert result.alpn == "h2"
    assert result.peer_address == host
    assert result.observed_at_utc == PINNED
    assert 0 < result.connect_s < 2
    assert 0 < result.handshake_s < 2
    assert result.target.port == at.port


def test_misordered_chain_is_kept_as_sent(pki: ThrowawayPki, leaf: IssuedCert) -> None:
    """A chain served out of order (root before intermediate) is recorded in that order."""
    served = (leaf.der, pki.root.der, pki.intermediate.der, pki.intermediate.der)
    with TlsServer(chain=served, key_pem=leaf.key_pem) as at:
        result = observed(probe(at.host, at.port))
    assert result.chain_der == served


def test_sni_selects_the_certificate(pki: ThrowawayPki, leaf: IssuedCert) -> None:
    """The name sent as SNI makes the server choose its certificate for that name."""
    other = pki.issue_leaf(dns_names=("b.test",))
    sni_chains = {"b.test": ServedChain(chain=pki.served_chain_der(other), key_pem=other.key_pem)}
    server = TlsServer(
        chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem, sni_chains=sni_chains
    )
    with server as at:
        with_b = observed(probe(at.host, at.port, sni="b.test"))
        with_none = observed(probe(at.host, at.port))
    assert with_b.chain_der[0] == other.der
    assert with_none.chain_der[0] == leaf.der
    assert server.server_names_seen == ["b.test", None]


def test_old_protocol_is_observed(chain: tuple[bytes, ...], leaf: IssuedCert) -> None:
    """A server limited to TLS 1.2 is still observed, with its TLS 1.2 suite and no ALPN."""
    server = TlsServer(
        chain=chain,
        key_pem=leaf.key_pem,
        minimum_version=ssl.TLSVersion.TLSv1_2,
        maximum_version=ssl.TLSVersion.TLSv1_2,
    )
    with server as at:
        result = observed(probe(at.host, at.port))
    assert result.protocol == "TLSv1.2"
    assert "TLS_AES" not in result.cipher
    assert result.alpn is None


def test_alert_is_named(chain: tuple[bytes, ...], leaf: IssuedCert) -> None:
    """A server that rejects the SNI name yields handshake_failure naming its TLS alert."""
    with TlsServer(chain=chain, key_pem=leaf.key_pem, reject_unknown_names=True) as at:
        result = failed(probe(at.host, at.port, sni="unknown.test"))
    assert result.kind is FailureKind.HANDSHAKE_FAILURE
    assert result.tls_alert == "unrecognized_name"
    assert "unrecognized_name" in result.detail


@pytest.mark.parametrize("host", LOOPBACKS)
def test_closed_port_is_connection_refused(host: str) -> None:
    """Nothing listening on the port is connection_refused."""
    with closed_port(host) as at:
        result = failed(probe(at.host, at.port))
    assert result.kind is FailureKind.CONNECTION_REFUSED
    assert result.peer_address == host


def test_plain_http_is_not_tls() -> None:
    """A plain-HTTP service on the port is not_tls."""
    with PlainHttpServer() as at:
        result = failed(probe(at.host, at.port))
    assert result.kind is FailureKind.NOT_TLS
    assert result.tls_alert is None


def test_silent_server_times_out_within_the_handshake_limit() -> None:
    """A server that accepts and never answers is a timeout, reported on time."""
    options = ProbeOptions(connect_timeout_s=2.0, handshake_timeout_s=0.5)
    with SilentServer() as at:
        started = time.perf_counter()
        result = failed(probe(at.host, at.port, options=options))
        elapsed_s = time.perf_counter() - started
    assert result.kind is FailureKind.TIMEOUT
    assert "0.5 s" in result.detail
    assert 0.5 <= elapsed_s < 1.5


def test_reset_mid_handshake_is_connection_reset() -> None:
    """A server that resets the connection after the ClientHello is connection_reset."""
    with ResetServer() as at:
        result = failed(probe(at.host, at.port))
    assert result.kind is FailureKind.CONNECTION_RESET


def test_malformed_certificate_is_a_handshake_failure() -> None:
    """Garbage in the Certificate message is a handshake_failure, not an exception, and
    the detail says in words what the server did wrong before OpenSSL's reason codes."""
    with MalformedCertificateServer() as at:
        result = failed(probe(at.host, at.port))
    assert result.kind is FailureKind.HANDSHAKE_FAILURE
    assert result.detail.startswith(
        "TLS handshake failed: the server sent a certificate that is not valid DER (OpenSSL: "
    ), result.detail


@contextlib.contextmanager
def full_backlog() -> Iterator[tuple[str, int]]:
    """A listening socket whose accept queue is full, so new SYNs go unanswered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = ("127.0.0.1", int(listener.getsockname()[1]))
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(address)
            fillers.append(filler)
        time.sleep(0.1)
        yield address
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_unanswered_connect_times_out_within_the_connect_limit() -> None:
    """A SYN that gets no answer is a timeout after the connect limit."""
    options = ProbeOptions(connect_timeout_s=0.5, handshake_timeout_s=5.0)
    with full_backlog() as (host, port):
        started = time.perf_counter()
        result = failed(probe(host, port, options=options))
        elapsed_s = time.perf_counter() - started
    assert result.kind is FailureKind.TIMEOUT
    assert "TCP connection" in result.detail
    assert elapsed_s < 2.0


def test_options_refuse_nonsense() -> None:
    """Non-positive time-outs are refused with a message naming the option."""
    with pytest.raises(ValueError, match="handshake_timeout_s"):
        ProbeOptions(handshake_timeout_s=0)


def test_stapled_ocsp_response_is_captured(tmp_path: Path, pki: ThrowawayPki) -> None:
    """The OCSP response a server staples arrives in the same handshake as the chain."""
    leaf = pki.issue_leaf(dns_names=("localhost",))
    responder = OcspResponder(
        issuer=pki.intermediate.issued, clock=lambda: datetime.now(UTC), mode=ResponseMode.NORMAL
    )
    staple = responder.respond(build_ocsp_request(leaf.certificate, pki.intermediate.certificate))
    with openssl_stapling_server(
        tmp_path,
        cert_pem=leaf.pem,
        chain_pem=pki.intermediate.pem,
        key_pem=leaf.key_pem,
        staple_der=staple,
    ) as port:
        stapled = observed(probe("127.0.0.1", port, sni="localhost"))
    with openssl_stapling_server(
        tmp_path,
        cert_pem=leaf.pem,
        chain_pem=pki.intermediate.pem,
        key_pem=leaf.key_pem,
        staple_der=None,
    ) as port:
        unstapled = observed(probe("127.0.0.1", port, sni="localhost"))
    assert stapled.ocsp_staple_der == staple
    assert stapled.chain_der == (leaf.der, pki.intermediate.der)
    assert unstapled.ocsp_staple_der is None


def test_unicode_sni_is_sent_as_a_labels(pki: ThrowawayPki) -> None:
    """A U-label SNI name reaches the server in its A-label form."""
    leaf = pki.issue_leaf(dns_names=("xn--bcher-kva.test",))
    server = TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem)
    with server as address:
        observed(probe(address.host, address.port, sni="bücher.test"))
    assert server.server_names_seen == ["xn--bcher-kva.test"]
