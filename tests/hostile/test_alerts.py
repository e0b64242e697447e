"""Every kind of TLS alert a server can answer the ClientHello with is named in the failure."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.observed.handshake import FailureKind, ProbeFailure
from certvigil.probe.options import ProbeOptions
from certvigil.probe.tls import probe_tls
from certvigil.probe.tls_config import observe_tls_config
from certvigil.targets.target import Target
from certvigil.tls.records import ALERT_NAMES
from tests.hostile.servers import AlertServer

OPTIONS = ProbeOptions(connect_timeout_s=1.0, handshake_timeout_s=1.0)
ALERT_CODES = [10, 20, 30, *range(40, 52), 70, 71, 80, 86, 90, 100, 109, 110, 112, 116, 120]


@pytest.mark.parametrize("code", ALERT_CODES)
def test_alert_is_named_from_the_record(code: int) -> None:
    """A fatal alert comes back as handshake_failure with its RFC name, at once."""
    with AlertServer(code) as at:
        result = asyncio.run(
            probe_tls(Target(host=at.host, port=at.port), address=at.host, options=OPTIONS)
        )
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.HANDSHAKE_FAILURE
    assert result.tls_alert == ALERT_NAMES[code]
    assert f"TLS alert {ALERT_NAMES[code]}" in result.detail


def test_unknown_alert_code_is_named_by_number() -> None:
    """An alert code no RFC defines is reported as alert_<code>, not dropped."""
    with AlertServer(222) as at:
        result = asyncio.run(
            probe_tls(Target(host=at.host, port=at.port), address=at.host, options=OPTIONS)
        )
    assert isinstance(result, ProbeFailure), result
    assert result.tls_alert == "alert_222"


@pytest.mark.parametrize("code", [40, 70, 112])
def test_deep_probe_names_the_alert_too(code: int) -> None:
    """The protocol probes' failure carries the alert name as well."""
    with AlertServer(code) as at:
        result = asyncio.run(
            observe_tls_config(
                Target(host=at.host, port=at.port),
                address=at.host,
                connect_timeout_s=1.0,
                handshake_timeout_s=1.0,
                check_http=False,
            )
        )
    assert isinstance(result, ProbeFailure), result
    assert result.tls_alert == ALERT_NAMES[code]


def test_alert_after_the_server_flight_is_named(pki: ThrowawayPki, leaf: IssuedCert) -> None:
    """A TLS 1.2 server that demands a client certificate refuses with a named alert."""
    server = TlsServer(
        chain=pki.served_chain_der(leaf),
        key_pem=leaf.key_pem,
        maximum_version=ssl.TLSVersion.TLSv1_2,
    )
    server.context.verify_mode = ssl.CERT_REQUIRED
    server.context.load_verify_locations(cadata=pki.root.pem.decode())
    with server as at:
        result = asyncio.run(
            probe_tls(Target(host=at.host, port=at.port), address=at.host, options=OPTIONS)
        )
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.HANDSHAKE_FAILURE
    assert result.tls_alert == "handshake_failure"
