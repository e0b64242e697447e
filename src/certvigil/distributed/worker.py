"""A worker process: runs shards with the ordinary scanner and records them idempotently.

Each shard runs on one ``EndpointScanner`` with the configuration's limits, so the
per-address (and per-subnet) limits hold for the destinations the shard owns
(``distributed.shards``). Every report is recorded in one transaction with its alert
events and the shard item it completes; a shard delivered again (its worker died)
skips the items already recorded, so nothing is lost and nothing is stored twice.

A second or later delivery runs carefully, one endpoint at a time, naming the endpoint
in flight in the shard's row first. If a worker dies again while scanning the same
endpoint ``poison_after`` times, that endpoint is set aside: it is recorded as an
``internal_error`` that says so, and the shard goes on without it. A shard delivered
more than ``max_attempts`` times is closed with its remaining endpoints failed.

A store that refuses (restarting, failing over, unreachable) does not cost the shard:
the worker keeps it, its scans going on, and retries the write every
``STORE_RETRY_S`` for up to ``store_wait`` (at most half the broker's visibility
time-out); only then does it hand the shard back to the broker. Each such wait is
counted in the worker's row (``certvigil workers status``). A careful attempt handed
back so leaves its row naming the endpoint in flight; the worker sends the shard again
with a note (``shards.with_handed_back``) so the next delivery does not count that
endpoint as a worker death.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import ParamSpec, TypeVar

from certvigil import __version__
from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.routing import routes_from_config
from certvigil.analysis.model import EndpointReport
from certvigil.analysis.report import analyse_endpoint
from certvigil.analysis.trust import TrustStore
from certvigil.config.checks import ChecksToRun
from certvigil.config.expand import ScheduledTarget
from certvigil.config.loading import LoadedConfig
from certvigil.config.model import DistributedSettings, TrustSettings
from certvigil.daemon.logs import LOGGER_NAME
from certvigil.daemon.runner import (
    alert_policy_for,
    analysis_policies_for,
    group_options,
    record_and_judge,
    scan_options_for,
)
from certvigil.distributed.shards import Shard, ShardItem, ShardPayloadError, handed_back
from certvigil.errors import StoreError
from certvigil.files.truststore import TrustStoreCache
from certvigil.observed.handshake import FailureKind, ProbeFailure
from certvigil.probe.crl_fetch import CrlCache
from certvigil.scan.options import ScanOptions, utc_now
from certvigil.scan.scanner import EndpointScanner
from certvigil.store import Store
from certvigil.store import distributed as shards_db

log = logging.getLogger(f"{LOGGER_NAME}.worker")

HEARTBEAT_S = 5.0
"""How often a worker refreshes its row in ``scan_workers``."""

STORE_RETRY_S = 2.0
"""Pause between two tries of a write the store refused."""

WRITE_BATCH_MAX = 500
"""Most endpoints recorded in one transaction: a default shard (``shard_size`` 500).

Each transaction also claims its items, counts them, beats and reads what the batch's
endpoints held, and on PostgreSQL every statement costs the driver more for a small
batch than a large one: at 10,000 loopback endpoints, batches of up to 500 gathered
for 1 s took the worker's recording from 200-215 to 137-154 µs of CPU per endpoint
against batches of 200 gathered for 0.5 s (two runs each, alternating)."""

BATCH_GATHER_S = 1.0
"""How long the first report of a batch waits for others to join it."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


class StoreUnavailable(Exception):
    """The store refused a shard's write: the task hands the shard back to the broker.

    Attributes:
        attempt: The attempt that gave up (``None`` if it never began).
        careful_index: The item a careful attempt was scanning, which the shard's row
            still names as in flight (``None`` when none was).
    """

    def __init__(self, message: str, *, attempt: int | None, careful_index: int | None) -> None:
        super().__init__(message)
        self.attempt = attempt
        self.careful_index = careful_index


