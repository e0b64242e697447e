"""Scan orchestration against real loopback servers: one report per target, limits, retries."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from certvigil.analysis.model import EndpointReport
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import HttpFileServer, LoopbackServer, TlsServer, closed_port
from certvigil.observed.handshake import FailureKind
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import ScanProgress, scan, scan_stream, subnet_of
from certvigil.targets.target import Target
from tests.support.fault_servers import (
    MalformedCertificateServer,
    PlainHttpServer,
    ResetServer,
    SilentServer,
)

FAST = ScanOptions(
    concurrency=20,
    per_ip_concurrency=8,
    connect_timeout_s=2.0,
    handshake_timeout_s=0.5,
    starttls_timeout_s=0.5,
    retries=0,
    retry_delay_s=0.0,
)


def at(address: tuple[str, int], **fields: str) -> Target:
    """The target for a lab server's address."""
    return Target(host=address[0], port=address[1], **fields)  # type: ignore[arg-type]


def by_port(reports: list[EndpointReport]) -> dict[int, EndpointReport]:
    """Reports keyed by target port (each test uses distinct ports)."""
    return {r.target.port: r for r in reports}


def test_scan_of_mixed_endpoints_reports_each_once(
    pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """Good and failing endpoints each get exactly one report with the right verdict."""
    with contextlib.ExitStack() as stack:
        good = stack.enter_context(
            TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem)
        )
        refused = stack.enter_context(closed_port())
        http = stack.enter_context(PlainHttpServer())
        silent = stack.enter_context(SilentServer())
        reset = stack.enter_context(ResetServer())
        malformed = stack.enter_context(MalformedCertificateServer())
        targets = [at(a) for a in (good, refused, http, silent, reset, malformed)]
        reports = scan(targets, options=FAST, trust=trust)
    assert len(reports) == len(targets)
    found = by_port(reports)
    assert found[good.port].failure is None
    good_chain = found[good.port].chain
    assert good_chain is not None and good_chain.is_trusted
    assert found[good.port].hostname_matches is True
    kinds = {port: r.failure.kind for port, r in found.items() if r.failure is not None}
    assert kinds == {
        refused.port: FailureKind.CONNECTION_REFUSED,
        http.port: FailureKind.NOT_TLS,
        silent.port: FailureKind.TIMEOUT,
        reset.port: FailureKind.CONNECTION_RESET,
        malformed.port: FailureKind.HANDSHAKE_FAILURE,
    }


