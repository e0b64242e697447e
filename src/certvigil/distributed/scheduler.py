"""``certvigil run --distributed``: the daemon, with its scans done by Celery workers.

Everything but the scanning is the ordinary daemon's (``daemon.runner.Daemon``): the
schedule, the lock (one scheduler per database), retention, and the delivery outbox,
which sends every alert the workers' transactions queued, once, from here. Each cycle
resolves the due host names, cuts the targets into shards that own whole destinations
(``distributed.shards``), records the shards, and sends them to the broker as their
destinations come free; it then follows the shards' rows in the store until all are
final. A stop request sends nothing more; shards already sent finish on their workers.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from certvigil.config.checks import ChecksToRun
from certvigil.config.expand import ScheduledTarget
from certvigil.config.loading import LoadedConfig
from certvigil.config.model import DistributedSettings
from certvigil.daemon.logs import LOGGER_NAME
from certvigil.daemon.runner import Daemon, GroupKey, _Counts
from certvigil.distributed.celery_app import TASK_NAME, make_app
from certvigil.distributed.shards import DispatchOrder, Shard, ShardItem, plan_shards
from certvigil.errors import StoreError, UsageError
from certvigil.probe.resolve import DnsFailure, resolve_addresses
from certvigil.store import Store
from certvigil.store import distributed as shards_db
from certvigil.targets.ipaddr import ip_or_none
from certvigil.targets.target import Target

log = logging.getLogger(f"{LOGGER_NAME}.scheduler")

POLL_S = 1.0
"""How often the scheduler reads the shards' progress (a read of every shard row of
the round; at 0.25 s it was most of the database's transactions in a round)."""

STORE_RETRY_S = 2.0
"""Pause before reading the shards again from a store that refused."""

BROKER_RETRY_S = 2.0
"""Pause before sending again to a broker that refused a shard."""

RESOLVE_CONCURRENCY = 64
"""Host names looked up at once before sharding."""


def distributed_settings(loaded: LoadedConfig) -> DistributedSettings:
    """The configuration's ``distributed`` section, or a usage error naming what is missing."""
    settings = loaded.config.distributed
    if settings is None:
        raise UsageError(
            f"{loaded.path}: distributed scans need a 'distributed:' section with a broker_url"
        )
    url = loaded.database_url or ""
    if not url.startswith("postgresql"):
        raise UsageError(
            f"{loaded.path}: distributed scans share one database between machines: "
            "set database_url to a PostgreSQL URL (postgresql+psycopg://…)"
        )
    return settings


