"""The daemon loop: scan what is due, record and judge each report, deliver, prune, sleep.

One cycle takes the endpoints that are due, scans them (grouped by trust store and
time-out, since one scan shares both), and commits each report as it completes: its
observation, its alerts and their queued deliveries go into the database in one
transaction (reports that arrive while a write runs share the next transaction, so the
database keeps up with fast scans). A crash therefore loses at most the reports not yet
committed, never half of one. The outbox worker runs beside the scans and sends what the
transactions queued; a delivery is marked sent only after the channel accepted it, and
each carries an idempotency key so that a receiver can drop the re-send a crash between
"accepted" and "marked" can cause.

One daemon per database: :meth:`Daemon.run` takes the database's daemon lock (a row
with this process's id and a lease, renewed by a heartbeat; ``store.daemon_lock``) and
refuses to start while another live daemon holds it. At start-up it releases only
delivery claims that no live process holds.

A write the store refuses (a full disk) does not stop the daemon: the reports are kept
in memory and written later, and the routes are told directly (``daemon.unwritable``).

Stopping (SIGTERM, SIGINT, :meth:`Daemon.request_stop`): no new endpoint is started;
those in flight get ``shutdown_grace`` seconds to finish and be recorded; anything still
running then is cancelled, unrecorded, and will be scanned on the next start. A report
being written when the grace ends is written to the end first.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import Connection

from certvigil.alerts.delivery import (
    DeliveryStats,
    channels_for_routes,
    deliver_due,
    deliver_forever,
    release_claims,
)
from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.routing import routes_from_config
from certvigil.alerts.rules import AlertEvent, AlertPolicy
from certvigil.analysis.model import EndpointReport
from certvigil.analysis.policy import AnalysisPolicy
from certvigil.analysis.thresholds import ExpiryThreshold
from certvigil.config.checks import CheckName, ChecksToRun
from certvigil.config.expand import ScheduledTarget
from certvigil.config.loading import LoadedConfig
from certvigil.config.model import Config, TrustSettings
from certvigil.config.units import Threshold
from certvigil.daemon.logs import LOGGER_NAME
from certvigil.daemon.schedule import Schedule, sleep_until_s
from certvigil.daemon.unwritable import (
    UNWRITTEN_REPORTS_MAX,
    PendingWrite,
    StoreAlarm,
    WriteBuffer,
    record_outage,
)
from certvigil.errors import StoreError
from certvigil.files.truststore import TrustStoreCache
from certvigil.scan.options import ScanOptions, utc_now
from certvigil.store import Store
from certvigil.store.alert_queries import last_check_runs, record_for_judging
from certvigil.store.daemon_lock import (
    DEFAULT_LOCK_LEASE_S,
    acquire_daemon_lock,
    release_daemon_lock,
    renew_daemon_lock,
)
from certvigil.store.ingest import endpoint_key_tuple
from certvigil.store.outbox import WorkerId, count_failing, this_worker
from certvigil.targets.target import Target

if TYPE_CHECKING:
    from certvigil.probe.crl_fetch import CrlCache

log = logging.getLogger(f"{LOGGER_NAME}.daemon")

DELIVERY_POLL_S = 5.0
"""How often the outbox worker looks for due deliveries between cycles."""

WRITE_BATCH_MAX = 200
"""Most reports committed in one transaction (they queue up while a write runs)."""

STORE_RETRY_FIRST_S = 1.0
"""First wait before writing again after the store refused a write (then doubled)."""

STORE_RETRY_MAX_S = 60.0
"""Longest wait between two tries of a store that refuses writes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleResult:
    """What one cycle did.

    Attributes:
        due: Endpoints that were due.
        recorded: Reports committed to the store.
        failed: Of those, endpoints that could not be observed.
        alert_events: Alert events applied (opened, resolved, notices).
        interrupted: A stop request cut the cycle short.
        pruned: Observations deleted by retention.
        duration_s: Wall time of the cycle.
    """

    due: int
    recorded: int
    failed: int
    alert_events: int
    interrupted: bool
    pruned: int
    duration_s: float


def expiry_thresholds(thresholds: Sequence[Threshold]) -> tuple[ExpiryThreshold, ...]:
    """The thresholds of a configuration as analysis and alert rules use them (severity
    by the rule of ``parse_threshold`` unless the configuration names it)."""
    return tuple(t.expiry for t in thresholds)


