"""Scan orchestration: bounded concurrency, per-address limits, retries, analysis, progress.

``scan_stream`` turns any number of targets into ``EndpointReport`` objects, yielded as
each endpoint completes (not in input order). Memory stays flat however many targets
there are: targets are pulled from the iterable only when there is room, and at most
twice ``concurrency`` are in hand at any moment.

For each target: resolve the host (cached per scan), take a slot for its address
(``per_ip_concurrency``), optionally one for its network (``per_subnet_concurrency``, by
/24 or /64, so a customer's subnet is never hammered as a whole) and a global slot
(``concurrency``), probe once, retry once more after a transient failure, then analyse.
When the served chain is incomplete, the missing issuers are fetched from the leaf's AIA
URL (each URL once per scan) and the endpoint is analysed again with them.

Retry policy: ``timeout``, ``connection_reset`` and temporary DNS failures (SERVFAIL, no
answer in time) are transient and retried. Everything else is a definitive answer and is
not: ``connection_refused`` (the host's kernel said no one listens: asking again gives
the same answer and doubles the cost of sweeping a subnet where most ports are closed),
``unreachable``, ``not_tls``, ``handshake_failure``, ``starttls_failure`` and a name that
does not exist.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sized
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from certvigil.analysis.model import EndpointReport
from certvigil.analysis.policy import AnalysisPolicy
from certvigil.analysis.report import analyse_endpoint, issuer_urls_to_fetch
from certvigil.analysis.trust import TrustStore
from certvigil.ipaddr import parse_ip
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.probe.resolve import DnsFailure, resolve_addresses
from certvigil.probe.revocation_options import RevocationOptions
from certvigil.probe.tls import ProbeOptions, probe_tls
from certvigil.target import Target

if TYPE_CHECKING:
    import httpx

    from certvigil.probe.aia import IssuerFetcher
    from certvigil.probe.crl_fetch import CrlCache

_TRANSIENT_KINDS = frozenset({FailureKind.TIMEOUT, FailureKind.CONNECTION_RESET})
_DNS_CACHE_ENTRIES = 4096
_MAX_AIA_ROUNDS = 3


def subnet_of(address: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) network holding ``address``, as text.

    Args:
        address: An IP address literal.

    Returns:
        The network, e.g. ``"192.0.2.0/24"``.
    """
    ip = parse_ip(address)
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def utc_now() -> datetime:
    """The current time, aware, in UTC (the default clock of a scan)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanOptions:
    """How a scan connects, retries and judges.

    Attributes:
        concurrency: Most connections open at once, over all targets.
        per_ip_concurrency: Most connections open at once to one IP address.
        per_subnet_concurrency: Most connections open at once to one IPv4 /24 or IPv6
            /64; ``None`` for no limit beyond ``concurrency`` and ``per_ip_concurrency``.
        connect_timeout_s: Limit on establishing each TCP connection.
        handshake_timeout_s: Limit on each TLS handshake.
        starttls_timeout_s: Limit on each STARTTLS plain-text dialogue.
        dns_timeout_s: Limit on each DNS lookup.
        retries: Further attempts after a transient failure (0 for none).
        retry_delay_s: Pause before each retry.
        alpn_protocols: ALPN protocols offered.
        fetch_missing_issuers: Fetch intermediates the server did not send from AIA
            CA-issuers URLs, to name them and to show the chain would verify with them.
        aia_timeout_s: Limit on each AIA fetch.
        policy: What the analysis judges and how strictly.
        deep: Also probe protocols, cipher suites and TLS options and grade each
            observed endpoint (``certvigil.deep_scan``; docs/grading.md). Each probe
            connection takes a slot from the same per-address and per-subnet limits.
        revocation: Also check each observed chain over OCSP and CRL and judge the
            stapled OCSP response (``certvigil.revocation_scan``; docs/revocation.md),
            with one HTTP client and one CRL cache for the whole scan.
        revocation_options: What the revocation check fetches and its time-outs.
    """

    concurrency: int = 200
    per_ip_concurrency: int = 8
    per_subnet_concurrency: int | None = None
    connect_timeout_s: float = 5.0
    handshake_timeout_s: float = 10.0
    starttls_timeout_s: float = 10.0
    dns_timeout_s: float = 5.0
    retries: int = 1
    retry_delay_s: float = 0.5
    alpn_protocols: tuple[str, ...] = ("h2", "http/1.1")
    fetch_missing_issuers: bool = True
    aia_timeout_s: float = 5.0
    policy: AnalysisPolicy = field(default_factory=AnalysisPolicy)
    deep: bool = False
    revocation: bool = False
    revocation_options: RevocationOptions = field(default_factory=RevocationOptions)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.per_ip_concurrency < 1:
            raise ValueError(
                f"per_ip_concurrency must be at least 1, not {self.per_ip_concurrency}"
            )
        if self.per_subnet_concurrency is not None and self.per_subnet_concurrency < 1:
            raise ValueError(
                "per_subnet_concurrency must be at least 1 or None, "
                f"not {self.per_subnet_concurrency}"
            )
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, not {self.retries}")
        if self.retry_delay_s < 0:
            raise ValueError(f"retry_delay_s must be 0 or more, not {self.retry_delay_s}")
        for name in ("dns_timeout_s", "aia_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")

    @property
    def probe_options(self) -> ProbeOptions:
        """The per-connection options these scan options imply."""
        return ProbeOptions(
            connect_timeout_s=self.connect_timeout_s,
            handshake_timeout_s=self.handshake_timeout_s,
            starttls_timeout_s=self.starttls_timeout_s,
            alpn_protocols=self.alpn_protocols,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanProgress:
    """Where a scan stands, sent to ``on_progress`` after each endpoint completes.

    Attributes:
        completed: Endpoints finished (observed or failed).
        failed: Of those, endpoints that could not be observed.
        in_flight: Endpoints started and not yet finished.
        total: Number of targets when the iterable has a length, else ``None``.
        elapsed_s: Seconds since the scan started.
        last_report: The report that just completed.
    """

    completed: int
    failed: int
    in_flight: int
    total: int | None
    elapsed_s: float
    last_report: EndpointReport


async def scan_stream(
    targets: Iterable[Target],
    *,
    options: ScanOptions,
    trust: TrustStore,
    clock: Callable[[], datetime] = utc_now,
    on_progress: Callable[[ScanProgress], None] | None = None,
) -> AsyncIterator[EndpointReport]:
    """Scan ``targets`` and yield one report per target, as each completes.

    Never raises for a bad endpoint: network failures, bad certificates and unexpected
    errors all become reports (the last as ``internal_error`` failures). Closing the
    iterator early cancels the endpoints still in flight.

    Args:
        targets: The endpoints; consumed lazily, so a generator of millions is fine.
        options: Concurrency, time-outs, retries, AIA fetching and analysis policy.
        trust: The anchors, loaded once for the whole scan.
        clock: Source of ``now`` for observations and analysis.
        on_progress: Called after each endpoint, on the event loop thread; keep it quick.

    Yields:
        One ``EndpointReport`` per target, in completion order.
    """
    total = len(targets) if isinstance(targets, Sized) else None
    iterator: Iterator[Target] = iter(targets)
    started = time.perf_counter()
    results: asyncio.Queue[EndpointReport] = asyncio.Queue()
    tasks: set[asyncio.Task[None]] = set()
    max_in_hand = options.concurrency * 2
    in_flight = completed = failed = 0
    exhausted = False
    async with EndpointScanner(options=options, trust=trust, clock=clock) as scanner:
        try:
            while True:
                while not exhausted and in_flight < max_in_hand:
                    target = next(iterator, None)
                    if target is None:
                        exhausted = True
                        break
                    task = asyncio.create_task(scanner.run(target, results))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    in_flight += 1
                if in_flight == 0:
                    return
                report = await results.get()
                in_flight -= 1
                completed += 1
                failed += report.is_failed
                if on_progress is not None:
                    on_progress(
                        ScanProgress(
                            completed=completed,
                            failed=failed,
                            in_flight=in_flight,
                            total=total,
                            elapsed_s=time.perf_counter() - started,
                            last_report=report,
                        )
                    )
                yield report
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def scan(
    targets: Iterable[Target],
    *,
    options: ScanOptions | None = None,
    trust: TrustStore,
    clock: Callable[[], datetime] = utc_now,
    on_progress: Callable[[ScanProgress], None] | None = None,
) -> list[EndpointReport]:
    """Scan ``targets`` on a new event loop and return every report (in completion order).

    A convenience over :func:`scan_stream` for scripts and tests; it keeps every report in
    memory, so prefer ``scan_stream`` for very large scans.

    Args:
        targets: The endpoints.
        options: Scan options (defaults when ``None``).
        trust: The anchors.
        clock: Source of ``now``.
        on_progress: Progress callback.

    Returns:
        One report per target.
    """

    async def collect() -> list[EndpointReport]:
        return [
            report
            async for report in scan_stream(
                targets,
                options=options or ScanOptions(),
                trust=trust,
                clock=clock,
                on_progress=on_progress,
            )
        ]

    return asyncio.run(collect())


class _PerKeyLimiter:
    """A semaphore per key (an IP address), created on demand and dropped when idle."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._slots: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        entry = self._slots.get(key)
        if entry is None:
            entry = self._slots[key] = (asyncio.Semaphore(self._limit), [0])
        semaphore, users = entry
        users[0] += 1
        try:
            async with semaphore:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._slots[key]


