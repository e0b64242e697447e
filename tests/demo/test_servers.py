"""The loopback lab servers do what they claim, checked with independent clients."""

from __future__ import annotations

import socket
import subprocess

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import HttpFileServer, TlsServer, closed_port
from tests.support.fault_servers import PlainHttpServer, SilentServer


def served_by_openssl(endpoint: str) -> list[x509.Certificate]:
    """The chain ``openssl s_client -showcerts`` receives from ``endpoint``."""
    completed = subprocess.run(
        ["openssl", "s_client", "-connect", endpoint, "-showcerts"],
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    )
    return x509.load_pem_x509_certificates(completed.stdout)


def test_tls_server_sends_the_chain_in_the_given_order(pki: ThrowawayPki) -> None:
    """openssl s_client sees exactly the certificates given, in the given order."""
    leaf = pki.issue_leaf(dns_names=("localhost",))
    served = (leaf.der, pki.root.der, pki.intermediate.der)
    server = TlsServer(chain=served, key_pem=leaf.key_pem)
    with server as at:
        received = served_by_openssl(at.endpoint)
    assert [c.public_bytes(Encoding.DER) for c in received] == list(served)
    assert server.connections_accepted == 1


def test_tls_server_refuses_an_empty_chain(pki: ThrowawayPki) -> None:
    """A server without a leaf is a configuration error, stated as such."""
    with pytest.raises(ValueError, match="at least the leaf"):
        TlsServer(chain=(), key_pem=pki.issue_leaf().key_pem)


def test_http_file_server_serves_by_path() -> None:
    """Known paths are served with their content type; others are 404."""
    server = HttpFileServer({"/a.crl": (b"crl bytes", "application/pkix-crl"), "b": b"bee"})
    with server as at:
        found = httpx.get(at.url("/a.crl"), timeout=5)
        bare = httpx.get(at.url("/b"), timeout=5)
        missing = httpx.get(at.url("/nope"), timeout=5)
    assert (found.status_code, found.content) == (200, b"crl bytes")
    assert found.headers["content-type"] == "application/pkix-crl"
    assert bare.content == b"bee"
    assert missing.status_code == 404
    assert server.requests_seen == ["/a.crl", "/b", "/nope"]


def test_plain_http_server_answers_400() -> None:
    """The plain-HTTP fault server answers any request with 400."""
    with PlainHttpServer() as at:
        response = httpx.get(at.url("/"), timeout=5)
    assert response.status_code == 400


def test_closed_port_refuses_connections() -> None:
    """A connection to the closed-port helper is refused."""
    with closed_port() as at, pytest.raises(ConnectionRefusedError):
        socket.create_connection((at.host, at.port), timeout=2)


def test_silent_server_accepts_and_says_nothing() -> None:
    """The silent server accepts, counts the connection and sends no byte."""
    server = SilentServer()
    with server as at:
        with socket.create_connection((at.host, at.port), timeout=2) as client:
            client.settimeout(0.3)
            with pytest.raises(TimeoutError):
                client.recv(1)
        assert server.connections_accepted == 1
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.address
