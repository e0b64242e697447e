"""STARTTLS servers that stall, refuse or never stop answering end the dialogue in time."""

from __future__ import annotations

import asyncio
import time

import pytest

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import StartTlsServer
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.probe.options import ProbeOptions
from certvigil.probe.tls import probe_tls
from certvigil.probe.tls_config import observe_tls_config
from certvigil.targets.target import StartTLS, Target
from tests.hostile.servers import LoopingStartTlsServer, StallingStartTlsServer, in_own_process

TIMEOUT_S = 1.0
SLACK_S = 1.0
OPTIONS = ProbeOptions(
    connect_timeout_s=TIMEOUT_S, handshake_timeout_s=TIMEOUT_S, starttls_timeout_s=TIMEOUT_S
)


def timed(host: str, port: int, protocol: StartTLS) -> tuple[float, TlsObservation | ProbeFailure]:
    """Probe with ``protocol`` and measure how long it took."""
    target = Target(host=host, port=port, starttls=protocol)
    started = time.perf_counter()
    result = asyncio.run(probe_tls(target, address=host, options=OPTIONS))
    return time.perf_counter() - started, result


@pytest.mark.parametrize("protocol", list(StartTLS))
def test_stalling_server_times_out(protocol: StartTLS) -> None:
    """A service that never answers is a time-out of the dialogue, within its limit."""
    with StallingStartTlsServer() as at:
        elapsed, result = timed(at.host, at.port, protocol)
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.TIMEOUT
    assert "STARTTLS" in result.detail
    assert elapsed < TIMEOUT_S + SLACK_S


@pytest.mark.parametrize("protocol", list(StartTLS))
def test_refusing_server_is_a_starttls_failure(
    protocol: StartTLS, pki: ThrowawayPki, leaf: IssuedCert
) -> None:
    """A service that declines the upgrade is starttls_failure, at once."""
    chain = pki.served_chain_der(leaf)
    with StartTlsServer(protocol, chain=chain, key_pem=leaf.key_pem, refuse=True) as at:
        elapsed, result = timed(at.host, at.port, protocol)
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.STARTTLS_FAILURE
    assert elapsed < TIMEOUT_S


@pytest.mark.parametrize("protocol", list(StartTLS))
def test_endless_reply_is_cut_off(protocol: StartTLS) -> None:
    """A reply that never ends (at full speed) is starttls_failure, bounded in time and bytes."""
    with in_own_process(LoopingStartTlsServer, protocol) as at:
        elapsed, result = timed(at.host, at.port, protocol)
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.STARTTLS_FAILURE, result
    assert elapsed < TIMEOUT_S + SLACK_S


@pytest.mark.parametrize("protocol", [StartTLS.SMTP, StartTLS.XMPP])
def test_deep_probe_of_an_endless_reply_ends_in_time(protocol: StartTLS) -> None:
    """The protocol probes of such a service end within their time-outs too."""
    with in_own_process(LoopingStartTlsServer, protocol) as at:
        started = time.perf_counter()
        result = asyncio.run(
            observe_tls_config(
                Target(host=at.host, port=at.port, starttls=protocol),
                address=at.host,
                connect_timeout_s=TIMEOUT_S,
                handshake_timeout_s=TIMEOUT_S,
                starttls_timeout_s=TIMEOUT_S,
            )
        )
        elapsed = time.perf_counter() - started
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.STARTTLS_FAILURE
    assert elapsed < 2 * TIMEOUT_S + SLACK_S
