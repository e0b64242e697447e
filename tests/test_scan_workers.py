"""Scanning in worker processes against real loopback servers: same reports, partitioning."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from datetime import datetime

import pytest

from certvigil.analysis.model import EndpointReport
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import TlsServer, closed_port
from certvigil.observed.handshake import FailureKind
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import ScanProgress
from certvigil.scan.workers import default_workers, scan_stream_workers, worker_of
from certvigil.targets.target import Target

FAST = ScanOptions(
    concurrency=20,
    per_ip_concurrency=8,
    connect_timeout_s=2.0,
    handshake_timeout_s=2.0,
    retries=0,
    retry_delay_s=0.0,
)


def collect(targets: list[Target], trust: TrustStore, **kwargs: object) -> list[EndpointReport]:
    """Every report of a worker scan."""

    async def run() -> list[EndpointReport]:
        return [
            r
            async for r in scan_stream_workers(
                targets,
                options=FAST,
                trust=trust,
                **kwargs,  # type: ignore[arg-type]
            )
        ]

    return asyncio.run(run())


def test_workers_report_every_target_once_with_its_verdict(
    pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """Two workers give one report per target: the good ones judged, the refused port and
    the name that does not resolve failed with their own kinds."""
    progress: list[ScanProgress] = []
    with contextlib.ExitStack() as stack:
        good = stack.enter_context(
            TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem)
        )
        refused = stack.enter_context(closed_port())
        targets = [Target(host="127.0.0.1", port=good[1], sni=f"h{i}.test") for i in range(6)]
        targets += [Target(host="localhost", port=good[1])]
        targets += [Target(host="127.0.0.1", port=refused[1])]
        # A label longer than 63 octets: the parent's lookup fails, the worker asks again.
        targets += [Target(host="x" * 64 + ".example", port=good[1])]
        reports = collect(targets, trust, workers=2, on_progress=progress.append)
    assert sorted((r.target for r in reports), key=repr) == sorted(targets, key=repr)
    failed = {r.failure.kind: r for r in reports if r.failure is not None}
    assert sorted(failed) == [FailureKind.CONNECTION_REFUSED, FailureKind.DNS_FAILURE]
    assert failed[FailureKind.CONNECTION_REFUSED].target.port == refused[1]
    assert failed[FailureKind.DNS_FAILURE].failure is not None
    assert failed[FailureKind.DNS_FAILURE].failure.peer_address is None
    by_host = {r.target.sni or r.target.host: r for r in reports if not r.is_failed}
    assert by_host["localhost"].hostname_matches is True
    assert by_host["h0.test"].hostname_matches is False
    assert all(r.chain is not None and r.chain.is_trusted for r in by_host.values())
    assert [p.completed for p in progress] == list(range(1, len(targets) + 1))
    assert progress[-1].in_flight == 0


def test_one_worker_scans_in_this_process(
    pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """With one worker, the clock runs in this process: no process is started."""
    pids: set[int] = set()

    def clock() -> datetime:
        pids.add(os.getpid())
        return datetime.now().astimezone()

    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as good:
        reports = collect([Target(host="127.0.0.1", port=good[1])], trust, workers=1, clock=clock)
    assert len(reports) == 1
    assert pids == {os.getpid()}


def test_a_worker_that_dies_leaves_internal_errors_for_its_targets(trust: TrustStore) -> None:
    """Targets whose worker process ends abruptly are reported as internal errors."""

    def dying_clock() -> datetime:
        os._exit(7)

    with closed_port() as refused:
        targets = [Target(host=f"127.0.{i}.1", port=refused[1]) for i in range(4)]
        reports = collect(targets, trust, workers=2, clock=dying_clock)
    assert sorted((r.target for r in reports), key=repr) == sorted(targets, key=repr)
    for report in reports:
        assert report.failure is not None
        assert report.failure.kind is FailureKind.INTERNAL_ERROR
        assert "worker process" in report.failure.detail


def names_of(count: int) -> list[Target]:
    """``count`` different host names."""
    return [Target(host=f"host{i}.example", port=443) for i in range(count)]


def test_targets_are_partitioned_by_network_or_host_name() -> None:
    """An address, a /24 or /64 when asked, or a host name goes to one worker; others
    spread; a resolved name goes where its address goes."""
    net = [Target(host=f"192.0.2.{i}", port=443) for i in range(1, 255)]
    assert len({worker_of(t, 4, by_subnet=True) for t in net}) == 1
    assert {worker_of(t, 4) for t in net} == {0, 1, 2, 3}
    v6 = [Target(host=f"2001:db8::{i:x}", port=443) for i in range(1, 200)]
    assert len({worker_of(t, 4, by_subnet=True) for t in v6}) == 1
    assert {worker_of(t, 4) for t in v6} == {0, 1, 2, 3}
    spread = {worker_of(Target(host=f"10.0.{i}.1", port=443), 4, by_subnet=True) for i in range(16)}
    assert spread == {0, 1, 2, 3}
    names = {worker_of(Target(host=f"host{i}.example", port=443), 4) for i in range(64)}
    assert names == {0, 1, 2, 3}
    one = Target(host="a.example", port=443)
    assert worker_of(one, 4) == worker_of(Target(host="a.example", port=8443), 4)
    resolved = {worker_of(t, 4, address="192.0.2.7") for t in names_of(64)}
    assert resolved == {worker_of(Target(host="192.0.2.7", port=443), 4)}
    assert default_workers() >= 1
    with pytest.raises(ValueError, match="workers must be at least 1"):
        collect([one], TrustStore.__new__(TrustStore), workers=0)


def test_per_address_limit_holds_across_workers_for_host_names(
    pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """Different host names of one address are scanned by one worker: the address never
    sees more than ``per_ip_concurrency`` connections, however the names hash."""
    # Spellings of one name that the resolver treats alike (DNS names ignore case):
    # each is its own target, and by name alone they would go to both workers.
    spellings = ["localhost", "LOCALHOST", "Localhost", "LocalHost", "lOcalhost", "loCalhost"]
    spellings += ["locAlhost", "locaLhost", "localHost", "localhOst", "localhoSt", "localhosT"]
    chain = pki.served_chain_der(leaf)
    server = TlsServer(chain=chain, key_pem=leaf.key_pem, hold_before_handshake_s=0.15)
    with server as address:
        targets = [Target(host=name, port=address.port, sni="localhost") for name in spellings]
        assert {worker_of(t, 2) for t in targets} == {0, 1}
        options = dataclasses.replace(FAST, per_ip_concurrency=2)

        async def run() -> list[EndpointReport]:
            return [
                r
                async for r in scan_stream_workers(targets, options=options, trust=trust, workers=2)
            ]

        reports = asyncio.run(run())
    assert len(reports) == len(spellings)
    assert [r.failure for r in reports] == [None] * len(spellings)
    assert {r.observation.peer_address for r in reports if r.observation} == {"127.0.0.1"}
    assert server.max_overlapping() == 2


def test_healthy_endpoints_of_a_silent_address_come_early_with_workers(
    pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """A worker's endpoints set aside behind a silent address make room for later targets.

    60 silent endpoints come before 3 healthy ones on one address, more than a worker
    is handed at once; the healthy verdicts still arrive before most silent ones.
    """
    from tests.support.fault_servers import SilentServer

    silent_server = SilentServer(host="127.0.6.1")
    good_server = TlsServer(
        chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem, host="127.0.6.1"
    )
    options = ScanOptions(
        concurrency=30,
        per_ip_concurrency=8,
        handshake_timeout_s=0.6,
        quick_timeout_s=0.3,
        retries=0,
    )
    with silent_server as silent, good_server as good:
        targets = [Target(host=silent.host, port=silent.port, sni=f"s{i}.test") for i in range(60)]
        targets += [Target(host=good.host, port=good.port, sni=f"h{i}.test") for i in range(3)]

        async def run() -> list[EndpointReport]:
            return [
                report
                async for report in scan_stream_workers(
                    targets, options=options, trust=trust, workers=2
                )
            ]

        reports = asyncio.run(run())
    assert len(reports) == 63
    healthy = [i for i, r in enumerate(reports) if r.target.port == good.port]
    assert all(reports[i].failure is None for i in healthy)
    assert max(healthy) < 20
    assert sum(r.failure is not None for r in reports) == 60