class EndpointScanner:
    """Per-scan state shared by all targets: limits, DNS cache, AIA fetcher.

    ``certvigil.scan_workers`` runs one in each worker process.
    """

    def __init__(
        self, *, options: ScanOptions, trust: TrustStore, clock: Callable[[], datetime]
    ) -> None:
        self._options = options
        self._probe_options = options.probe_options
        self._trust = trust
        self._clock = clock
        self._connections = asyncio.Semaphore(options.concurrency)
        self._per_address = _PerKeyLimiter(options.per_ip_concurrency)
        self._per_subnet = (
            _PerKeyLimiter(options.per_subnet_concurrency)
            if options.per_subnet_concurrency is not None
            else None
        )
        # By host name alone: the addresses do not depend on the port, and a port sweep
        # of one name asks the resolver once.
        self._dns: dict[str, asyncio.Future[tuple[str, ...]]] = {}
        # The HTTP side (AIA fetches, revocation) is set up on first use: most scans
        # never need it, and its imports alone cost a tenth of a second of start-up.
        self._fetcher: IssuerFetcher | None = None
        self._http: httpx.AsyncClient | None = None
        self._crl_cache: CrlCache | None = None
        self._to_analyse: list[
            tuple[TlsObservation | ProbeFailure, datetime, asyncio.Future[EndpointReport]]
        ] = []

    async def __aenter__(self) -> EndpointScanner:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()
        if self._http is not None:
            await self._http.aclose()

    async def run(self, target: Target, results: asyncio.Queue[EndpointReport]) -> None:
        """Scan one target and put its report on ``results``, whatever happens."""
        results.put_nowait(await self.report(target))

    async def report(
        self, target: Target, *, addresses: tuple[str, ...] | None = None
    ) -> EndpointReport:
        """Scan one target and return its report, whatever happens.

        Args:
            target: The endpoint.
            addresses: What its host name resolved to, when the caller already asked
                (``scan_workers`` resolves in the parent); ``None`` resolves here.
        """
        try:
            report, fetched_der = await self._scan_one(target, addresses)
            if self._options.revocation and report.observation is not None:
                from certvigil.revocation_scan import check_report_revocation

                if self._http is None:
                    import httpx

                    self._http = httpx.AsyncClient()
                if self._crl_cache is None:
                    from certvigil.probe.crl_fetch import CrlCache

                    self._crl_cache = CrlCache(clock=self._clock)
                report = await check_report_revocation(
                    report,
                    http=self._http,
                    crl_cache=self._crl_cache,
                    options=self._options.revocation_options,
                    trust=self._trust,
                    clock=self._clock,
                    fetched_der=fetched_der,
                )
            if self._options.deep and report.observation is not None:
                address = report.observation.peer_address
                from certvigil.deep_scan import deepen_report

                report = await deepen_report(
                    report,
                    connect_timeout_s=self._options.connect_timeout_s,
                    handshake_timeout_s=self._options.handshake_timeout_s,
                    max_connections=self._options.per_ip_concurrency,
                    connection_slot=lambda: self._slots(address),
                    starttls_timeout_s=self._options.starttls_timeout_s,
                )
            return report
        except Exception as exc:  # noqa: BLE001 - the scan's one broad catch, see module doc
            return self._internal_error_report(target, exc)

    async def _scan_one(
        self, target: Target, addresses: tuple[str, ...] | None
    ) -> tuple[EndpointReport, tuple[bytes, ...]]:
        """The report on ``target`` and the issuers fetched from AIA URLs for it."""
        result = await self._observe(target, addresses)
        now = self._clock()
        policy = self._options.policy
        report = await self._analyse(result, now)
        if not self._options.fetch_missing_issuers or not isinstance(result, TlsObservation):
            return report, ()
        fetched_urls: set[str] = set()
        fetched_der: list[bytes] = []
        for _round in range(_MAX_AIA_ROUNDS):
            urls = tuple(url for url in issuer_urls_to_fetch(report) if url not in fetched_urls)
            if not urls:
                break
            fetched_urls.update(urls)
            if self._fetcher is None:
                from certvigil.probe.aia import IssuerFetcher

                self._fetcher = IssuerFetcher(timeout_s=self._options.aia_timeout_s)
            fetches = await self._fetcher.fetch_all(urls)
            found = [der for fetch in fetches for der in fetch.certificates_der]
            if not found:
                break
            fetched_der += [der for der in found if der not in fetched_der]
            report = analyse_endpoint(
                result,
                now=now,
                trust=self._trust,
                policy=policy,
                fetched_issuers_der=tuple(fetched_der),
            )
        return report, tuple(fetched_der)

    async def _analyse(
        self, result: TlsObservation | ProbeFailure, now: datetime
    ) -> EndpointReport:
        """Judge ``result`` together with every other endpoint finished in this loop turn.

        Analysis runs in batches, one callback per turn of the event loop, rather than in
        each endpoint's own task between handshakes: the analysis code and data stay in
        the CPU caches from one endpoint to the next, which measured 25-40% less CPU per
        analysis in a scan (``bench/README.md``). The report is the same.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[EndpointReport] = loop.create_future()
        self._to_analyse.append((result, now, future))
        if len(self._to_analyse) == 1:
            loop.call_soon(self._analyse_pending)
        return await future

    def _analyse_pending(self) -> None:
        pending, self._to_analyse = self._to_analyse, []
        for result, now, future in pending:
            if future.cancelled():
                continue
            try:
                report = analyse_endpoint(
                    result, now=now, trust=self._trust, policy=self._options.policy
                )
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting endpoint
                future.set_exception(exc)
            else:
                future.set_result(report)

    async def _observe(
        self, target: Target, addresses: tuple[str, ...] | None
    ) -> TlsObservation | ProbeFailure:
        attempts = 1 + self._options.retries
        for attempt in range(1, attempts + 1):
            result, is_transient = await self._observe_once(target, addresses)
            if not is_transient or attempt == attempts:
                return result
            await asyncio.sleep(self._options.retry_delay_s)
        raise AssertionError("unreachable: the loop returns on its last attempt")

    async def _observe_once(
        self, target: Target, resolved: tuple[str, ...] | None
    ) -> tuple[TlsObservation | ProbeFailure, bool]:
        try:
            addresses = resolved or await self._resolve(target)
        except DnsFailure as exc:
            failure = ProbeFailure(
                target=target,
                kind=FailureKind.DNS_FAILURE,
                detail=exc.detail,
                observed_at_utc=self._clock(),
            )
            return failure, exc.is_transient
        address = addresses[0]
        async with self._slots(address):
            result = await self._probe(target, address)
        is_transient = isinstance(result, ProbeFailure) and result.kind in _TRANSIENT_KINDS
        return result, is_transient

    @asynccontextmanager
    async def _slots(self, address: str) -> AsyncIterator[None]:
        """One connection's slots: its address, its subnet when limited, and the scan's."""
        # Slots are taken from the narrowest (the address) to the widest (all
        # connections): a target still waiting for a narrow slot holds no wider one that
        # another address could use.
        if self._per_subnet is None:
            async with self._per_address.slot(address), self._connections:
                yield
        else:
            async with (
                self._per_address.slot(address),
                self._per_subnet.slot(subnet_of(address)),
                self._connections,
            ):
                yield

    async def _probe(self, target: Target, address: str) -> TlsObservation | ProbeFailure:
        return await probe_tls(
            target, address=address, options=self._probe_options, clock=self._clock
        )

    async def _resolve(self, target: Target) -> tuple[str, ...]:
        if target.is_ip:  # no lookup, no cache entry, no task
            return await resolve_addresses(target.host, target.port)
        key = target.host
        cached = self._dns.get(key)
        if cached is None:
            if len(self._dns) >= _DNS_CACHE_ENTRIES:
                self._dns.clear()
            cached = asyncio.ensure_future(
                resolve_addresses(target.host, target.port, timeout_s=self._options.dns_timeout_s)
            )
            self._dns[key] = cached
        try:
            return await asyncio.shield(cached)
        except DnsFailure:
            # Failures are not cached: a retry must ask the resolver again.
            if self._dns.get(key) is cached:
                del self._dns[key]
            raise

    def _internal_error_report(self, target: Target, exc: Exception) -> EndpointReport:
        frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" at {frame[0].filename}:{frame[0].lineno}" if frame else ""
        failure = ProbeFailure(
            target=target,
            kind=FailureKind.INTERNAL_ERROR,
            detail=f"unexpected {type(exc).__name__}: {exc}{where}",
            observed_at_utc=self._clock(),
        )
        try:
            return analyse_endpoint(
                failure, now=failure.observed_at_utc, trust=self._trust, policy=self._options.policy
            )
        except Exception:  # noqa: BLE001 - the report of a failure must not fail in turn
            return EndpointReport(
                target=target, evaluated_at_utc=failure.observed_at_utc, failure=failure
            )
