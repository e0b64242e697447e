"""The agent loop: scan local and assigned targets when due, queue the observations, send them.

Each cycle fetches the targets the server assigns to this agent (by its name or its
tags; the last answer is kept when the server cannot be reached), adds the local ones,
and scans those that are due, on the daemon's schedule (``daemon/schedule.py``): each
target's own interval, each check's own interval and jitter (``checks:``, a target's
overrides included), the certificate check always. When each check last ran on each
endpoint is kept in the outbox file, so a restarted agent, or one run from cron with
``--once``, scans only what is due; on a new file everything is. The raw observations
are queued in batches in the outbox as they complete, so memory holds one batch, not the
whole network. A sender drains the outbox oldest first; when the server cannot be
reached it waits with exponential back-off and jitter, and the observations stay on disk
meanwhile. A cycle that scanned nothing and has nothing waiting sends an empty batch, so
the server still sees the agent's contact (it raises an alert after 3 silent intervals).

Between cycles the agent sleeps until the next endpoint is due (plus ``scan.jitter``),
at most ``scan.interval``: the assignment is fetched and the outbox drained at least that
often.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from certvigil import __version__
from certvigil.agent.client import ServerClient, ServerRefused, ServerUnreachable
from certvigil.agent.outbox import AgentOutbox
from certvigil.config.checks import CheckName, ChecksToRun
from certvigil.config.expand import ScheduledTarget, entry_schedule, entry_targets, expand_targets
from certvigil.config.loading import LoadedConfig
from certvigil.config.model import TargetEntry
from certvigil.daemon.schedule import Schedule, sleep_until_s
from certvigil.errors import TargetError
from certvigil.files.truststore import load_trust_store
from certvigil.scan.options import ScanOptions, utc_now
from certvigil.scan.scanner import scan_stream
from certvigil.server.wire import item_from_report
from certvigil.targets.target import Target

if TYPE_CHECKING:
    from certvigil.probe.crl_fetch import CrlCache

log = logging.getLogger("certvigil.agent")

MAX_ASSIGNED_TARGETS = 100_000
"""Most endpoints taken from the server's assignment (a bound on what it can make us do)."""

ONCE_SEND_DEADLINE_S = 120.0
"""With ``--once``, how long an unreachable server is waited for before exiting."""

SEND_RETRY_FIRST_S = 1.0
SEND_RETRY_MAX_S = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleStats:
    """What one cycle did.

    Attributes:
        targets: Endpoints known (local and assigned).
        assigned: Of those, endpoints the server assigned.
        queued: Observations queued.
        sent: Batches the server stored during the cycle's drain.
        backlog: Batches left in the outbox.
        due: Endpoints due, and scanned, in the cycle.
    """

    targets: int
    assigned: int
    queued: int
    sent: int
    backlog: int
    due: int = 0


def endpoint_key(target: Target) -> str:
    """An endpoint as the outbox's ``check_runs`` names it (stable across runs)."""
    starttls = target.starttls.value if target.starttls is not None else None
    return json.dumps([target.host, target.port, target.sni, starttls], separators=(",", ":"))