def test_per_address_limit_is_honoured(
    pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """No more than ``per_ip_concurrency`` connections reach one address at once."""
    chain = pki.served_chain_der(leaf)
    options = ScanOptions(concurrency=50, per_ip_concurrency=3, handshake_timeout_s=5.0, retries=0)
    first = TlsServer(chain=chain, key_pem=leaf.key_pem, hold_before_handshake_s=0.15)
    second = TlsServer(
        chain=chain, key_pem=leaf.key_pem, host="127.0.0.2", hold_before_handshake_s=0.15
    )
    with first as one, second as two:
        targets = [at(one, sni=f"h{i}.test") for i in range(12)]
        targets += [at(two, sni=f"h{i}.test") for i in range(12)]
        reports = scan(targets, options=options, trust=trust)
    assert len(reports) == 24
    assert all(r.failure is None for r in reports)
    assert first.max_overlapping() == 3
    assert second.max_overlapping() == 3


def test_global_limit_is_honoured(pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore) -> None:
    """No more than ``concurrency`` connections are open at once over all addresses."""
    chain = pki.served_chain_der(leaf)
    options = ScanOptions(concurrency=2, per_ip_concurrency=8, handshake_timeout_s=5.0)
    server = TlsServer(chain=chain, key_pem=leaf.key_pem, hold_before_handshake_s=0.1)
    with server as address:
        reports = scan(
            [at(address, sni=f"h{i}.test") for i in range(8)], options=options, trust=trust
        )
    assert len(reports) == 8
    assert server.max_overlapping() == 2


def test_transient_failure_is_retried_until_success(
    pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """A reset on the first attempt is retried, and the retry's handshake is reported."""
    options = ScanOptions(retries=1, retry_delay_s=0.01, handshake_timeout_s=2.0)
    server = TlsServer(
        chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem, reset_first_connections=1
    )
    with server as address:
        (report,) = scan([at(address)], options=options, trust=trust)
    assert report.failure is None
    assert server.connections_accepted == 2


@pytest.mark.parametrize(
    ("server_kind", "retries", "retry_timeouts", "expected_attempts"),
    [
        ("reset", 0, False, 1),
        ("reset", 2, False, 3),
        ("silent", 1, False, 1),
        ("silent", 1, True, 2),
        ("plain_http", 2, True, 1),
        ("alert", 2, True, 1),
    ],
)
def test_retries_only_transient_failures(
    pki: ThrowawayPki,
    leaf: IssuedCert,
    trust: TrustStore,
    server_kind: str,
    retries: int,
    retry_timeouts: bool,
    expected_attempts: int,
) -> None:
    """Resets are tried again, time-outs only when asked; not_tls and alerts are final."""
    servers: dict[str, Callable[[], LoopbackServer]] = {
        "reset": lambda: ResetServer(),
        "silent": lambda: SilentServer(),
        "plain_http": lambda: PlainHttpServer(),
        "alert": lambda: TlsServer(
            chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem, reject_unknown_names=True
        ),
    }
    server = servers[server_kind]()
    options = ScanOptions(
        retries=retries, retry_delay_s=0.0, handshake_timeout_s=0.3, retry_timeouts=retry_timeouts
    )
    with server as address:
        (report,) = scan([at(address, sni="unknown.test")], options=options, trust=trust)
    assert report.failure is not None
    assert server.connections_accepted == expected_attempts


def test_missing_intermediate_is_fetched_from_aia(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A server that omits its intermediate is completed from the AIA URL, fetched once."""
    http = HttpFileServer({})
    with http as web:
        url = web.url("/issuers/intermediate.der")
        http.files["/issuers/intermediate.der"] = (pki.intermediate.der, "application/pkix-cert")
        leaf = pki.issue_leaf(dns_names=("localhost",), ca_issuer_urls=(url,))
        first = TlsServer(chain=(leaf.der,), key_pem=leaf.key_pem)
        second = TlsServer(chain=(leaf.der,), key_pem=leaf.key_pem)
        with first as one, second as two:
            reports = scan([at(one), at(two)], options=FAST, trust=trust)
    assert len(reports) == 2
    for report in reports:
        assert report.chain is not None
        assert report.chain.is_complete is False
        assert report.chain.would_verify_with_fetched is True
        assert report.chain.fetched_issuers_sha256 == (pki.intermediate.issued.sha256_hex,)
    assert http.requests_seen == ["/issuers/intermediate.der"]


def test_aia_fetching_can_be_turned_off(pki: ThrowawayPki, trust: TrustStore) -> None:
    """With fetching off, an incomplete chain is judged without any HTTP request."""
    http = HttpFileServer({})
    with http as web:
        url = web.url("/ca.der")
        http.files["/ca.der"] = (pki.intermediate.der, "application/pkix-cert")
        leaf = pki.issue_leaf(dns_names=("localhost",), ca_issuer_urls=(url,))
        with TlsServer(chain=(leaf.der,), key_pem=leaf.key_pem) as address:
            options = ScanOptions(fetch_missing_issuers=False, retries=0)
            (report,) = scan([at(address)], options=options, trust=trust)
    assert report.chain is not None
    assert report.chain.would_verify_with_fetched is False
    assert http.requests_seen == []


def test_unexpected_error_becomes_an_internal_error_report(
    pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """An exception while handling one target is reported for it; the others go on."""
    calls = []

    def clock_failing_once() -> datetime:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("clock broke")
        return datetime.now(UTC)

    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as address:
        targets = [at(address, sni=f"h{i}.test") for i in range(3)]
        reports = scan(targets, options=FAST, trust=trust, clock=clock_failing_once)
    assert len(reports) == 3
    internal = [r for r in reports if r.failure and r.failure.kind is FailureKind.INTERNAL_ERROR]
    assert len(internal) == 1
    assert internal[0].failure is not None
    assert "RuntimeError: clock broke" in internal[0].failure.detail
    assert sum(r.failure is None for r in reports) == 2


def test_unresolvable_host_is_a_dns_failure(trust: TrustStore) -> None:
    """A host that cannot be resolved is reported as dns_failure without an address."""
    (report,) = scan([Target(host="x" * 64 + ".example", port=443)], options=FAST, trust=trust)
    assert report.failure is not None
    assert report.failure.kind is FailureKind.DNS_FAILURE
    assert report.failure.peer_address is None


def test_targets_are_pulled_lazily(trust: TrustStore) -> None:
    """The scan takes targets from the iterable only as slots free up."""
    pulled: list[int] = []
    pulled_at_first_report: list[int] = []

    def targets(port: int) -> Iterator[Target]:
        for _ in range(30):
            pulled.append(1)
            yield Target(host="127.0.0.1", port=port)

    async def run(port: int) -> int:
        options = ScanOptions(concurrency=2, retries=0)
        count = 0
        async for _report in scan_stream(targets(port), options=options, trust=trust):
            if not pulled_at_first_report:
                pulled_at_first_report.append(len(pulled))
            count += 1
        return count

    with closed_port() as address:
        assert asyncio.run(run(address.port)) == 30
    assert pulled_at_first_report[0] <= 2 * 2 + 1


def test_progress_is_reported_after_each_endpoint(trust: TrustStore) -> None:
    """``on_progress`` sees every completion with running totals."""
    seen: list[ScanProgress] = []
    with closed_port() as address:
        targets = [Target(host="127.0.0.1", port=address.port, sni=f"h{i}.test") for i in range(5)]
        reports = scan(targets, options=FAST, trust=trust, on_progress=seen.append)
    assert [p.completed for p in seen] == [1, 2, 3, 4, 5]
    assert [p.failed for p in seen] == [1, 2, 3, 4, 5]
    assert all(p.total == 5 for p in seen)
    assert [p.last_report for p in seen] == reports
    assert seen[-1].in_flight == 0


def test_closing_the_stream_early_cancels_the_rest(trust: TrustStore) -> None:
    """Leaving the loop after one report ends the scan without waiting for the others."""

    async def first_only(targets: list[Target]) -> EndpointReport:
        options = ScanOptions(concurrency=10, handshake_timeout_s=30.0, retries=0)
        stream = scan_stream(targets, options=options, trust=trust)
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async for report in stream:
                return report
        raise AssertionError("no report")

    with closed_port() as refused, SilentServer() as silent:
        targets = [at(refused)] + [at(silent, sni=f"h{i}.test") for i in range(5)]
        report = asyncio.run(asyncio.wait_for(first_only(targets), 10))
    assert report.failure is not None
    assert report.failure.kind is FailureKind.CONNECTION_REFUSED


def test_options_refuse_nonsense() -> None:
    """Impossible limits are refused with a message naming the option."""
    with pytest.raises(ValueError, match="per_ip_concurrency"):
        ScanOptions(per_ip_concurrency=0)
    with pytest.raises(ValueError, match="retries"):
        ScanOptions(retries=-1)


def test_per_subnet_limit_is_honoured(
    pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """Addresses of one /24 share ``per_subnet_concurrency`` connections between them."""
    chain = pki.served_chain_der(leaf)
    options = ScanOptions(
        concurrency=50,
        per_ip_concurrency=4,
        per_subnet_concurrency=3,
        handshake_timeout_s=5.0,
        retries=0,
    )
    servers = [
        TlsServer(chain=chain, key_pem=leaf.key_pem, host=host, hold_before_handshake_s=0.15)
        for host in ("127.0.3.1", "127.0.3.2", "127.0.3.3")
    ]
    with contextlib.ExitStack() as stack:
        addresses = [stack.enter_context(server) for server in servers]
        targets = [at(a, sni=f"h{i}.test") for a in addresses for i in range(4)]
        reports = scan(targets, options=options, trust=trust)
    assert len(reports) == 12
    assert all(r.failure is None for r in reports)
    intervals = [i for server in servers for i in server.connection_intervals]
    assert overlapping(intervals) == 3


def overlapping(intervals: list[tuple[float, float]], tolerance_s: float = 0.02) -> int:
    """The most intervals open together for longer than ``tolerance_s``."""
    events = sorted(
        [(start, 1) for start, end in intervals if end - start > tolerance_s]
        + [(end - tolerance_s, -1) for start, end in intervals if end - start > tolerance_s]
    )
    most = current = 0
    for _when, step in events:
        current += step
        most = max(most, current)
    return most


def test_subnet_of_names_the_network() -> None:
    """Addresses map to their /24 or /64."""
    assert subnet_of("192.0.2.77") == "192.0.2.0/24"
    assert subnet_of("2001:db8::1") == "2001:db8::/64"


def test_default_time_outs_make_a_blackhole_cost_one_handshake_time_out(trust: TrustStore) -> None:
    """A silent server costs one 5 s handshake time-out by default, not two of 10 s."""
    options = ScanOptions()
    assert (options.connect_timeout_s, options.handshake_timeout_s) == (5.0, 5.0)
    server = SilentServer()
    with server as address:
        (report,) = scan(
            [at(address)],
            options=dataclasses.replace(options, handshake_timeout_s=0.3),
            trust=trust,
        )
    assert report.failure is not None and report.failure.kind is FailureKind.TIMEOUT
    assert server.connections_accepted == 1


def test_deadline_bounds_the_whole_endpoint_retries_included(trust: TrustStore) -> None:
    """Retries stop when the endpoint's deadline has run out, whatever ``retries`` says."""
    server = ResetServer()
    options = ScanOptions(retries=20, retry_delay_s=0.2, deadline_s=0.5)
    with server as address:
        started = time.perf_counter()
        (report,) = scan([at(address)], options=options, trust=trust)
        elapsed_s = time.perf_counter() - started
    assert report.failure is not None and report.failure.kind is FailureKind.CONNECTION_RESET
    assert server.connections_accepted <= 4
    assert elapsed_s < 3.0


def test_deadline_cuts_a_handshake_longer_than_itself(trust: TrustStore) -> None:
    """A deadline shorter than the handshake time-out ends the probe as a timeout naming it."""
    with SilentServer() as address:
        started = time.perf_counter()
        (report,) = scan(
            [at(address)],
            options=ScanOptions(handshake_timeout_s=10.0, deadline_s=0.4),
            trust=trust,
        )
        elapsed_s = time.perf_counter() - started
    assert report.failure is not None and report.failure.kind is FailureKind.TIMEOUT
    assert "deadline of 0.4 s" in report.failure.detail
    assert elapsed_s < 2.0


class _SlowAfterFirstServer(TlsServer):
    """Answers the first connection at once and each later one after 2 s."""

    handled = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Hold every connection but the first, then shake hands."""
        self.handled += 1
        if self.handled > 1:
            await asyncio.sleep(2.0)
        await super().handle(reader, writer)


def test_deadline_during_deep_probes_keeps_the_basic_report(
    pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """When the deadline ends the deep probes, the certificate verdict is kept, with a note."""
    server = _SlowAfterFirstServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem)
    options = ScanOptions(deep=True, deadline_s=1.5, handshake_timeout_s=5.0)
    with server as address:
        (report,) = scan([at(address)], options=options, trust=trust)
    assert report.observation is not None and report.chain is not None
    assert report.deep is None
    notes = [f for f in report.findings if f.code == "tls_config_not_assessed"]
    assert notes and "deadline of 1.5 s" in notes[0].message


def test_healthy_endpoints_of_a_silent_address_are_judged_early(
    pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """After a few time-outs, an address's silent endpoints yield to the ones that answer.

    60 silent endpoints come before 3 healthy ones on the same address; the healthy
    verdicts arrive before most of the silent ones, and every silent endpoint is still
    reported as a timeout after a full-length probe.
    """
    silent_server = SilentServer(host="127.0.5.1")
    good_server = TlsServer(
        chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem, host="127.0.5.1"
    )
    options = ScanOptions(
        per_ip_concurrency=8,
        handshake_timeout_s=0.6,
        quick_timeout_s=0.3,
        suspect_after_timeouts=3,
        retries=0,
    )
    with silent_server as silent, good_server as good:
        targets = [at(silent, sni=f"s{i}.test") for i in range(60)]
        targets += [at(good, sni=f"h{i}.test") for i in range(3)]

        async def collect() -> list[EndpointReport]:
            return [r async for r in scan_stream(targets, options=options, trust=trust)]

        reports = asyncio.run(collect())
    assert len(reports) == 63
    healthy = [i for i, r in enumerate(reports) if r.target.port == good.port]
    assert all(reports[i].failure is None for i in healthy)
    assert max(healthy) < 20
    silent_reports = [r for r in reports if r.target.port == silent.port]
    assert all(
        r.failure is not None and r.failure.kind is FailureKind.TIMEOUT for r in silent_reports
    )
    assert all("0.6 s" in r.failure.detail for r in silent_reports if r.failure)
