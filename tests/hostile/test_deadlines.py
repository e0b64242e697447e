"""Servers that never stop talking, talk too slowly or talk garbage cannot hold a probe.

Each test bounds the probe by its own time-outs (about a second here) and checks the
classified failure; the scan tests also check that a healthy server scanned in the same
run is judged as usual, on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

import pytest

from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import ServerAddress, TlsServer
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.probe.options import ProbeOptions
from certvigil.probe.tls import probe_tls
from certvigil.probe.tls_config import observe_tls_config
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan
from certvigil.targets.target import Target
from tests.hostile.servers import (
    EndlessGarbageServer,
    EndlessRecordsServer,
    SlowlorisServer,
    in_own_process,
)

TIMEOUT_S = 1.0
SLACK_S = 1.0
OPTIONS = ProbeOptions(
    connect_timeout_s=TIMEOUT_S, handshake_timeout_s=TIMEOUT_S, starttls_timeout_s=TIMEOUT_S
)


def target_at(address: ServerAddress) -> Target:
    """The target for a server's address."""
    return Target(host=address.host, port=address.port)


async def timed_probe(address: ServerAddress) -> tuple[float, TlsObservation | ProbeFailure]:
    """Probe ``address`` and measure how long it took."""
    started = time.perf_counter()
    result = await probe_tls(target_at(address), address=address.host, options=OPTIONS)
    return time.perf_counter() - started, result


@contextlib.contextmanager
def endless_records() -> Iterator[ServerAddress]:
    """The endless-records server, at full speed in a child process."""
    with in_own_process(EndlessRecordsServer) as address:
        yield address


@contextlib.contextmanager
def slowloris() -> Iterator[ServerAddress]:
    """A server that sends one byte every 50 ms."""
    with SlowlorisServer(interval_s=0.05) as address:
        yield address


@contextlib.contextmanager
def endless_garbage() -> Iterator[ServerAddress]:
    """Random bytes forever, at full speed in a child process."""
    with in_own_process(EndlessGarbageServer) as address:
        yield address


ServerFactory = Callable[[], contextlib.AbstractContextManager[ServerAddress]]
HOSTILE: dict[str, tuple[ServerFactory, set[FailureKind]]] = {
    # The 2 MiB cap usually ends it first; on a slow machine the time-out may.
    "endless_records": (endless_records, {FailureKind.HANDSHAKE_FAILURE, FailureKind.TIMEOUT}),
    "slowloris": (slowloris, {FailureKind.TIMEOUT}),
    "endless_garbage": (endless_garbage, {FailureKind.NOT_TLS}),
}  # fmt: skip


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_server_cannot_hold_the_probe_or_starve_another(
    name: str, pki: ThrowawayPki, leaf: IssuedCert
) -> None:
    """The hostile probe ends within its time-out, classified; a healthy one beside it is quick."""
    make, kinds = HOSTILE[name]
    with (
        make() as hostile,
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as good,
    ):

        async def both() -> list[tuple[float, TlsObservation | ProbeFailure]]:
            return list(await asyncio.gather(timed_probe(hostile), timed_probe(good)))

        (hostile_s, hostile_result), (good_s, good_result) = asyncio.run(both())
    assert isinstance(hostile_result, ProbeFailure), hostile_result
    assert hostile_result.kind in kinds, hostile_result
    assert hostile_s < TIMEOUT_S + SLACK_S
    assert isinstance(good_result, TlsObservation), good_result
    assert good_s < TIMEOUT_S


def test_endless_records_are_capped_in_bytes(pki: ThrowawayPki, leaf: IssuedCert) -> None:
    """With a generous time-out, the endless-records server is cut off by the byte cap."""
    options = ProbeOptions(connect_timeout_s=2.0, handshake_timeout_s=20.0)
    with endless_records() as hostile:
        started = time.perf_counter()
        result = asyncio.run(probe_tls(target_at(hostile), address=hostile.host, options=options))
        elapsed = time.perf_counter() - started
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.HANDSHAKE_FAILURE
    assert "without completing the TLS handshake" in result.detail
    assert elapsed < 5.0


@pytest.mark.parametrize("name", list(HOSTILE))
def test_scan_judges_the_healthy_endpoint_beside_a_hostile_one(
    name: str, pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """In one scan, the hostile endpoint fails in time and the healthy one is trusted."""
    make, kinds = HOSTILE[name]
    options = ScanOptions(
        connect_timeout_s=TIMEOUT_S,
        handshake_timeout_s=TIMEOUT_S,
        starttls_timeout_s=TIMEOUT_S,
        retries=0,
        retry_delay_s=0.0,
    )
    with (
        make() as hostile,
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as good,
    ):
        started = time.perf_counter()
        reports = scan([target_at(hostile), target_at(good)], options=options, trust=trust)
        elapsed = time.perf_counter() - started
    found = {report.target.port: report for report in reports}
    assert found[hostile.port].failure is not None
    assert found[hostile.port].failure.kind in kinds
    healthy = found[good.port]
    assert healthy.failure is None, healthy.failure
    assert healthy.chain is not None and healthy.chain.is_trusted
    assert elapsed < TIMEOUT_S + SLACK_S + 1.0


@pytest.mark.parametrize("name", list(HOSTILE))
def test_deep_probe_ends_in_time(name: str) -> None:
    """The protocol and cipher probes of a hostile endpoint end within their time-outs."""
    make, _kinds = HOSTILE[name]
    with make() as hostile:
        started = time.perf_counter()
        result = asyncio.run(
            observe_tls_config(
                target_at(hostile),
                address=hostile.host,
                connect_timeout_s=TIMEOUT_S,
                handshake_timeout_s=TIMEOUT_S,
                check_http=False,
            )
        )
        elapsed = time.perf_counter() - started
    assert isinstance(result, ProbeFailure), result
    # Every hello gets its own time-out; dependent probes run after the first round.
    assert elapsed < 3 * TIMEOUT_S + SLACK_S
