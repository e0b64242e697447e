"""Protocol, suite and option probing against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from certvigil.analysis.deep_assessment import assess_tls
from certvigil.analysis.grade import CertificateVerdicts
from certvigil.analysis.model import KeyType
from certvigil.analysis.tls_config import judge_tls_config
from certvigil.observed.handshake import FailureKind, ProbeFailure
from certvigil.observed.tls_config import TlsConfigObservation
from certvigil.probe.tls_config import http_is_plausible, observe_tls_config
from certvigil.targets.target import Target
from certvigil.tls.cipher_suites import SUITES
from certvigil.tls.records import GROUP_NAMES, TlsProtocol

from .conftest import StartServer

GOOD_CERT = CertificateVerdicts(
    is_trusted=True, hostname_matches=True, key_type=KeyType.RSA, key_bits=2048,
    signature_hash="sha256",
)  # fmt: skip


def observe(port: int, **kwargs: object) -> TlsConfigObservation:
    result = asyncio.run(observe_tls_config(Target(host="127.0.0.1", port=port), **kwargs))  # type: ignore[arg-type]
    assert isinstance(result, TlsConfigObservation), result
    return result


def names(codes: tuple[int, ...]) -> list[str]:
    return [SUITES[c].openssl_name for c in codes]


def test_modern_server_protocols_and_exact_suites(s_server: StartServer) -> None:
    """A TLS 1.2/1.3 server's accepted versions and suites are found exactly."""
    port = s_server(
        "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA:AES128-SHA",
        "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
    )  # fmt: skip
    obs = observe(port, check_http=False)
    assert obs.accepted_protocols == (TlsProtocol.TLS_1_2, TlsProtocol.TLS_1_3)
    assert set(names(obs.support(TlsProtocol.TLS_1_2).cipher_suites)) == {
        "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-SHA", "AES128-SHA",
    }  # fmt: skip
    assert set(names(obs.support(TlsProtocol.TLS_1_3).cipher_suites)) == {
        "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    }  # fmt: skip
    assert obs.support(TlsProtocol.SSL_3_0).rejection is not None
    assert obs.fallback_scsv is True
    assert obs.secure_renegotiation is True
    assert obs.compression is False
    assert obs.heartbleed is False  # OpenSSL 3 runs no heartbeats at all
    assert "x25519" in [GROUP_NAMES[g] for g in obs.tls13_groups]
    report = judge_tls_config(obs)
    codes = {f.code for f in report.findings}
    assert "partial_forward_secrecy" in codes  # AES128-SHA is static RSA
    assert "cipher_cbc" in codes
    assert "protocol_tls10" not in codes


def test_legacy_server_with_weak_suites(s_server: StartServer) -> None:
    """A SECLEVEL=0 server's TLS 1.0/1.1 and anonymous suites are found and graded F."""
    port = s_server("-cipher", "ALL:@SECLEVEL=0")
    obs = observe(port, check_http=False)
    assert {TlsProtocol.TLS_1_0, TlsProtocol.TLS_1_1, TlsProtocol.TLS_1_2} <= set(
        obs.accepted_protocols
    )
    tls10 = names(obs.support(TlsProtocol.TLS_1_0).cipher_suites)
    assert "ECDHE-RSA-AES256-SHA" in tls10
    assert not [n for n in tls10 if "GCM" in n]  # no TLS 1.2-only suites in TLS 1.0
    assessment = assess_tls(obs, GOOD_CERT)
    codes = {f.code for f in assessment.tls_config.findings}
    assert {"protocol_tls10", "protocol_tls11", "cipher_anonymous"} <= codes
    assert assessment.grade.grade == "F"
    assert "anonymous_suites" in {r.code for r in assessment.grade.rules}
    old = next(m for m in assessment.mozilla if m.profile == "old")
    assert not old.is_compliant


def test_tls10_only_server(s_server: StartServer) -> None:
    """A TLS 1.0-only server is seen as such and capped for lacking TLS 1.2."""
    port = s_server("-tls1", "-cipher", "ECDHE-RSA-AES128-SHA:AES128-SHA:@SECLEVEL=0")
    obs = observe(port, check_http=False)
    assert obs.accepted_protocols == (TlsProtocol.TLS_1_0,)
    assert obs.support(TlsProtocol.TLS_1_2).rejection is not None
    assert obs.fallback_scsv is None
    assessment = assess_tls(obs, GOOD_CERT)
    rules = {r.code for r in assessment.grade.rules}
    assert {"no_tls12", "tls10_tls11", "no_aead"} <= rules
    assert assessment.grade.grade == "C"


@pytest.mark.parametrize("serverpref", [True, False])
def test_server_order_is_detected(s_server: StartServer, serverpref: bool) -> None:
    """Whether the server enforces its own suite order is found, with its order."""
    args = ["-no_tls1_3", "-cipher", "AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA"]
    if serverpref:
        args.append("-serverpref")
    obs = observe(s_server(*args), check_http=False)
    support = obs.support(TlsProtocol.TLS_1_2)
    assert support.server_enforces_order is serverpref
    if serverpref:
        assert names(support.cipher_suites) == [
            "AES128-SHA", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA",
        ]  # fmt: skip
        grade = assess_tls(obs, GOOD_CERT).grade
        assert "no_forward_secrecy" in {r.code for r in grade.rules}


def test_tls13_only_server(s_server: StartServer) -> None:
    """A TLS 1.3-only server: one protocol, its groups, no renegotiation or SCSV verdict."""
    port = s_server("-tls1_3", "-groups", "X25519:P-384")
    obs = observe(port, check_http=False)
    assert obs.accepted_protocols == (TlsProtocol.TLS_1_3,)
    assert {GROUP_NAMES[g] for g in obs.tls13_groups} == {"x25519", "secp384r1"}
    assert obs.secure_renegotiation is None
    assert obs.fallback_scsv is None
    assessment = assess_tls(obs, GOOD_CERT)
    assert assessment.grade.grade == "A"
    modern = next(m for m in assessment.mozilla if m.profile == "modern")
    assert any("must be EC" in f for f in modern.failures)  # an RSA certificate


def test_weak_dh_parameters(s_server: StartServer, dh1024_file: Path) -> None:
    """1024-bit DHE parameters are measured and cap the grade at B."""
    port = s_server(
        "-no_tls1_3", "-dhparam", str(dh1024_file),
        "-cipher", "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
    )  # fmt: skip
    obs = observe(port, check_http=False)
    assert obs.dh_prime_bits == 1024
    assert obs.ecdh_groups  # ECDHE is accepted too
    assessment = assess_tls(obs, GOOD_CERT)
    assert "dh_params_weak" in {f.code for f in assessment.tls_config.findings}
    assert "weak_dh" in {r.code for r in assessment.grade.rules}
    assert assessment.grade.grade == "B"


def test_hsts_earns_a_plus(hsts_server: int) -> None:
    """A clean TLS 1.2/1.3 AEAD server with long HSTS is graded A+."""
    obs = observe(hsts_server)
    assert obs.http is not None and obs.http.hsts_header is not None
    assessment = assess_tls(obs, GOOD_CERT)
    assert assessment.tls_config.hsts_max_age_s == 31536000
    assert assessment.grade.grade == "A+", assessment.grade.rules


def test_certificate_verdicts_override_the_letter(s_server: StartServer) -> None:
    """Untrusted gives T, a name mismatch M, revoked F, whatever the TLS setup earns."""
    obs = observe(s_server("-tls1_3"), check_http=False)
    untrusted = CertificateVerdicts(is_trusted=False, hostname_matches=True)
    mismatch = CertificateVerdicts(is_trusted=True, hostname_matches=False)
    revoked = CertificateVerdicts(is_trusted=True, hostname_matches=True, is_revoked=True)
    assert assess_tls(obs, untrusted).grade.grade == "T"
    assert assess_tls(obs, mismatch).grade.grade == "M"
    assert assess_tls(obs, revoked).grade.grade == "F"
    assert assess_tls(obs, revoked).grade.grade_ignoring_certificate == "A"


def test_probes_are_bounded_per_endpoint(s_server: StartServer) -> None:
    """With one connection at a time the result is the same, only slower."""
    port = s_server("-cipher", "ALL:@SECLEVEL=0")
    parallel = observe(port, check_http=False)
    serial = observe(port, check_http=False, max_connections=1)
    assert parallel.protocols == serial.protocols


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_closed_port_is_connection_refused() -> None:
    """A port nobody listens on yields a CONNECTION_REFUSED failure, not an exception."""
    result = asyncio.run(observe_tls_config(Target(host="127.0.0.1", port=_free_port())))
    assert isinstance(result, ProbeFailure)
    assert result.kind is FailureKind.CONNECTION_REFUSED


@pytest.fixture
def text_server() -> Iterator[tuple[int, bytes | None]]:
    """A TCP server that answers every connection with a fixed banner (or stays silent)."""
    state: dict[str, bytes | None] = {"banner": b"HTTP/1.1 400 Bad Request\r\n\r\n"}
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            banner = state["banner"]
            if banner is not None:
                conn.sendall(banner)
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], None
    stop.set()
    thread.join(timeout=5)
    listener.close()
    for conn in held:
        conn.close()