GroupKey = tuple[TrustSettings, float, ChecksToRun, AnalysisPolicy]
"""What one scan of a cycle shares: trust store, time-out, checks and analysis policy."""


def scan_options_for(config: Config) -> ScanOptions:
    """The scan options a configuration sets (before each group's time-out)."""
    return ScanOptions(
        concurrency=config.scan.concurrency,
        per_ip_concurrency=config.scan.per_ip_concurrency,
        deadline_s=config.scan.deadline_s,
        retry_timeouts=config.scan.retry_timeouts,
    )


def analysis_policies_for(
    base: AnalysisPolicy, alerts: AlertPolicy, targets: Sequence[ScheduledTarget]
) -> dict[Target, AnalysisPolicy]:
    """Each target's analysis policy: ``base`` with the expiry thresholds its alerts use.

    The analysis judges expiry by the same thresholds the alert rules use, per target,
    so that a stored ``expires_soon`` finding and its alert agree.
    """
    policies: dict[tuple[ExpiryThreshold, ...], AnalysisPolicy] = {}
    by_target: dict[Target, AnalysisPolicy] = {}
    for scheduled in targets:
        thresholds = alerts.thresholds_for(scheduled.target)
        if thresholds not in policies:
            policies[thresholds] = replace(
                base,
                expiry_thresholds=thresholds,
                day_threshold_max_fraction=alerts.day_threshold_max_fraction,
            )
        by_target[scheduled.target] = policies[thresholds]
    return by_target


def group_options(
    base: ScanOptions, timeout_s: float, checks: ChecksToRun, policy: AnalysisPolicy
) -> ScanOptions:
    """The scan options of one group of a cycle: its time-out, checks and policy."""
    return replace(
        with_timeout(base, timeout_s),
        revocation=checks.revocation,
        deep=checks.tls_config,
        policy=policy,
    )


def alert_policy_for(config: Config, targets: Sequence[ScheduledTarget]) -> AlertPolicy:
    """The alert rules' policy: global thresholds, and each target's own where it has them."""
    return AlertPolicy(
        thresholds=expiry_thresholds(config.alerts.thresholds),
        target_thresholds={
            s.target: expiry_thresholds(s.thresholds)
            for s in targets
            if s.thresholds != config.alerts.thresholds
        },
    )


