"""The agent loop: scan local and assigned targets, queue the observations, send them.

Each cycle fetches the targets the server assigns to this agent (by its name or its
tags; the last answer is kept when the server cannot be reached), adds the local ones,
scans them all with the scan's own code, and queues the raw observations in batches in
the outbox as they complete, so memory holds one batch, not the whole network. A
sender drains the outbox oldest first; when the server cannot be reached it waits with
exponential back-off and jitter, and the observations stay on disk meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from certvigil import __version__
from certvigil.agent.client import ServerClient, ServerRefused, ServerUnreachable
from certvigil.agent.outbox import AgentOutbox
from certvigil.config.expand import entry_targets, expand_targets
from certvigil.config.loading import LoadedConfig
from certvigil.config.model import TargetEntry
from certvigil.errors import TargetError
from certvigil.files.truststore import load_trust_store
from certvigil.scan.scanner import ScanOptions, scan_stream, utc_now
from certvigil.server.wire import item_from_report
from certvigil.targets.target import Target

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
        targets: Endpoints scanned.
        assigned: Of those, endpoints the server assigned.
        queued: Observations queued.
        sent: Batches the server stored during the cycle's drain.
        backlog: Batches left in the outbox.
    """

    targets: int
    assigned: int
    queued: int
    sent: int
    backlog: int


class Agent:
    """One agent: its configuration, server client and outbox.

    Args:
        loaded: The configuration (``server:``, ``targets``, ``scan``, ``trust``).
        client: The server client.
        outbox: The on-disk queue.
        name: The agent's name as announced.
        clock: ``now`` for observations.
        rng: Jitter source.
        scan_options: Overrides the scan options (tests).
        retry_s: First and longest wait between two tries of an unreachable server.
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
        self._assigned: list[tuple[Target, tuple[str, ...]]] = []
        self._targets_count = 0
        self._trust_document: dict[str, Any] | None = None

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
        assigned: list[tuple[Target, tuple[str, ...]]] = []
        for index, raw in enumerate(entries):
            if len(assigned) >= MAX_ASSIGNED_TARGETS:
                log.warning("more than %d assigned targets; the rest skipped", len(assigned))
                break
            try:
                entry = TargetEntry.model_validate(raw)
                for target in entry_targets(entry):
                    assigned.append((target, entry.tags))
                    if len(assigned) >= MAX_ASSIGNED_TARGETS:
                        break
            except (ValidationError, TargetError) as exc:
                log.warning("assigned target %d skipped: %s", index, str(exc).splitlines()[0])
        self._assigned = assigned

    def _targets(self) -> Iterator[tuple[Target, tuple[str, ...]]]:
        seen: set[Target] = set()
        for scheduled in expand_targets(self.loaded).targets:
            if scheduled.target not in seen:
                seen.add(scheduled.target)
                yield scheduled.target, scheduled.tags
        for target, tags in self._assigned:
            if target not in seen:
                seen.add(target)
                yield target, tags

    async def run_cycle(self, *, drain_deadline_s: float | None = None) -> CycleStats:
        """Scans everything once, queues it, and tries to send what is queued."""
        await self.refresh_assigned()
        targets = list(self._targets())
        self._targets_count = len(targets)
        tags_of = dict(targets)
        config = self.loaded.config
        trust = await asyncio.to_thread(
            load_trust_store,
            ca_files=tuple(self.loaded.resolve(p) for p in config.trust.ca_files),
            use_system=config.trust.system,
            include_default=config.trust.public,
        )
        queued = 0
        batch: list[Any] = []
        async for report in scan_stream(
            (t for t, _ in targets), options=self.scan_options, trust=trust, clock=self.clock
        ):
            batch.append(item_from_report(report, tags=tags_of.get(report.target, ())))
            if len(batch) >= self.batch_size:
                await asyncio.to_thread(self.outbox.add, batch)
                queued += len(batch)
                batch = []
        if batch:
            await asyncio.to_thread(self.outbox.add, batch)
            queued += len(batch)
        sent = await self.drain(deadline_s=drain_deadline_s)
        backlog, _ = await asyncio.to_thread(self.outbox.backlog)
        return CycleStats(
            targets=len(targets),
            assigned=len(self._assigned),
            queued=queued,
            sent=sent,
            backlog=backlog,
        )

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
        """Runs cycles every ``scan.interval`` (with jitter) until ``stop``; or one cycle.

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
                "cycle: %d targets (%d assigned), %d observations queued, %d batches sent, "
                "%d waiting",
                stats.targets,
                stats.assigned,
                stats.queued,
                stats.sent,
                stats.backlog,
            )
            if once or stop.is_set():
                return stats
            wait = config.scan.interval_s + self.rng.uniform(0, config.scan.jitter_s)
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
                return stats
            except TimeoutError:
                continue
