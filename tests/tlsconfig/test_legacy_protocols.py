"""SSLv2, SSLv3, RC4, 3DES, compression and missing RFC 5746/7507 over a real socket.

OpenSSL 3 (the local one) cannot serve any of these, so a scripted responder on
127.0.0.1 answers the first flight as such a server would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from certvigil.analysis.deep_assessment import assess_tls
from certvigil.analysis.grade import CertificateVerdicts
from certvigil.observed.tls_config import TlsConfigObservation
from certvigil.probe.tls_config import observe_tls_config
from certvigil.targets.target import Target
from certvigil.tls.records import TlsProtocol

from .scripted_server import Policy, ScriptedServer

RC4_SHA, DES3_SHA, AES128_SHA = 0x0005, 0x000A, 0x002F


@pytest.fixture
def legacy_server() -> Iterator[int]:
    """SSLv2, SSLv3 and TLS 1.0 with RC4 and 3DES, compression, no RFC 5746/7507."""
    server = ScriptedServer(
        Policy(
            versions=frozenset({0x0300, 0x0301}),
            suites=(RC4_SHA, DES3_SHA, AES128_SHA),
            sslv2_specs=(0x010080, 0x0700C0),
            compression=True,
        )
    )
    yield server.port
    server.close()


def test_legacy_server_is_seen_for_what_it_is(legacy_server: int) -> None:
    """Every legacy protocol and suite is found, in server order, and the grade is F."""
    result = asyncio.run(
        observe_tls_config(Target(host="127.0.0.1", port=legacy_server), http_timeout_s=1.0)
    )
    assert isinstance(result, TlsConfigObservation), result
    assert result.accepted_protocols == (
        TlsProtocol.SSL_2_0, TlsProtocol.SSL_3_0, TlsProtocol.TLS_1_0,
    )  # fmt: skip
    assert result.support(TlsProtocol.SSL_2_0).cipher_suites == (0x010080, 0x0700C0)
    for protocol in (TlsProtocol.SSL_3_0, TlsProtocol.TLS_1_0):
        support = result.support(protocol)
        assert support.cipher_suites == (RC4_SHA, DES3_SHA, AES128_SHA)
        assert support.server_enforces_order is True
    assert result.compression is True
    assert result.secure_renegotiation is False
    assert result.fallback_scsv is False
    assessment = assess_tls(result, CertificateVerdicts(is_trusted=True, hostname_matches=True))
    codes = {f.code for f in assessment.tls_config.findings}
    assert {
        "protocol_sslv2", "protocol_sslv3", "cipher_rc4", "cipher_3des", "tls_compression",
        "insecure_renegotiation", "no_fallback_scsv", "no_tls12_or_tls13",
    } <= codes  # fmt: skip
    assert assessment.grade.grade == "F"


def test_fallback_scsv_is_detected_when_honoured() -> None:
    """A server that refuses a downgraded hello with the SCSV is credited for it."""
    server = ScriptedServer(
        Policy(versions=frozenset({0x0301, 0x0302}), suites=(AES128_SHA,),
               renegotiation_info=True, honours_fallback_scsv=True)
    )  # fmt: skip
    try:
        result = asyncio.run(
            observe_tls_config(Target(host="127.0.0.1", port=server.port), check_http=False)
        )
    finally:
        server.close()
    assert isinstance(result, TlsConfigObservation)
    assert result.accepted_protocols == (TlsProtocol.TLS_1_0, TlsProtocol.TLS_1_1)
    assert result.fallback_scsv is True
    assert result.secure_renegotiation is True


def _observe_heartbeat_policy(heartbeat: str | None) -> TlsConfigObservation:
    server = ScriptedServer(
        Policy(versions=frozenset({0x0302, 0x0303}), suites=(AES128_SHA,),
               renegotiation_info=True, heartbeat=heartbeat)
    )  # fmt: skip
    try:
        result = asyncio.run(
            observe_tls_config(Target(host="127.0.0.1", port=server.port), check_http=False)
        )
    finally:
        server.close()
    assert isinstance(result, TlsConfigObservation), result
    return result


def test_heartbleed_is_found_and_graded_f() -> None:
    """A server that answers a heartbeat request claiming 16 KiB it did not send (OpenSSL
    1.0.1f) is vulnerable: a critical finding and an F, with the rule named."""
    result = _observe_heartbeat_policy("leaks")
    assert result.heartbleed is True
    assessment = assess_tls(result, CertificateVerdicts(is_trusted=True, hostname_matches=True))
    codes = {f.code for f in assessment.tls_config.findings}
    assert "heartbleed" in codes
    assert assessment.grade.grade == "F"
    assert "heartbleed" in {rule.code for rule in assessment.grade.rules}


@pytest.mark.parametrize("heartbeat", ["discards", None])
def test_heartbeats_without_the_leak_are_not_heartbleed(heartbeat: str | None) -> None:
    """A server that runs heartbeats but drops the malformed request (OpenSSL 1.0.1g), or
    runs none, is not vulnerable, and nothing about it is reported."""
    result = _observe_heartbeat_policy(heartbeat)
    assert result.heartbleed is False
    assessment = assess_tls(result, CertificateVerdicts(is_trusted=True, hostname_matches=True))
    assert "heartbleed" not in {f.code for f in assessment.tls_config.findings}
    assert "heartbleed" not in {rule.code for rule in assessment.grade.rules}