class ShardRunner:
    """Runs shards for one worker process (one at a time, on its own event loop)."""

    def __init__(
        self,
        loaded: LoadedConfig,
        targets: Sequence[ScheduledTarget],
        *,
        store: Store,
        settings: DistributedSettings,
        name: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        config = loaded.config
        self.store = store
        self.settings = settings
        self.name = name
        self.clock = clock
        self.options: ScanOptions = scan_options_for(config)
        alerts = alert_policy_for(config, targets)
        self.engine = AlertEngine(store, routes_from_config(config.alerts.routes), alerts)
        self.analysis = analysis_policies_for(self.options.policy, alerts, targets)
        # Kept across shards: a fleet under one CA fetches its CRL once per nextUpdate.
        self.crl_cache = CrlCache(clock=clock)
        self.trust = TrustStoreCache()
        self.loop = asyncio.new_event_loop()
        self.started_at = clock()
        self.started_mono = time.monotonic()
        self.current_shard: str | None = None
        self.shards_done = 0
        self.endpoints_done = 0
        self.store_waits = 0
        self.store_waited_s = 0.0
        # Never past half the visibility time-out: the broker would hand the shard to
        # another worker while this one still holds it.
        self.store_wait_s = min(settings.store_wait_s, settings.visibility_timeout_s / 2)
        self._attempt: int | None = None
        self._careful_index: int | None = None
        self._lock = threading.Lock()
        self._progress_lock = threading.Lock()
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    # Heartbeat -------------------------------------------------------------------------

    def start_heartbeat(self) -> None:
        """Refresh this worker's row every few seconds, in a thread of its own."""
        self.beat()
        self._beater = threading.Thread(target=self._beat_forever, name="heartbeat", daemon=True)
        self._beater.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._beater is not None:
            self._beater.join(timeout=HEARTBEAT_S * 2)

    def _beat_forever(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.beat()
            except StoreError as exc:
                log.warning("heartbeat not recorded", extra={"error": str(exc)})

    def beat(self) -> None:
        """Write this worker's progress and throughput now."""
        with self._progress_lock:
            row = self._row()
            with self.store.write() as connection:
                shards_db.beat(connection, row)

    def _row(self, *, endpoints_added: int = 0) -> shards_db.WorkerRow:
        """This worker's progress row, counting ``endpoints_added`` about to be committed."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with self._lock:
            elapsed = max(time.monotonic() - self.started_mono, 1e-9)
            endpoints_done = self.endpoints_done + endpoints_added
            return shards_db.WorkerRow(
                name=self.name,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                version=__version__,
                started_at_utc=self.started_at,
                heartbeat_at_utc=self.clock(),
                current_shard=self.current_shard,
                shards_done=self.shards_done,
                endpoints_done=endpoints_done,
                endpoints_per_s=endpoints_done / elapsed,
                cpu_s=usage.ru_utime + usage.ru_stime,
                store_waits=self.store_waits,
                store_waited_s=self.store_waited_s,
            )

    # Shards ----------------------------------------------------------------------------

    def run(self, payload: object) -> None:
        """The Celery task body: run one shard message to the end.

        A message that is not a shard is logged and dropped (retrying cannot mend it).
        When the store refuses writes for longer than ``store_wait``, the shard goes back
        to the broker (``StoreUnavailable``); what was recorded stays recorded.
        """
        try:
            shard = Shard.from_json(payload)
        except ShardPayloadError as exc:
            log.error("message dropped: not a shard", extra={"error": str(exc)})
            return
        with self._lock:
            self.current_shard = shard.id
        self._attempt = None
        self._careful_index = None
        try:
            self.loop.run_until_complete(self.run_shard(shard, handed_back=handed_back(payload)))
        except StoreError as exc:
            log.warning(
                "store unavailable; shard handed back",
                extra={"shard": shard.id, "error": str(exc), "waited_s": self.store_wait_s},
            )
            raise StoreUnavailable(
                str(exc), attempt=self._attempt, careful_index=self._careful_index
            ) from exc
        finally:
            with self._lock:
                self.current_shard = None
                self.shards_done += 1
            try:
                self.beat()
            except StoreError:
                pass  # the heartbeat thread says so

    async def run_shard(self, shard: Shard, *, handed_back: tuple[int, int] | None = None) -> None:
        """Scan a shard's endpoints not yet recorded, and record each once.

        Args:
            shard: The shard.
            handed_back: The message's note ``(attempt, item)``: that attempt gave the
                shard back alive while scanning that item (not a worker death).
        """
        attempt = await self._stored(self._begin, shard.id)
        if attempt is None:
            log.info("shard already finished; skipped", extra={"shard": shard.id})
            return
        self._attempt = attempt.number
        todo = [item for item in shard.items if item.index not in attempt.done]
        trust = await self.trust.get(TrustSettings.model_validate(shard.group["trust"]))
        if attempt.number > self.settings.max_attempts:
            reason = (
                f"not scanned: its shard was handed out {attempt.number} times and its "
                "worker ended each time"
            )
            await self._record(shard.id, [(i, self._failure(i, reason, trust)) for i in todo])
            await self._stored(self._finish, shard.id, shards_db.ShardState.FAILED, reason)
            return
        interrupted = attempt.interrupted_index
        if handed_back is not None and handed_back == (attempt.number - 1, interrupted):
            interrupted = None  # the store went away, not the worker
        if interrupted is not None and interrupted not in attempt.done:
            crashes = attempt.suspect_crashes + 1 if attempt.suspect_index == interrupted else 1
            await self._stored(self._suspect, shard.id, interrupted, crashes)
            if crashes >= self.settings.poison_after:
                poison = next(i for i in todo if i.index == interrupted)
                reason = (
                    f"set aside: scanning this endpoint ended the worker process {crashes} "
                    "times; it is not retried in this round"
                )
                log.warning("endpoint set aside", extra={"endpoint": str(poison.target)})
                await self._record(
                    shard.id, [(poison, self._failure(poison, reason, trust))], poisoned=True
                )
                todo = [i for i in todo if i.index != interrupted]
        checks = shard.group.get("checks") or {}
        policy = (
            self.analysis.get(shard.items[0].target, self.options.policy)
            if shard.items
            else self.options.policy
        )
        options = group_options(
            self.options,
            float(shard.group["timeout_s"]),
            ChecksToRun(
                revocation=bool(checks.get("revocation")), tls_config=bool(checks.get("tls_config"))
            ),
            policy,
        )
        async with EndpointScanner(
            options=options, trust=trust, clock=self.clock, crl_cache=self.crl_cache
        ) as scanner:
            if attempt.number > 1:
                await self._run_carefully(shard.id, todo, scanner)
            else:
                await self._run_all(shard.id, todo, scanner)
        await self._stored(self._finish, shard.id, shards_db.ShardState.DONE, None)

    async def _run_all(
        self, shard_id: str, items: Sequence[ShardItem], scanner: EndpointScanner
    ) -> None:
        done: asyncio.Queue[tuple[ShardItem, EndpointReport]] = asyncio.Queue()

        async def one(item: ShardItem) -> None:
            done.put_nowait((item, await scanner.report(item.target, addresses=item.addresses)))

        tasks = [asyncio.create_task(one(item)) for item in items]
        try:
            left = len(items)
            while left:
                batch = [await done.get()]
                # Gather for a moment: one transaction per few reports costs a round
                # trip, a commit and the shard's counters each time.
                gather_until = asyncio.get_running_loop().time() + BATCH_GATHER_S
                while len(batch) < min(left, WRITE_BATCH_MAX):
                    if done.empty():
                        wait_s = gather_until - asyncio.get_running_loop().time()
                        if wait_s <= 0:
                            break
                        try:
                            batch.append(await asyncio.wait_for(done.get(), wait_s))
                        except TimeoutError:
                            break
                    else:
                        batch.append(done.get_nowait())
                left -= len(batch)
                await self._record(shard_id, batch)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_carefully(
        self, shard_id: str, items: Sequence[ShardItem], scanner: EndpointScanner
    ) -> None:
        for item in items:
            await self._stored(self._set_current, shard_id, item.index)
            self._careful_index = item.index
            report = await scanner.report(item.target, addresses=item.addresses)
            await self._record(shard_id, [(item, report)])
            self._careful_index = None

    async def _stored(self, call: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Run a store call in a thread; while the store refuses, wait and try again.

        Raises:
            StoreError: The store still refused after ``store_wait``.
        """
        waiting_since: float | None = None
        while True:
            try:
                result = await asyncio.to_thread(call, *args, **kwargs)
            except StoreError as exc:
                now = time.monotonic()
                if waiting_since is None:
                    waiting_since = now
                    with self._lock:
                        self.store_waits += 1
                    log.warning(
                        "store unavailable; shard kept, retrying",
                        extra={"shard": self.current_shard, "error": str(exc)},
                    )
                if now - waiting_since >= self.store_wait_s:
                    self._add_waited(now - waiting_since)
                    raise
                await asyncio.sleep(min(STORE_RETRY_S, self.store_wait_s))
                continue
            if waiting_since is not None:
                waited_s = time.monotonic() - waiting_since
                self._add_waited(waited_s)
                log.warning(
                    "store available again",
                    extra={"shard": self.current_shard, "waited_s": round(waited_s, 1)},
                )
            return result

    def _add_waited(self, seconds: float) -> None:
        with self._lock:
            self.store_waited_s += seconds

    def _failure(self, item: ShardItem, reason: str, trust: TrustStore) -> EndpointReport:
        now = self.clock()
        failure = ProbeFailure(
            target=item.target, kind=FailureKind.INTERNAL_ERROR, detail=reason, observed_at_utc=now
        )
        return analyse_endpoint(failure, now=now, trust=trust, policy=self.options.policy)

    async def _record(
        self,
        shard_id: str,
        pairs: Sequence[tuple[ShardItem, EndpointReport]],
        *,
        poisoned: bool = False,
    ) -> None:
        if pairs:
            await self._stored(self._write, shard_id, pairs, poisoned)

    def _write(
        self, shard_id: str, pairs: Sequence[tuple[ShardItem, EndpointReport]], poisoned: bool
    ) -> None:
        """Record a batch in one transaction: its shard items, observations and alerts.

        Items another delivery of the shard recorded first are skipped, not recorded twice.
        """
        # The worker's row is written with the records it counts, and no heartbeat
        # writes an older count in between: whoever sees a shard's records sees them
        # counted in ``workers status``.
        with self._progress_lock:
            with self.store.write() as connection:
                claimed = shards_db.claim_items(
                    connection, shard_id, [item.index for item, _ in pairs]
                )
                mine = [(item, report) for item, report in pairs if item.index in claimed]
                if not mine:
                    return
                reports = [report for _item, report in mine]
                written = record_and_judge(
                    connection, self.engine, reports, [item.tags for item, _ in mine], self.clock()
                )
                shards_db.link_observations(
                    connection,
                    shard_id,
                    [(item.index, obs) for (item, _), (obs, _e) in zip(mine, written, strict=True)],
                    poisoned=poisoned,
                )
                shards_db.add_counts(
                    connection,
                    shard_id,
                    recorded=len(mine),
                    failed=sum(report.is_failed for report in reports),
                    alert_events=sum(len(events) for _obs, events in written),
                )
                shards_db.beat(connection, self._row(endpoints_added=len(mine)))
            # Counted once committed, still holding the lock: no heartbeat in between.
            with self._lock:
                self.endpoints_done += len(mine)
        log.debug("batch recorded", extra={"shard": shard_id, "endpoints": len(mine)})

    def _begin(self, shard_id: str) -> shards_db.Attempt | None:
        with self.store.write() as connection:
            return shards_db.begin_attempt(connection, shard_id, worker=self.name, now=self.clock())

    def _suspect(self, shard_id: str, index: int, crashes: int) -> None:
        with self.store.write() as connection:
            shards_db.set_suspect(connection, shard_id, index=index, crashes=crashes)

    def _set_current(self, shard_id: str, index: int) -> None:
        with self.store.write() as connection:
            shards_db.set_current(connection, shard_id, index)

    def _finish(self, shard_id: str, state: str, error: str | None) -> None:
        with self.store.write() as connection:
            shards_db.finish_shard(connection, shard_id, state=state, now=self.clock(), error=error)

    def close(self) -> None:
        self.stop_heartbeat()
        self.loop.close()
