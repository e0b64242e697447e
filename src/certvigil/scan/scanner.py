"""Scan orchestration: bounded concurrency, per-address limits, retries, analysis, progress.

``scan_stream`` turns any number of targets into ``EndpointReport`` objects, yielded as
each endpoint completes (not in input order). Memory stays flat however many targets
there are: targets are pulled from the iterable only when there is room, and at most
twice ``concurrency`` are in hand at any moment (plus, at most as many again, endpoints
set aside behind a silent address, see below).

For each target: resolve the host (cached per scan), take a slot for its address
(``per_ip_concurrency``), optionally one for its network (``per_subnet_concurrency``, by
/24 or /64, so a customer's subnet is never hammered as a whole) and a global slot
(``concurrency``), probe once, retry once more after a transient failure. The probes
fill one ``EndpointObservation``: the handshake; the issuers the pure plan
(``analysis.revocation_plan.plan_issuer_fetches``) names when the served chain is
incomplete, fetched from AIA URLs (each URL once per scan); the OCSP and CRL fetches
(``revocation``); the protocol and cipher probes (``deep``), started as soon as the
handshake is done. Nothing is judged while probing: ``analysis.judge.judge`` makes the
whole report once, at the end, and the report carries the observation (``observed``).

Retry policy: ``connection_reset`` and temporary DNS failures (SERVFAIL, no answer in
time) are transient and retried. A ``timeout`` is retried only with ``retry_timeouts``:
it already waited the whole connect, STARTTLS or handshake time-out, and a server that
stayed silent that long nearly always stays silent (retrying doubled the cost of every
blackhole). Everything else is a definitive answer and is not retried:
``connection_refused`` (the host's kernel said no one listens: asking again gives the
same answer and doubles the cost of sweeping a subnet where most ports are closed),
``unreachable``, ``not_tls``, ``handshake_failure``, ``starttls_failure`` and a name that
does not exist.

Deadline: each endpoint has one total, ``deadline_s``, that starts when its first
connection gets its slots and covers connect, STARTTLS, handshake, retries, AIA fetches,
the revocation check and the deep probes. When it runs out during the observation, the
endpoint is reported as a ``timeout``; when it runs out later, the step that was cut is
left out of the observation and named in its ``cut_steps`` (the report gets a
``deadline_reached`` finding, or ``tls_config_not_assessed`` for the protocol probes).

Silent addresses: after ``suspect_after_timeouts`` consecutive time-outs on one address,
its next endpoints are first probed with the short ``quick_timeout_s``. One that answers
within it is judged as usual (and the address is trusted again); one that stays silent is
set aside and probed once more with the full time-outs, at a lower priority: it takes its
address's slot only when no endpoint of normal priority waits for it. So 490 blackholes
on an address that also serves 10 healthy endpoints cost a second each before the healthy
ones are reached instead of the whole time-out, and no slow server is judged on the short
time-out alone. The deadline of an endpoint set aside starts again when it gets its slot
back: the wait was not its own doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import time
import traceback
from collections import deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sized,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from certvigil.analysis.judge import judge
from certvigil.analysis.model import EndpointReport
from certvigil.analysis.revocation_plan import plan_issuer_fetches
from certvigil.analysis.trust import TrustStore
from certvigil.observed.endpoint import EndpointObservation, ObservedStep
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.observed.issuers import IssuerFetch
from certvigil.probe.resolve import DnsFailure, resolve_addresses
from certvigil.probe.revocation_options import RevocationOptions
from certvigil.probe.tls import probe_tls
from certvigil.scan.options import ScanOptions, utc_now
from certvigil.targets.ipaddr import parse_ip
from certvigil.targets.target import Target

if TYPE_CHECKING:
    import httpx

    from certvigil.observed.revocation import RevocationObservation
    from certvigil.observed.tls_config import TlsConfigObservation
    from certvigil.probe.aia import IssuerFetcher
    from certvigil.probe.crl_fetch import CrlCache

_T = TypeVar("_T")
_TRANSIENT_KINDS = frozenset({FailureKind.CONNECTION_RESET})
_NOT_STARTED = "not started"  # on the results queue: a target dropped by a stop request


class _NotStarted(Exception):
    """The scan is stopping and this endpoint had not made its first connection yet."""


_DNS_CACHE_ENTRIES = 4096
_SILENT_ADDRESSES = 4096  # addresses whose consecutive time-outs are remembered
_MAX_AIA_ROUNDS = 3


def _timed_out(result: TlsObservation | ProbeFailure) -> bool:
    return isinstance(result, ProbeFailure) and result.kind is FailureKind.TIMEOUT


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
    stop: asyncio.Event | None = None,
    crl_cache: CrlCache | None = None,
) -> AsyncIterator[EndpointReport]:
    """Scan ``targets`` and yield one report per target, as each completes.

    Never raises for a bad endpoint: network failures, bad certificates and unexpected
    errors all become reports (the last as ``internal_error`` failures). Closing the
    iterator early cancels the endpoints still in flight.

    Once ``stop`` is set, no endpoint makes its first connection any more: the ones
    already read but still waiting for a slot end without a report, the ones in flight
    go on (the caller cancels them when it will wait no longer), and the iterator ends
    when they are done. Stop reading ``targets`` as well (``certvigil.cli.scan_cmd``
    does), or every further target is read and dropped.

    Args:
        targets: The endpoints; consumed lazily, so a generator of millions is fine.
        options: Concurrency, time-outs, retries, AIA fetching and analysis policy.
        trust: The anchors, loaded once for the whole scan.
        clock: Source of ``now`` for observations and analysis.
        on_progress: Called after each endpoint, on the event loop thread; keep it quick.
        stop: Set to stop starting endpoints (on SIGINT or SIGTERM).
        crl_cache: CRLs kept from earlier scans (the daemon keeps one across cycles, so
            a CRL is fetched once per nextUpdate); ``None`` starts an empty one.

    Yields:
        One ``EndpointReport`` per target, in completion order.
    """
    total = len(targets) if isinstance(targets, Sized) else None
    iterator: Iterator[Target] = iter(targets)
    started = time.perf_counter()
    # ``None`` is a wake-up: an endpoint was set aside, so there may be room for more.
    results: asyncio.Queue[EndpointReport | str | None] = asyncio.Queue()
    tasks: set[asyncio.Task[None]] = set()
    max_in_hand = options.concurrency * 2
    in_flight = completed = failed = 0
    exhausted = False
    async with EndpointScanner(
        options=options, trust=trust, clock=clock, stop=stop, crl_cache=crl_cache
    ) as scanner:
        scanner.on_parked = lambda: results.put_nowait(None)
        try:
            while True:
                # Endpoints set aside behind a silent address do not hold back the
                # others, up to as many again.
                while (
                    not exhausted
                    and in_flight - scanner.parked < max_in_hand
                    and in_flight < 2 * max_in_hand
                ):
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
                if report is None:
                    continue
                in_flight -= 1
                if isinstance(report, str):  # not started: the scan is stopping
                    continue
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


def one_endpoint_options(
    *,
    each_s: float,
    budget_s: float,
    deep: bool,
    revocation: bool,
    use_ocsp: bool = True,
    use_crl: bool = True,
) -> ScanOptions:
    """Options to judge one endpoint on request within ``budget_s`` (plugin, exporter).

    Every wait is bounded by ``each_s`` and by the budget; nothing is retried, since the
    caller's own time-out is what holds and a monitoring system asks again next time.
    """
    side_s = min(5.0, budget_s)
    return ScanOptions(
        concurrency=1,
        per_ip_concurrency=4,
        connect_timeout_s=each_s,
        handshake_timeout_s=each_s,
        starttls_timeout_s=each_s,
        dns_timeout_s=side_s,
        aia_timeout_s=side_s,
        retries=0,
        deep=deep,
        revocation=revocation,
        revocation_options=RevocationOptions(
            use_ocsp=use_ocsp, use_crl=use_crl, timeout_s=side_s, total_timeout_s=budget_s
        ),
    )


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


class _PrioritySemaphore:
    """A semaphore whose low-priority waiters get a slot only when no normal one waits."""

    def __init__(self, value: int) -> None:
        self._value = value
        self._waiters: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),
            deque(),
        )

    async def acquire(self, *, low: bool = False) -> None:
        if self._value > 0 and not any(self._waiters):
            self._value -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiters[1 if low else 0]
        queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed a slot just as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(future)
            raise

    def release(self) -> None:
        for queue in self._waiters:
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)
                    return
        self._value += 1


class _PerKeyLimiter:
    """A semaphore per key (an IP address), created on demand and dropped when idle."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._slots: dict[str, tuple[_PrioritySemaphore, list[int]]] = {}

    @asynccontextmanager
    async def slot(self, key: str, *, low: bool = False) -> AsyncIterator[None]:
        entry = self._slots.get(key)
        if entry is None:
            entry = self._slots[key] = (_PrioritySemaphore(self._limit), [0])
        semaphore, users = entry
        users[0] += 1
        try:
            await semaphore.acquire(low=low)
            try:
                yield
            finally:
                semaphore.release()
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._slots[key]