def test_non_tls_server_is_not_tls(text_server: tuple[int, bytes | None]) -> None:
    """A server that answers in plain text yields NOT_TLS."""
    port, _ = text_server
    result = asyncio.run(observe_tls_config(Target(host="127.0.0.1", port=port)))
    assert isinstance(result, ProbeFailure)
    assert result.kind is FailureKind.NOT_TLS


def test_silent_server_times_out() -> None:
    """A server that accepts but never answers yields TIMEOUT within the time-out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        result = asyncio.run(
            observe_tls_config(
                Target(host="127.0.0.1", port=listener.getsockname()[1]),
                handshake_timeout_s=0.3,
            )
        )
    finally:
        listener.close()
    assert isinstance(result, ProbeFailure)
    assert result.kind is FailureKind.TIMEOUT


def test_non_http_tls_service_is_not_waited_for(s_server: StartServer) -> None:
    """A TLS service that does not speak HTTP has no HTTP facts, found without waiting."""
    port = s_server("-tls1_3", www=False)
    obs = observe(port, http_timeout_s=4.0)
    assert obs.http is None
    assert obs.accepted_protocols == (TlsProtocol.TLS_1_3,)
    assert obs.elapsed_s < 3


@pytest.mark.parametrize(
    ("port", "alpn", "expected"),
    [
        (443, None, True),
        (8443, None, True),
        (993, None, False),
        (636, None, False),
        (8883, None, False),
        (993, "http/1.1", True),
        (12345, "h2", True),
        (443, "imap", False),
        (443, "xmpp-client", False),
    ],
)
def test_hsts_request_is_sent_only_where_http_is_plausible(
    port: int, alpn: str | None, *, expected: bool
) -> None:
    """An HTTP ALPN answer decides; without one, ports registered for other protocols skip."""
    assert http_is_plausible(port, alpn) is expected