class Agent:
    """One agent: its configuration, server client and outbox.

    Args:
        loaded: The configuration (``server:``, ``targets``, ``scan``, ``trust``).
        client: The server client.
        outbox: The on-disk queue.
        name: The agent's name as announced.
        clock: ``now`` for observations.
        rng: Jitter source.
        scan_options: The base scan options (tests); each group of due endpoints gets
            its own time-out and checks over them.
        retry_s: First and longest wait between two tries of an unreachable server.
        monotonic: Seconds on a monotonic clock, for the schedule.
    """

    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        client: ServerClient,
        outbox: AgentOutbox,
        name: str,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        scan_options: ScanOptions | None = None,
        retry_s: tuple[float, float] = (SEND_RETRY_FIRST_S, SEND_RETRY_MAX_S),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loaded = loaded
        self.client = client
        self.outbox = outbox
        self.name = name
        self.clock = clock
        self.rng = rng or random.Random()
        config = loaded.config
        self.scan_options = scan_options or ScanOptions(
            concurrency=config.scan.concurrency,
            deadline_s=config.scan.deadline_s,
            connect_timeout_s=config.scan.timeout_s,
            handshake_timeout_s=config.scan.timeout_s,
            starttls_timeout_s=config.scan.timeout_s,
            retry_timeouts=config.scan.retry_timeouts,
        )
        self.retry_s = retry_s
        self.batch_size = config.server.batch_size if config.server else 100
        self.tags = config.server.tags if config.server else ()
        self.monotonic = monotonic
        self._assigned: list[tuple[Target, TargetEntry]] = []
        self._targets_count = 0
        self._trust_document: dict[str, Any] | None = None
        self.schedule: Schedule | None = None
        self._scheduled: tuple[ScheduledTarget, ...] = ()
        self._crl_cache: CrlCache | None = None

    def trust_document(self) -> dict[str, Any]:
        """The trust settings sent with each batch (extra anchors as PEM)."""
        if self._trust_document is None:
            trust = self.loaded.config.trust
            pems = [
                self.loaded.resolve(path).read_text(encoding="ascii", errors="replace")
                for path in trust.ca_files
            ]
            self._trust_document = {"public": trust.public, "system": trust.system, "ca_pem": pems}
        return self._trust_document

    def envelope(self, report_id: str, items: list[Any], backlog: int) -> dict[str, Any]:
        """The request body of a queued batch."""
        config = self.loaded.config
        return {
            "report_id": report_id,
            "agent": {
                "name": self.name,
                "version": __version__,
                "tags": list(self.tags),
                "interval_s": max(1, int(config.scan.interval_s)),
                "targets": self._targets_count,
                "backlog": backlog,
            },
            "trust": self.trust_document(),
            "thresholds": [t.label for t in config.alerts.thresholds],
            "items": items,
        }

    async def refresh_assigned(self) -> None:
        """Fetches the assigned targets; when the server is away, uses the last answer
        (kept in the outbox file, so a run from cron has it too)."""
        try:
            entries = await self.client.assigned_targets(tuple(self.tags))
            await asyncio.to_thread(self.outbox.save_assigned, entries)
        except (ServerUnreachable, ServerRefused) as exc:
            saved = await asyncio.to_thread(self.outbox.last_assigned)
            log.warning(
                "assigned targets not fetched (%s); using the last list (%d entries)",
                exc,
                len(saved or ()),
            )
            if saved is None:
                return
            entries = saved
        assigned: list[tuple[Target, TargetEntry]] = []
        for index, raw in enumerate(entries):
            if len(assigned) >= MAX_ASSIGNED_TARGETS:
                log.warning("more than %d assigned targets; the rest skipped", len(assigned))
                break
            try:
                entry = TargetEntry.model_validate(raw)
                for target in entry_targets(entry):
                    assigned.append((target, entry))
                    if len(assigned) >= MAX_ASSIGNED_TARGETS:
                        break
            except (ValidationError, TargetError) as exc:
                log.warning("assigned target %d skipped: %s", index, str(exc).splitlines()[0])
        self._assigned = assigned

    def _targets(self) -> tuple[ScheduledTarget, ...]:
        """The local endpoints, then the assigned ones not named locally (each once)."""
        found: dict[Target, ScheduledTarget] = {
            s.target: s for s in expand_targets(self.loaded).targets
        }
        for index, (target, entry) in enumerate(self._assigned):
            if target not in found:
                found[target] = entry_schedule(target, entry, self.loaded, f"assigned[{index}]")
        return tuple(found.values())

    async def _schedule_for(self, targets: tuple[ScheduledTarget, ...], now_s: float) -> Schedule:
        """The schedule of ``targets``: the one in use while they are unchanged; a new one
        that keeps the run times of the endpoints both name when they change; on the
        first cycle, one seeded with the run times kept in the outbox file."""
        if self.schedule is not None and targets == self._scheduled:
            return self.schedule
        previous = self.schedule
        schedule = Schedule(targets, start_s=now_s, previous=previous, rng=self.rng)
        if previous is None:
            keys = {endpoint_key(s.target): s.target for s in targets}
            runs = await asyncio.to_thread(self.outbox.check_runs, set(keys))
            now = self.clock()
            ago: dict[Target, dict[CheckName, float]] = {}
            for key, checks in runs.items():
                ago[keys[key]] = {
                    CheckName(name): (now - when).total_seconds()
                    for name, when in checks.items()
                    if name in CheckName.__members__.values()
                }
            schedule.seed(ago, every_check=True)
        self.schedule, self._scheduled = schedule, targets
        return schedule

    async def run_cycle(self, *, drain_deadline_s: float | None = None) -> CycleStats:
        """Scans what is due, queues it, and tries to send what is queued."""
        await self.refresh_assigned()
        targets = self._targets()
        self._targets_count = len(targets)
        started_s = self.monotonic()
        schedule = await self._schedule_for(targets, started_s)
        due = schedule.due(started_s)
        checks = {s.target: schedule.checks_due(s.target, started_s) for s in due}
        groups: dict[tuple[float, ChecksToRun], list[ScheduledTarget]] = {}
        for scheduled in due:
            groups.setdefault((scheduled.timeout_s, checks[scheduled.target]), []).append(scheduled)
        queued = 0
        if groups:
            queued = await self._scan_groups(groups, schedule, started_s)
        backlog, _ = await asyncio.to_thread(self.outbox.backlog)
        if queued == 0 and backlog == 0:
            # Nothing due and nothing waiting: an empty batch tells the server we are here.
            await asyncio.to_thread(self.outbox.add, [])
        sent = await self.drain(deadline_s=drain_deadline_s)
        backlog, _ = await asyncio.to_thread(self.outbox.backlog)
        return CycleStats(
            targets=len(targets),
            assigned=len(self._assigned),
            queued=queued,
            sent=sent,
            backlog=backlog,
            due=len(due),
        )

    async def _scan_groups(
        self,
        groups: dict[tuple[float, ChecksToRun], list[ScheduledTarget]],
        schedule: Schedule,
        started_s: float,
    ) -> int:
        """Scans each group with its time-out and checks; queues batches and run times."""
        config = self.loaded.config
        trust = await asyncio.to_thread(
            load_trust_store,
            ca_files=tuple(self.loaded.resolve(p) for p in config.trust.ca_files),
            use_system=config.trust.system,
            include_default=config.trust.public,
        )
        queued = 0
        batch: list[Any] = []
        runs: list[tuple[str, str]] = []

        async def flush() -> None:
            nonlocal batch, runs, queued
            if batch:
                await asyncio.to_thread(self.outbox.add, batch)
                # Noted once the observations are safe on disk: a crash in between
                # scans them again rather than losing them.
                await asyncio.to_thread(self.outbox.record_runs, runs, at=self.clock())
                queued += len(batch)
            batch, runs = [], []

        for (timeout_s, ran), members in groups.items():
            options = replace(
                self.scan_options,
                connect_timeout_s=timeout_s,
                handshake_timeout_s=timeout_s,
                starttls_timeout_s=timeout_s,
                revocation=ran.revocation,
                deep=ran.tls_config,
            )
            if ran.revocation and self._crl_cache is None:
                from certvigil.probe.crl_fetch import CrlCache

                # Kept across cycles, as the daemon keeps it: a CRL once per nextUpdate.
                self._crl_cache = CrlCache(clock=self.clock, keep_ocsp=True)
            tags_of = {m.target: m.tags for m in members}
            async for report in scan_stream(
                (m.target for m in members),
                options=options,
                trust=trust,
                clock=self.clock,
                crl_cache=self._crl_cache,
            ):
                batch.append(item_from_report(report, tags=tags_of.get(report.target, ())))
                schedule.mark_scanned(report.target, started_s, ran=ran)
                key = endpoint_key(report.target)
                runs += [(key, name.value) for name in ran.names]
                if len(batch) >= self.batch_size:
                    await flush()
        await flush()
        return queued

    def next_wait_s(self) -> float:
        """Seconds until the next cycle: until the next endpoint is due, plus jitter, and
        at most ``scan.interval``."""
        config = self.loaded.config
        wait_s = sleep_until_s(
            self.schedule.next_due_s() if self.schedule is not None else None,
            now_s=self.monotonic(),
            jitter_s=config.scan.jitter_s,
            rng=self.rng,
        )
        return min(wait_s, config.scan.interval_s)

    async def drain(self, *, deadline_s: float | None = None) -> int:
        """Sends queued batches oldest first until none is left or the deadline passes.

        An unreachable server is tried again after a back-off with jitter; a batch the
        server refuses as invalid (422, 413) is dropped with a warning, since sending it
        again cannot succeed; a refused key (401, 403) stops the drain.

        Returns:
            Batches the server stored.
        """
        loop = asyncio.get_running_loop()
        deadline = None if deadline_s is None else loop.time() + deadline_s
        delay = self.retry_s[0]
        sent = 0
        while True:
            queued = await asyncio.to_thread(self.outbox.oldest)
            if queued is None:
                return sent
            backlog, _ = await asyncio.to_thread(self.outbox.backlog)
            body = self.envelope(queued.report_id, queued.items, backlog - 1)
            try:
                answer = await self.client.send(body)
            except ServerUnreachable as exc:
                wait = delay * self.rng.uniform(0.5, 1.0)
                if deadline is not None and loop.time() + wait > deadline:
                    log.warning("server unreachable (%s); %d batches kept", exc, backlog)
                    return sent
                log.warning("server unreachable (%s); next try in %.1f s", exc, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, self.retry_s[1])
                continue
            except ServerRefused as exc:
                if exc.status in (401, 403):
                    log.error("server refused the agent's key (%s); batches kept", exc)
                    return sent
                log.warning("server refused batch %s for good (%s); dropped", queued.report_id, exc)
                await asyncio.to_thread(self.outbox.remove, queued.seq)
                continue
            rejected = answer.get("rejected") or []
            for item in rejected[:10]:
                log.warning("server rejected observation %s", item)
            await asyncio.to_thread(self.outbox.remove, queued.seq)
            sent += 1
            delay = self.retry_s[0]

    async def run(self, *, once: bool = False, stop: asyncio.Event | None = None) -> CycleStats:
        """Runs cycles as endpoints fall due until ``stop``; or, with ``once``, one cycle
        that scans every endpoint due now and sends everything queued.

        Returns:
            The last cycle's statistics.
        """
        stop = stop or asyncio.Event()
        config = self.loaded.config
        while True:
            stats = await self.run_cycle(
                drain_deadline_s=ONCE_SEND_DEADLINE_S if once else config.scan.interval_s
            )
            log.info(
                "cycle: %d targets (%d assigned), %d due, %d observations queued, "
                "%d batches sent, %d waiting",
                stats.targets,
                stats.assigned,
                stats.due,
                stats.queued,
                stats.sent,
                stats.backlog,
            )
            if once or stop.is_set():
                return stats
            wait = self.next_wait_s()
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
                return stats
            except TimeoutError:
                continue