class Daemon:
    """Scans a configuration's endpoints on schedule and keeps the store and alerts current.

    The constructor does no I/O; trust stores are read on the first cycle.

    Args:
        loaded: The validated configuration.
        targets: Its expanded endpoints.
        store: The opened inventory.
        clock: Wall-clock ``now`` (aware UTC) for observations, alerts and retention.
        monotonic: Seconds on a monotonic clock, for the schedule.
        rng: Random source of the jitter.
        scan_options: Overrides the scan options derived from the configuration (tests
            shorten retries); ``timeout_s`` of each endpoint still applies.
        previous_schedule: The schedule of the daemon this one replaces after a
            configuration reload: endpoints it scanned are not rescanned at once.
        worker: Who this daemon is in the lock and the delivery claims (this
            process's id when ``None``).
        lock_lease_s: How long the daemon lock lasts without a heartbeat.
        unwritten_max: Most reports kept in memory while the store refuses writes.
        store_retry_s: First and longest wait between tries of a store refusing writes.
    """

    def __init__(
        self,
        loaded: LoadedConfig,
        targets: Sequence[ScheduledTarget],
        *,
        store: Store,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        scan_options: ScanOptions | None = None,
        previous_schedule: Schedule | None = None,
        worker: WorkerId | None = None,
        lock_lease_s: float = DEFAULT_LOCK_LEASE_S,
        unwritten_max: int = UNWRITTEN_REPORTS_MAX,
        store_retry_s: tuple[float, float] = (STORE_RETRY_FIRST_S, STORE_RETRY_MAX_S),
    ) -> None:
        config = loaded.config
        self.config = config
        self.targets = tuple(targets)
        self.store = store
        self.clock = clock
        self.monotonic = monotonic
        self.rng = rng or random.Random()
        self._base_options = scan_options or scan_options_for(config)
        self.routes = routes_from_config(config.alerts.routes)
        self.policy = alert_policy_for(config, self.targets)
        self._analysis = analysis_policies_for(self._base_options.policy, self.policy, self.targets)
        self.engine = AlertEngine(store, self.routes, self.policy)
        self.channels = channels_for_routes(self.routes)
        self.schedule = Schedule(
            self.targets, start_s=monotonic(), previous=previous_schedule, rng=self.rng
        )
        self._cycle_checks: dict[Target, ChecksToRun] = {}
        # A reloaded daemon's schedule carries the old one's run times.
        self._seeded = previous_schedule is not None
        self._crl_cache: CrlCache | None = None
        self._trust = TrustStoreCache()
        self._stop: asyncio.Event | None = None
        self._hurry: asyncio.Event | None = None
        self.worker = worker or this_worker()
        self.lock_lease_s = lock_lease_s
        self.unwritten = WriteBuffer(max_reports=unwritten_max)
        self.store_retry_s = store_retry_s
        self.alarm = StoreAlarm(self.routes, self.channels, database=store.url)
        self._flusher: asyncio.Task[None] | None = None
        self._flushing: asyncio.Task[bool] | None = None
        self.failing_deliveries = 0
        """After ``run(once=True)``: deliveries still failing at exit (0 when all went)."""

    # Stopping ---------------------------------------------------------------------------

    def _events(self) -> tuple[asyncio.Event, asyncio.Event]:
        if self._stop is None or self._hurry is None:
            self._stop, self._hurry = asyncio.Event(), asyncio.Event()
        return self._stop, self._hurry

    def request_stop(self, *, reason: str = "stop requested") -> None:
        """Stop starting endpoints and return from ``run`` once those in flight are recorded.

        A second request cancels what is still in flight at once. Call it on the event
        loop's thread (``loop.add_signal_handler`` does).

        Args:
            reason: What the log line says asked for it (a stop, a reload).
        """
        stop, hurry = self._events()
        if stop.is_set():
            log.warning("second stop request: cancelling endpoints in flight")
            hurry.set()
        else:
            log.info(f"{reason}: finishing endpoints in flight")
            stop.set()

    def take_over(self, previous: Daemon) -> None:
        """Carries over what a daemon this one replaces (a reload) could not write yet.

        The results it kept in memory and its "store not writable" outage go on here, so
        a reload during a full disk loses nothing; they stay with the old daemon when
        the reload changed the database.
        """
        if previous.store is not self.store or not len(previous.unwritten):
            return
        self.unwritten = previous.unwritten
        self.alarm.carry_from(previous.alarm)
        log.info("results kept in memory carried over", extra={"results": len(self.unwritten)})

    @property
    def crl_downloads(self) -> int:
        """CRL downloads since the daemon started (the cache is kept across cycles)."""
        return self._crl_cache.downloads if self._crl_cache is not None else 0

    @property
    def ocsp_hits(self) -> int:
        """OCSP questions answered from answers kept from earlier cycles (until their
        nextUpdate) instead of asking the responder again."""
        return self._crl_cache.ocsp_hits if self._crl_cache is not None else 0

    @property
    def is_stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._stop is not None and self._stop.is_set()

    # Running ----------------------------------------------------------------------------

    async def run(self, *, once: bool = False) -> None:
        """Run cycles until stopped; with ``once``, one cycle and its deliveries.

        Raises:
            DaemonLockedError: Another live daemon runs on this database.
            ConfigError: A trust store named by the configuration cannot be loaded.
            StoreError: The database failed at start-up, or (with ``once``) results
                could not be written before exit.
        """
        stop, _hurry = self._events()
        await asyncio.to_thread(self._take_lock)
        heartbeat = asyncio.create_task(self._heartbeat(), name="certvigil-heartbeat")
        try:
            await self._run_locked(once=once, stop=stop)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await self._stop_flusher()
            await asyncio.to_thread(self._let_go_lock)
        log.info("daemon stopped")

    async def _run_locked(self, *, once: bool, stop: asyncio.Event) -> None:
        released = await asyncio.to_thread(
            release_claims, self.store, now=self.clock(), owner=self.worker
        )
        if released:
            log.info(
                "released deliveries claimed by a daemon that is gone",
                extra={"count": released},
            )
        if not self._seeded:
            await asyncio.to_thread(self._seed_schedule)
        log.info(
            "daemon started",
            extra={"endpoints": len(self.targets), "routes": len(self.routes), "once": once},
        )
        if len(self.unwritten) and not once:
            self._flusher = asyncio.create_task(self._flush_with_back_off(), name="certvigil-flush")
        if once:
            if len(self.unwritten):
                await self._flush_once()
            await self.run_cycle()
            if len(self.unwritten):
                await self._flush_once()
            stats = await self.deliver_pending()
            try:
                with self.store.read() as connection:
                    still = count_failing(connection)
            except StoreError:
                still = stats.retried
            self.failing_deliveries = still + stats.failed
            if self.failing_deliveries:
                log.error(
                    "deliveries still failing at exit",
                    extra={"failing": self.failing_deliveries},
                )
            if len(self.unwritten):
                raise StoreError(
                    f"database {self.store.url}: {len(self.unwritten)} results could not be "
                    f"written: {self.alarm.error}"
                )
            return
        delivery_stop = asyncio.Event()
        worker = asyncio.create_task(
            deliver_forever(
                self.store,
                self.channels,
                delivery_stop,
                poll_interval_s=DELIVERY_POLL_S,
                clock=self.clock,
                owner=self.worker,
            ),
            name="certvigil-outbox",
        )
        try:
            while not stop.is_set():
                await self.run_cycle()
                if stop.is_set():
                    break
                wait_s = sleep_until_s(
                    self.schedule.next_due_s(),
                    now_s=self.monotonic(),
                    jitter_s=self.config.scan.jitter_s,
                    rng=self.rng,
                )
                log.debug("sleeping", extra={"seconds": round(wait_s, 3)})
                try:
                    await asyncio.wait_for(stop.wait(), timeout=wait_s)
                except TimeoutError:
                    pass
        finally:
            delivery_stop.set()
            try:
                await asyncio.wait_for(worker, timeout=self.config.scan.shutdown_grace_s)
            except TimeoutError:
                log.warning("outbox worker did not finish in the grace time; cancelled")
            await self._stop_flusher()
            if len(self.unwritten):
                await self._flush_once()
            if len(self.unwritten):
                log.error(
                    "results not written: the store still refuses writes at stop",
                    extra={"results": len(self.unwritten), "error": self.alarm.error},
                )

    def _seed_schedule(self) -> None:
        """Tell the schedule when the daily checks last ran, from the store, so that a
        restart (or ``run --once`` from cron) does not repeat them early; on a fresh
        database nothing is known and every check is due."""
        self._seeded = True
        try:
            with self.store.read() as connection:
                runs = last_check_runs(connection)
        except StoreError as exc:
            log.warning("check run times not read; every check is due", extra={"error": str(exc)})
            return
        now = self.clock()
        ago: dict[Target, dict[CheckName, float]] = {}
        for scheduled in self.targets:
            found = runs.get(endpoint_key_tuple(scheduled.target))
            if found:
                ago[scheduled.target] = {
                    CheckName(name): (now - when).total_seconds() for name, when in found.items()
                }
        self.schedule.seed(ago)

    # The daemon lock ----------------------------------------------------------------------

    def _take_lock(self) -> None:
        with self.store.write() as connection:
            previous = acquire_daemon_lock(
                connection,
                owner=self.worker,
                now=self.clock(),
                database=self.store.url,
                lease_s=self.lock_lease_s,
            )
        if previous is not None:
            log.warning(
                "took over the database lock of a daemon that is gone",
                extra={"previous": previous.describe()},
            )

    def _let_go_lock(self) -> None:
        try:
            with self.store.write() as connection:
                release_daemon_lock(connection, owner=self.worker)
        except StoreError as exc:
            log.warning("database lock not released; it lapses", extra={"error": str(exc)})

    async def _heartbeat(self) -> None:
        interval_s = self.lock_lease_s / 3
        while True:
            await asyncio.sleep(interval_s)
            try:
                held = await asyncio.to_thread(self._renew_lock)
            except StoreError as exc:
                log.warning("database lock not renewed", extra={"error": str(exc)})
                continue
            if not held:
                log.error("another daemon took over the database lock; stopping")
                self.request_stop(reason="database lock lost")
                return

    def _renew_lock(self) -> bool:
        with self.store.write() as connection:
            return renew_daemon_lock(
                connection, owner=self.worker, now=self.clock(), lease_s=self.lock_lease_s
            )

    async def deliver_pending(self) -> DeliveryStats:
        """Send every delivery that is due now (passes until one claims nothing).

        Returns:
            The totals of the passes (nothing when the outbox could not be read).
        """
        total = DeliveryStats()
        while True:
            try:
                stats = await deliver_due(
                    self.store, self.channels, self.clock(), clock=self.clock, owner=self.worker
                )
            except StoreError as exc:
                log.error("outbox not readable or writable", extra={"error": str(exc)})
                return total
            total = DeliveryStats(
                claimed=total.claimed + stats.claimed,
                sent=total.sent + stats.sent,
                retried=total.retried + stats.retried,
                failed=total.failed + stats.failed,
            )
            if stats.claimed:
                log.info(
                    "deliveries sent",
                    extra={"sent": stats.sent, "retried": stats.retried, "failed": stats.failed},
                )
            if stats.claimed < 50:
                return total

    async def run_cycle(self) -> CycleResult:
        """Scan every endpoint that is due, record and judge each report, apply retention.

        Returns:
            What the cycle did.
        """
        stop, hurry = self._events()
        started = self.monotonic()
        due = self.schedule.due(started)
        log.info("cycle started", extra={"due": len(due)})
        counts = _Counts()
        self._cycle_checks = {s.target: self.schedule.checks_due(s.target, started) for s in due}
        groups = _group(due, self._cycle_checks, self._analysis)
        scanning = asyncio.create_task(self._scan_groups(groups, counts, started))
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({scanning, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not scanning.done():
                # Stop requested: no new endpoint starts (the feed checks ``stop``);
                # in-flight ones get the grace time, or less if asked to hurry.
                hurrier = asyncio.create_task(hurry.wait())
                grace = self.config.scan.shutdown_grace_s
                done, _ = await asyncio.wait(
                    {scanning, hurrier}, timeout=grace, return_when=asyncio.FIRST_COMPLETED
                )
                hurrier.cancel()
                if scanning not in done:
                    log.warning("cancelling endpoints still in flight")
                    scanning.cancel()
            await asyncio.gather(scanning, return_exceptions=True)
            error = None if scanning.cancelled() else scanning.exception()
            if error is not None:
                raise error
        finally:
            stopper.cancel()
        pruned = 0
        if self.config.retention_days is not None and not stop.is_set() and not self.unwritten:
            try:
                pruned = await asyncio.to_thread(
                    self.store.prune_observations,
                    now=self.clock(),
                    keep_days=float(self.config.retention_days),
                )
            except StoreError as exc:
                log.warning(
                    "retention skipped: the store refused the write", extra={"error": str(exc)}
                )
        result = CycleResult(
            due=len(due),
            recorded=counts.recorded,
            failed=counts.failed,
            alert_events=counts.events,
            interrupted=stop.is_set(),
            pruned=pruned,
            duration_s=self.monotonic() - started,
        )
        log.info(
            "cycle finished",
            extra={
                "due": result.due,
                "recorded": result.recorded,
                "failed": result.failed,
                "alert_events": result.alert_events,
                "pruned": result.pruned,
                "interrupted": result.interrupted,
                "seconds": round(result.duration_s, 3),
            },
        )
        return result

    async def _scan_groups(
        self,
        groups: Mapping[GroupKey, Sequence[ScheduledTarget]],
        counts: _Counts,
        started_s: float,
    ) -> None:
        # Here, not at the top: the scheduler of distributed scans runs this class
        # without scanning, and need not import the scanner (0.1 s of its start-up).
        from certvigil.scan.scanner import scan_stream

        stop, _hurry = self._events()
        for (trust_settings, timeout_s, checks, policy), members in groups.items():
            if stop.is_set():
                return
            trust = await self._trust.get(trust_settings)
            options = group_options(self._base_options, timeout_s, checks, policy)
            if checks.revocation and self._crl_cache is None:
                from certvigil.probe.crl_fetch import CrlCache

                # Kept across cycles: a fleet under one CA fetches its CRL once per
                # nextUpdate, not once per endpoint or per cycle; an endpoint's OCSP
                # answer is asked for again only after its nextUpdate.
                self._crl_cache = CrlCache(clock=self.clock, keep_ocsp=True)
            by_target = {s.target: s for s in members}
            received: asyncio.Queue[EndpointReport | None] = asyncio.Queue()
            writer = asyncio.create_task(self._write(received, by_target, counts, started_s))
            stream = cast(
                AsyncGenerator[EndpointReport, None],
                scan_stream(
                    _feed(members, stop),
                    options=options,
                    trust=trust,
                    clock=self.clock,
                    crl_cache=self._crl_cache,
                ),
            )
            try:
                async for report in stream:
                    received.put_nowait(report)
            finally:
                await stream.aclose()
                # Reports already received are completed work: write them all, even when
                # the scan was cancelled, before giving in.
                received.put_nowait(None)
                try:
                    await asyncio.shield(writer)
                except asyncio.CancelledError:
                    await asyncio.gather(writer, return_exceptions=True)
                    raise

    async def _write(
        self,
        received: asyncio.Queue[EndpointReport | None],
        by_target: Mapping[Target, ScheduledTarget],
        counts: _Counts,
        started_s: float,
    ) -> None:
        """Commit reports as they arrive; those that queue up during a write go in one batch."""
        done = False
        while not done:
            batch: list[EndpointReport] = []
            item = await received.get()
            while item is not None:
                batch.append(item)
                if len(batch) >= WRITE_BATCH_MAX or received.empty():
                    break
                item = received.get_nowait()
            done = item is None
            if not batch:
                continue
            tags = [by_target[report.target].tags for report in batch]
            write = PendingWrite(reports=batch, tags=tags, now=self.clock())
            for report in batch:
                self.schedule.mark_scanned(
                    report.target, started_s, ran=self._cycle_checks.get(report.target)
                )
            if len(self.unwritten):
                # Earlier results wait for the store: these go after them, in order.
                self._keep(write)
                continue
            try:
                written = await asyncio.to_thread(
                    self._record_batch, write.reports, write.tags, write.now
                )
            except StoreError as exc:
                await self._store_refused(write, exc)
                continue
            for report, (observation_id, events) in zip(batch, written, strict=True):
                counts.recorded += 1
                counts.failed += report.is_failed
                counts.events += len(events)
                self._log_recorded(report, observation_id, events)

    # A store that refuses writes ---------------------------------------------------------

    def _keep(self, write: PendingWrite) -> None:
        dropped = self.unwritten.add(write)
        if dropped:
            log.error(
                "results dropped: too many wait for the store",
                extra={"dropped": dropped, "kept": len(self.unwritten)},
            )

    async def _store_refused(self, write: PendingWrite, exc: StoreError) -> None:
        """Keeps a refused write, raises the store alert, starts the retry loop."""
        self._keep(write)
        now = self.clock()
        if self.alarm.open(str(exc), now):
            log.error(
                "store not writable: keeping results in memory and retrying",
                extra={"error": str(exc), "kept": len(self.unwritten)},
            )
        await self.alarm.tell(now, kept=len(self.unwritten), bound=self.unwritten.max_reports)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_with_back_off(), name="certvigil-flush")

    async def _flush_with_back_off(self) -> None:
        delay_s, longest_s = self.store_retry_s
        while len(self.unwritten):
            await asyncio.sleep(delay_s)
            if await self._flush_once():
                return
            delay_s = min(delay_s * 2, longest_s)
            await self.alarm.tell(
                self.clock(), kept=len(self.unwritten), bound=self.unwritten.max_reports
            )

    async def wait_until_written(self) -> None:
        """Returns once no result waits for the store (at once when none does)."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _stop_flusher(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)

    async def _flush_once(self) -> bool:
        """Writes the kept results, oldest first; returns whether all went in.

        One flush runs at a time, to its end even when its caller is cancelled: a write
        cut off after its commit would otherwise be written again.
        """
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_now())
        return await asyncio.shield(self._flushing)

    async def _flush_now(self) -> bool:
        written = 0
        while (write := self.unwritten.oldest()) is not None:
            try:
                outcome = await asyncio.to_thread(
                    self._record_batch, write.reports, write.tags, write.now
                )
            except StoreError as exc:
                self.alarm.error = str(exc)
                log.warning(
                    "store still not writable",
                    extra={"error": str(exc), "kept": len(self.unwritten)},
                )
                return False
            self.unwritten.written()
            written += len(write.reports)
            for report, (observation_id, events) in zip(write.reports, outcome, strict=True):
                self._log_recorded(report, observation_id, events)
        if self.alarm.is_open:
            opened_at = self.alarm.opened_at or self.clock()
            error = self.alarm.error
            now = self.clock()
            log.info(
                "store writable again: kept results written",
                extra={"written": written, "dropped": self.unwritten.dropped},
            )
            await self.alarm.close(now, written=written, dropped=self.unwritten.dropped)
            try:
                await asyncio.to_thread(
                    record_outage,
                    self.store,
                    database=self.store.url,
                    opened_at=opened_at,
                    now=now,
                    error=error,
                    written=written,
                )
            except StoreError as exc:
                log.warning("store outage not recorded", extra={"error": str(exc)})
        return True

    def _record_batch(
        self,
        reports: Sequence[EndpointReport],
        tags: Sequence[tuple[str, ...]],
        now: datetime,
    ) -> list[tuple[int, tuple[AlertEvent, ...]]]:
        """Record reports with their alerts and queued deliveries in one transaction.

        Each report is written whole (observation, alerts, deliveries) or not at all.
        """
        with self.store.write() as connection:
            return record_and_judge(connection, self.engine, reports, tags, now)

    def _log_recorded(
        self, report: EndpointReport, observation_id: int, events: Sequence[AlertEvent]
    ) -> None:
        log.debug(
            "recorded",
            extra={
                "endpoint": str(report.target),
                "observation": observation_id,
                "verdict": "failed" if report.is_failed else report.verdict.value,
                "alert_events": len(events),
            },
        )
        for event in events:
            log.info(
                "alert event",
                extra={
                    "endpoint": str(report.target),
                    "action": event.action.value,
                    "kind": event.kind.value,
                    "severity": event.severity.value,
                },
            )


def record_and_judge(
    connection: Connection,
    engine: AlertEngine,
    reports: Sequence[EndpointReport],
    tags: Sequence[tuple[str, ...]],
    now: datetime,
) -> list[tuple[int, tuple[AlertEvent, ...]]]:
    """Record reports and run them through the alert rules, in the caller's transaction.

    Returns:
        Each report's observation id and the alert events it caused, in order.
    """
    # The observations in a few statements, then the alerts of the whole batch in a
    # few more (AlertEngine.process_many_in judges as report by report, in order).
    # Every report's labels are set here, so its endpoint's id and labels are known
    # without reading them back.
    observation_ids, endpoints = record_for_judging(
        connection,
        reports,
        tags=dict(zip((report.target for report in reports), tags, strict=True)),
    )
    events = engine.process_many_in(connection, reports, observation_ids, now, endpoints=endpoints)
    return list(zip(observation_ids, events, strict=True))


@dataclass(slots=True)
class _Counts:
    recorded: int = 0
    failed: int = 0
    events: int = 0


def _group(
    due: Sequence[ScheduledTarget],
    checks: Mapping[Target, ChecksToRun],
    policies: Mapping[Target, AnalysisPolicy],
) -> dict[GroupKey, list[ScheduledTarget]]:
    groups: dict[GroupKey, list[ScheduledTarget]] = {}
    for scheduled in due:
        target = scheduled.target
        key = (scheduled.trust, scheduled.timeout_s, checks[target], policies[target])
        groups.setdefault(key, []).append(scheduled)
    return groups


def _feed(members: Sequence[ScheduledTarget], stop: asyncio.Event) -> Iterator[Target]:
    # scan_stream pulls targets only when it has room, so checking here is enough to
    # start nothing new once a stop is requested.
    for scheduled in members:
        if stop.is_set():
            return
        yield scheduled.target


def with_timeout(options: ScanOptions, timeout_s: float) -> ScanOptions:
    """``options`` with one group's connect, handshake and STARTTLS time-out."""
    return replace(
        options,
        connect_timeout_s=timeout_s,
        handshake_timeout_s=timeout_s,
        starttls_timeout_s=timeout_s,
    )