class _Budget:
    """One endpoint's deadline: ``seconds`` from when its first connection got its slots."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends_at: float | None = None

    def start(self, *, again: bool = False) -> None:
        if self.ends_at is None or again:
            self.ends_at = asyncio.get_running_loop().time() + self.seconds

    def left(self) -> float:
        self.start()
        assert self.ends_at is not None
        return self.ends_at - asyncio.get_running_loop().time()

    def timeout(self) -> asyncio.Timeout:
        self.start()
        return asyncio.timeout_at(self.ends_at)


class EndpointScanner:
    """Per-scan state shared by all targets: limits, DNS cache, AIA fetcher.

    ``certvigil.scan.workers`` runs one in each worker process.
    """

    def __init__(
        self,
        *,
        options: ScanOptions,
        trust: TrustStore,
        clock: Callable[[], datetime],
        stop: asyncio.Event | None = None,
        crl_cache: CrlCache | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """Set up the limits; no I/O happens here.

        Args:
            options: How to connect, fetch and judge.
            trust: The anchors.
            clock: Source of ``now``.
            stop: Once set, no endpoint makes its first connection.
            crl_cache: A CRL cache to share (a new one on first use otherwise).
            http: The HTTP client of every AIA, OCSP and CRL fetch, owned by the caller
                (the server's scans on request pass one fenced by the allow-list,
                ``certvigil.probe.fenced_http``); ``None``: the scanner's own.
        """
        self._options = options
        self._stop = stop
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
        self._http: httpx.AsyncClient | None = http
        self._owns_http = http is None
        self._crl_cache: CrlCache | None = crl_cache
        self._to_analyse: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._steps = tuple(
            step
            for step, asked in (
                (ObservedStep.ISSUERS, options.fetch_missing_issuers),
                (ObservedStep.REVOCATION, options.revocation),
                (ObservedStep.TLS_CONFIG, options.deep),
            )
            if asked
        )
        # Consecutive time-outs per address (addresses that answered are not kept).
        self._silent: dict[str, int] = {}
        self.parked = 0
        """Endpoints set aside behind a silent address, waiting for a low-priority slot."""
        self.on_parked: Callable[[], None] | None = None
        """Called when ``parked`` changes (``scan_stream`` may then read more)."""

    async def __aenter__(self) -> EndpointScanner:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()
        if self._http is not None and self._owns_http:
            await self._http.aclose()

    async def run(
        self, target: Target, results: asyncio.Queue[EndpointReport | str | None]
    ) -> None:
        """Scan one target and put its report on ``results``, whatever happens.

        When the scan is stopping and the target had not started, ``_NOT_STARTED``
        goes on ``results`` instead.
        """
        try:
            results.put_nowait(await self.report(target))
        except _NotStarted:
            results.put_nowait(_NOT_STARTED)

    def is_stopping(self) -> bool:
        """Whether the scan was asked to stop starting endpoints."""
        return self._stop is not None and self._stop.is_set()

    async def report(
        self, target: Target, *, addresses: tuple[str, ...] | None = None
    ) -> EndpointReport:
        """Scan one target and return its report, whatever happens.

        Args:
            target: The endpoint.
            addresses: What its host name resolved to, when the caller already asked
                (``scan_workers`` resolves in the parent); ``None`` resolves here.
        """
        budget = _Budget(self._options.deadline_s)
        deep_probes: asyncio.Task[TlsConfigObservation | ProbeFailure] | None = None
        try:
            handshake = await self._observe(target, addresses, budget)
            # One ``now`` for planning and judging: the chain verified to plan the AIA
            # fetches is the one the judgement reuses (``chain.judge_chain`` caches it).
            now = self._clock()
            if not isinstance(handshake, TlsObservation):
                return await self._judge(self._observation(handshake), now)
            if self._options.deep:
                # The protocol and cipher probes start at once and run while the chain
                # is completed and revocation is checked.
                deep_probes = asyncio.create_task(self._probe_tls_config(handshake))
            cut: list[ObservedStep] = []
            fetches: list[IssuerFetch] = []
            if self._options.fetch_missing_issuers and not await self._within(
                budget, self._complete_chain(handshake, now, fetches)
            ):
                cut.append(ObservedStep.ISSUERS)
            fetched_der = tuple(dict.fromkeys(d for f in fetches for d in f.certificates_der))
            revocation: RevocationObservation | None = None
            if self._options.revocation:
                revocation_task = asyncio.ensure_future(self._revocation(handshake, fetched_der))
                if await self._within(budget, revocation_task):
                    revocation = revocation_task.result()
                else:
                    cut.append(ObservedStep.REVOCATION)
            tls_config: TlsConfigObservation | ProbeFailure | None = None
            if deep_probes is not None:
                if await self._within(budget, deep_probes):
                    tls_config = deep_probes.result()
                else:
                    cut.append(ObservedStep.TLS_CONFIG)
            observation = self._observation(
                handshake,
                issuer_fetches=tuple(fetches),
                revocation=revocation,
                tls_config=tls_config,
                cut_steps=tuple(cut),
            )
            return await self._judge(observation, now)
        except _NotStarted:
            raise
        except Exception as exc:  # noqa: BLE001 - the scan's one broad catch, see module doc
            return self._internal_error_report(target, exc)
        finally:
            if deep_probes is not None and not deep_probes.done():
                deep_probes.cancel()
                await asyncio.wait([deep_probes])

    def _observation(
        self,
        handshake: TlsObservation | ProbeFailure,
        *,
        issuer_fetches: tuple[IssuerFetch, ...] = (),
        revocation: RevocationObservation | None = None,
        tls_config: TlsConfigObservation | ProbeFailure | None = None,
        cut_steps: tuple[ObservedStep, ...] = (),
    ) -> EndpointObservation:
        return EndpointObservation(
            target=handshake.target,
            observed_at_utc=handshake.observed_at_utc,
            handshake=handshake,
            issuer_fetches=issuer_fetches,
            revocation=revocation,
            tls_config=tls_config,
            steps=self._steps,
            cut_steps=cut_steps,
            deadline_s=self._options.deadline_s,
        )

    async def _probe_tls_config(
        self, observation: TlsObservation
    ) -> TlsConfigObservation | ProbeFailure:
        from certvigil.scan.deep import probe_tls_config

        address = observation.peer_address
        # Each probe connection takes its address's slot at low priority: an endpoint's
        # first handshake goes before another endpoint's thirty-odd probe connections,
        # so every basic verdict comes early.
        return await probe_tls_config(
            observation,
            connect_timeout_s=self._options.connect_timeout_s,
            handshake_timeout_s=self._options.handshake_timeout_s,
            max_connections=self._options.per_ip_concurrency,
            connection_slot=lambda: self._slots(address, low=True),
            starttls_timeout_s=self._options.starttls_timeout_s,
        )

    async def _revocation(
        self, handshake: TlsObservation, fetched_der: tuple[bytes, ...]
    ) -> RevocationObservation:
        from certvigil.scan.revocation import fetch_revocation

        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient()
        if self._crl_cache is None:
            from certvigil.probe.crl_fetch import CrlCache

            self._crl_cache = CrlCache(clock=self._clock)
        return await fetch_revocation(
            handshake,
            http=self._http,
            crl_cache=self._crl_cache,
            options=self._options.revocation_options,
            trust=self._trust,
            clock=self._clock,
            fetched_der=fetched_der,
        )

    async def _within(self, budget: _Budget, work: Awaitable[object]) -> bool:
        """Wait for ``work`` within the endpoint's deadline; ``False`` when it was cut."""
        deadline = budget.timeout()
        try:
            async with deadline:
                await work
        except TimeoutError:
            if not deadline.expired():
                raise
            return False
        return True

    async def _complete_chain(
        self, handshake: TlsObservation, now: datetime, fetches: list[IssuerFetch]
    ) -> None:
        """Fetch, into ``fetches``, the issuers the plan names, round after round."""
        tried: set[str] = set()
        for _round in range(_MAX_AIA_ROUNDS):
            fetched_der = tuple(d for f in fetches for d in f.certificates_der)
            urls = await self._batched(
                functools.partial(
                    plan_issuer_fetches,
                    handshake.chain_der,
                    now=now,
                    trust=self._trust,
                    fetched_der=fetched_der,
                    tried_urls=frozenset(tried),
                )
            )
            if not urls:
                return
            tried.update(urls)
            if self._fetcher is None:
                from certvigil.probe.aia import IssuerFetcher

                self._fetcher = IssuerFetcher(
                    timeout_s=self._options.aia_timeout_s,
                    client=None if self._owns_http else self._http,
                )
            found = await self._fetcher.fetch_all(urls)
            fetches += found
            if not any(fetch.certificates_der for fetch in found):
                return

    async def _judge(self, observation: EndpointObservation, now: datetime) -> EndpointReport:
        """The report on ``observation``, judged with the scan's trust store and policy."""
        return await self._batched(
            lambda: judge(observation, now, self._trust, self._options.policy)
        )

    async def _batched(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` together with every other endpoint's analysis of this loop turn.

        Analysis (planning and judging) runs in batches, one callback per turn of the
        event loop, rather than in each endpoint's own task between handshakes: the
        analysis code and data stay in the CPU caches from one endpoint to the next,
        which measured 25-40% less CPU per analysis in a scan (``bench/README.md``).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._to_analyse.append((work, future))
        if len(self._to_analyse) == 1:
            loop.call_soon(self._analyse_pending)
        return await future

    def _analyse_pending(self) -> None:
        pending, self._to_analyse = self._to_analyse, []
        for work, future in pending:
            if future.cancelled():
                continue
            try:
                result = work()
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting endpoint
                future.set_exception(exc)
            else:
                future.set_result(result)

    async def _observe(
        self, target: Target, addresses: tuple[str, ...] | None, budget: _Budget
    ) -> TlsObservation | ProbeFailure:
        attempts = 1 + self._options.retries
        for attempt in range(1, attempts + 1):
            result, is_transient = await self._observe_once(target, addresses, budget)
            if (
                not is_transient
                or attempt == attempts
                or budget.left() <= self._options.retry_delay_s
                or self.is_stopping()
            ):
                return result
            await asyncio.sleep(self._options.retry_delay_s)
        raise AssertionError("unreachable: the loop returns on its last attempt")

    async def _observe_once(
        self, target: Target, resolved: tuple[str, ...] | None, budget: _Budget
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
            # Asked once the slot is held: the time-outs met while waiting count.
            quick = self._silent.get(address, 0) >= self._options.suspect_after_timeouts
            if budget.ends_at is None and self.is_stopping():
                raise _NotStarted
            budget.start()
            result = await self._probe_within(target, address, budget, quick=quick)
        if quick and _timed_out(result) and budget.left() > 0 and not self.is_stopping():
            # Silent on the short time-out too: set aside, then probed once more with the
            # full time-outs when no endpoint of normal priority waits for the address.
            self.parked += 1
            if self.on_parked is not None:
                self.on_parked()
            try:
                async with self._slots(address, low=True):
                    budget.start(again=True)
                    result = await self._probe_within(target, address, budget, quick=False)
            finally:
                self.parked -= 1
                if self.on_parked is not None:
                    self.on_parked()
        self._note_silence(address, result)
        is_transient = isinstance(result, ProbeFailure) and (
            result.kind in _TRANSIENT_KINDS
            or (result.kind is FailureKind.TIMEOUT and self._options.retry_timeouts)
        )
        return result, is_transient

    def _note_silence(self, address: str, result: TlsObservation | ProbeFailure) -> None:
        """Count consecutive time-outs per address; any other answer clears the count."""
        if _timed_out(result):
            if address not in self._silent and len(self._silent) >= _SILENT_ADDRESSES:
                self._silent.clear()
            self._silent[address] = self._silent.get(address, 0) + 1
        else:
            self._silent.pop(address, None)

    async def _probe_within(
        self, target: Target, address: str, budget: _Budget, *, quick: bool
    ) -> TlsObservation | ProbeFailure:
        """One probe, cut short (as a ``timeout``) when the endpoint's deadline passes."""
        options = self._options.quick_probe_options if quick else self._probe_options
        deadline = budget.timeout()
        try:
            async with deadline:
                return await probe_tls(target, address=address, options=options, clock=self._clock)
        except TimeoutError:
            if not deadline.expired():
                raise
        return ProbeFailure(
            target=target,
            kind=FailureKind.TIMEOUT,
            detail=f"no answer within the endpoint's deadline of {self._options.deadline_s:g} s",
            observed_at_utc=self._clock(),
        )

    @asynccontextmanager
    async def _slots(self, address: str, *, low: bool = False) -> AsyncIterator[None]:
        """One connection's slots: its address, its subnet when limited, and the scan's."""
        # Slots are taken from the narrowest (the address) to the widest (all
        # connections): a target still waiting for a narrow slot holds no wider one that
        # another address could use.
        if self._per_subnet is None:
            async with self._per_address.slot(address, low=low), self._connections:
                yield
        else:
            async with (
                self._per_address.slot(address, low=low),
                self._per_subnet.slot(subnet_of(address)),
                self._connections,
            ):
                yield

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
        return EndpointReport(
            target=target,
            evaluated_at_utc=failure.observed_at_utc,
            failure=failure,
            observed=self._observation(failure),
        )