class DistributedDaemon(Daemon):
    """A daemon whose cycles send shards to workers instead of scanning here."""

    def __init__(
        self,
        loaded: LoadedConfig,
        targets: Sequence[ScheduledTarget],
        *,
        store: Store,
        **kwargs: Any,
    ) -> None:
        super().__init__(loaded, targets, store=store, **kwargs)
        self.settings = distributed_settings(loaded)
        self.app = make_app(self.settings)
        self._last_change: dict[str, tuple[tuple[str, int, int], float]] = {}
        self._ran: dict[Target, ChecksToRun] = {}

    async def _scan_groups(
        self,
        groups: Mapping[GroupKey, Sequence[ScheduledTarget]],
        counts: _Counts,
        started_s: float,
    ) -> None:
        round_id = uuid.uuid4().hex
        shards: list[Shard] = []
        for (trust_settings, timeout_s, checks, _policy), scheduled in groups.items():
            # The worker derives each target's analysis policy from the same
            # configuration, as this daemon did; the group says what it cannot derive.
            items = await _resolved(scheduled, timeout_s=timeout_s)
            group = {
                "trust": trust_settings.model_dump(mode="json"),
                "timeout_s": timeout_s,
                "checks": {"revocation": checks.revocation, "tls_config": checks.tls_config},
            }
            for item in items:
                self._ran[item.target] = checks
            shards += plan_shards(
                items,
                round_id=round_id,
                group=group,
                size=self.settings.shard_size,
                by_subnet=self.settings.per_subnet,
                new_id=lambda: uuid.uuid4().hex,
            )
        # Item indexes are per group; shards of different groups never share a row.
        await asyncio.to_thread(self._add, shards)
        log.info("round started", extra={"round": round_id, "shards": len(shards)})
        order = DispatchOrder(waiting=list(shards))
        try:
            await self._follow(order, counts, started_s)
        finally:
            if order.waiting:
                waiting = [shard.id for shard in order.waiting]
                order.waiting = []
                await asyncio.shield(asyncio.to_thread(self._cancel, waiting))

    async def _follow(
        self,
        order: DispatchOrder,
        counts: _Counts,
        started_s: float,
    ) -> None:
        stop, _hurry = self._events()
        round_id = next(iter(order.waiting)).round_id if order.waiting else None
        if round_id is None:
            return
        store_down = False
        while not order.done:
            if stop.is_set():
                if order.waiting:
                    waiting = [shard.id for shard in order.waiting]
                    order.waiting = []
                    await asyncio.to_thread(self._cancel, waiting)
            else:
                for shard in order.ready():
                    if not await asyncio.to_thread(self._send, shard):
                        # The broker is down: this shard and the rest wait for it.
                        order.finished(shard.id)
                        order.waiting.insert(0, shard)
                        await asyncio.sleep(BROKER_RETRY_S)
                        break
            try:
                progress = await asyncio.to_thread(self._progress, round_id)
            except StoreError as exc:
                if not store_down:
                    log.warning("store unavailable; waiting", extra={"error": str(exc)})
                store_down = True
                await asyncio.sleep(STORE_RETRY_S)
                continue
            if store_down:
                # The workers could not write either: no shard stalled while the store
                # was away, so start every stall clock again.
                log.warning("store available again")
                store_down = False
                self._last_change.clear()
            await self._resend_lost(order, progress)
            for row in progress:
                if row.state in shards_db.ShardState.FINAL and row.id in order.running:
                    finished = order.finished(row.id)
                    counts.recorded += row.recorded
                    counts.failed += row.failed
                    counts.events += row.alert_events
                    if finished is not None:
                        for item in finished.items:
                            self.schedule.mark_scanned(
                                item.target, started_s, ran=self._ran.get(item.target)
                            )
            if order.done:
                break
            try:
                await asyncio.wait_for(stop.wait(), timeout=POLL_S)
            except TimeoutError:
                pass
            if stop.is_set() and not order.waiting:
                await asyncio.sleep(POLL_S)

    async def _resend_lost(
        self, order: DispatchOrder, progress: Sequence[shards_db.ShardProgress]
    ) -> None:
        """Send again a running shard whose row has not moved for a visibility time-out.

        Its message was lost (a broker restarted without persistence) or its worker is
        gone; a duplicate is harmless, since a worker skips what is recorded.
        """
        now = time.monotonic()
        for row in progress:
            if row.id not in order.running or row.state in shards_db.ShardState.FINAL:
                continue
            mark = (row.state, row.attempts, row.recorded)
            seen = self._last_change.get(row.id)
            if seen is None or seen[0] != mark:
                self._last_change[row.id] = (mark, now)
                continue
            if now - seen[1] > self.settings.visibility_timeout_s:
                log.warning("shard stalled; sending it again", extra={"shard": row.id})
                if await asyncio.to_thread(self._send, order.running[row.id]):
                    self._last_change[row.id] = (mark, now)

    def _add(self, shards: Sequence[Shard]) -> None:
        with self.store.write() as connection:
            shards_db.add_shards(
                connection,
                ((s.id, s.round_id, len(s.items)) for s in shards),
                now=self.clock(),
            )

    def _send(self, shard: Shard) -> bool:
        """Send one shard; ``False`` (logged) when the broker cannot be reached."""
        try:
            self.app.send_task(TASK_NAME, args=[shard.to_json()], queue=self.settings.queue)
        except Exception as exc:  # noqa: BLE001 - kombu raises many kinds; all mean "broker down"
            log.warning(
                "broker unreachable; shard kept for later",
                extra={
                    "broker": _safe_url(self.settings.broker_url),
                    "shard": shard.id,
                    "error": str(exc),
                },
            )
            return False
        return True

    def _progress(self, round_id: str) -> list[shards_db.ShardProgress]:
        with self.store.read() as connection:
            return shards_db.round_progress(connection, round_id)

    def _cancel(self, shard_ids: Sequence[str]) -> None:
        with self.store.write() as connection:
            shards_db.cancel_queued(connection, shard_ids, now=self.clock())


async def _resolved(scheduled: Sequence[ScheduledTarget], *, timeout_s: float) -> list[ShardItem]:
    """Each target with the addresses its name resolves to (``None`` when it does not).

    An address is its own answer, taken here without a task of its own: a sweep of
    10,000 addresses otherwise ran 10,000 tasks for nothing.
    """
    limit = asyncio.Semaphore(RESOLVE_CONCURRENCY)

    async def one(index: int, entry: ScheduledTarget) -> ShardItem:
        addresses: tuple[str, ...] | None = None
        async with limit:
            try:
                addresses = await resolve_addresses(
                    entry.target.host, entry.target.port, timeout_s=timeout_s
                )
            except DnsFailure:
                addresses = None  # the worker looks again and reports the failure
        return ShardItem(index=index, target=entry.target, addresses=addresses, tags=entry.tags)

    items: list[ShardItem | None] = [None] * len(scheduled)
    names: list[tuple[int, ScheduledTarget]] = []
    for index, entry in enumerate(scheduled):
        literal = ip_or_none(entry.target.host)
        if literal is None:
            names.append((index, entry))
        else:
            items[index] = ShardItem(
                index=index, target=entry.target, addresses=(str(literal),), tags=entry.tags
            )
    for item in await asyncio.gather(*(one(index, entry) for index, entry in names)):
        items[item.index] = item
    return [item for item in items if item is not None]


def _safe_url(url: str) -> str:
    """A broker URL without its password."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://…@{rest.rsplit('@', 1)[1]}"
