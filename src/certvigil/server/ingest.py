"""Report batches from agents: validated item by item, judged, recorded with their alerts.

A batch is stored in one transaction together with its report id, so a retried batch
(the agent did not see the answer) finds its id and is stored once. Each item is
judged before the transaction opens (judging is the slow part and needs no database);
a bad item is rejected with its index and reason while the others are kept. The alert
engine runs on the recorded reports inside the same transaction, and every alert it
opens or resolves is appended to the event log there too.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection

from certvigil.alerts.engine import EVENT_NOTICE as ENGINE_NOTICE
from certvigil.alerts.engine import EVENT_RESOLVED as ENGINE_RESOLVED
from certvigil.alerts.engine import AlertEngine
from certvigil.analysis.model import EndpointReport
from certvigil.analysis.trust import TrustStore
from certvigil.server.events import EVENT_OPENED, EVENT_RESOLVED, record_alert_events
from certvigil.server.wire import ItemError, judge_item, tags_from_item
from certvigil.store import Store
from certvigil.store import server_queries as sq
from certvigil.store.alert_queries import BatchEndpoint, record_for_judging
from certvigil.store.ingest import prepare_reports
from certvigil.targets.target import Target

MAX_ITEMS = 1000
"""Most observations in one batch."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


class IngestThread:
    """The one thread of a server process that sends report batches to the ingest
    process (``server/ingest_process.py``), in the order they arrive.

    Batches are written one at a time anyway (one writer on SQLite; and judging is
    Python, which holds the interpreter lock). Judged and stored on the shared
    worker-thread pool, as they once were,
    concurrent batches took turns on the lock every few milliseconds from different
    threads, each finding the processor's caches cold. Measured with
    ``bench/server_api.py`` at 1,000,000 observations and 4 clients, five runs each
    way alternating with the pool: the server's CPU 191-241 -> 174-194 µs per
    observation, the storing alone 131-162 -> 111-121.

    Not on the event loop's own thread, although that is cheaper than on this thread:
    the thread and the loop, which receives the next bodies meanwhile, took turns on the
    interpreter lock (the reason the work now runs in a process of its own).
    Judged and stored on the loop's thread (in 5 ms turns, one batch at a time), a next
    cycle cost 157-161 µs of server CPU per observation against 187-232 on the thread
    (same bench, alternating), but a reader's ``GET`` during the ingest waited p50
    23-30 ms, p99 154-276 ms, against 1-2 and 14-21 ms: the loop was the batches'.
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    async def run(self, call: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """``call(*args, **kwargs)`` on the ingest thread, after the batches before it."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="certvigil-ingest"
                )
            executor = self._executor
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            executor, functools.partial(context.run, call, *args, **kwargs)
        )

    def close(self) -> None:
        """Waits for the batches taken and stops the thread (a later batch starts a new
        one)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentInfo:
    """What an agent says about itself with each batch.

    Attributes:
        name: Its name.
        version: The certvigil version it runs.
        tags: Its tags (targets assigned by tag reach it).
        interval_s: Its scan interval.
        targets: How many endpoints it scans.
        backlog: Reports still in its outbox.
    """

    name: str
    version: str
    tags: tuple[str, ...] = ()
    interval_s: int = 3600
    targets: int = 0
    backlog: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchOutcome:
    """What happened to a batch.

    Attributes:
        report_id: The agent's id for it.
        accepted: Items stored.
        rejected: ``{"index", "reason"}`` for each item refused.
        duplicate: The id was already stored: nothing was stored again.
        alert_events: Stream events the batch caused.
    """

    report_id: str
    accepted: int
    rejected: tuple[dict[str, Any], ...] = ()
    duplicate: bool = False
    alert_events: tuple[int, ...] = field(default=())


def judge_items(
    items: Sequence[Any], *, now: datetime, trust: TrustStore
) -> tuple[list[tuple[EndpointReport, tuple[str, ...] | None]], list[dict[str, Any]]]:
    """Judges each item; returns the reports (with their tags) and the rejections."""
    judged: list[tuple[EndpointReport, tuple[str, ...] | None]] = []
    rejected: list[dict[str, Any]] = []
    seen: set[Target] = set()
    for index, item in enumerate(items):
        try:
            report = judge_item(item, now=now, trust=trust)
            tags = tags_from_item(item)
        except ItemError as exc:
            rejected.append({"index": index, "reason": str(exc)})
            continue
        if report.target in seen:
            rejected.append({"index": index, "reason": "target: reported twice in one batch"})
            continue
        seen.add(report.target)
        judged.append((report, tags))
    return judged, rejected


def store_batch(
    store: Store,
    engine: AlertEngine,
    *,
    report_id: str,
    agent: AgentInfo,
    api_key_id: int | None,
    judged: Sequence[tuple[EndpointReport, tuple[str, ...] | None]],
    rejected: Sequence[dict[str, Any]],
    now: datetime,
) -> BatchOutcome:
    """Stores a judged batch, its alerts and its events in one transaction (once per id)."""
    reports = [report for report, _ in judged]
    # Encoded before the write lock is taken, while another request's transaction runs.
    prepared = prepare_reports(reports)
    with store.write() as connection:

        def contact() -> None:
            sq.record_agent_contact(
                connection,
                name=agent.name,
                api_key_id=api_key_id,
                version=agent.version,
                tags=agent.tags,
                interval_s=agent.interval_s,
                targets=agent.targets,
                backlog=agent.backlog,
                now=now,
            )

        earlier = sq.received_report(connection, report_id)
        if earlier is not None:
            contact()
            return BatchOutcome(
                report_id=report_id,
                accepted=earlier[0],
                rejected=tuple(earlier[1]),
                duplicate=True,
            )
        tags = {report.target: t for report, t in judged if t is not None}
        observation_ids, endpoints = record_for_judging(connection, prepared, tags=tags)
        events = _judge_alerts(connection, engine, reports, observation_ids, endpoints, now)
        sq.record_received_report(
            connection,
            report_id=report_id,
            agent_name=agent.name,
            accepted=len(reports),
            rejected=rejected,
            now=now,
        )
        contact()
    return BatchOutcome(
        report_id=report_id,
        accepted=len(reports),
        rejected=tuple(rejected),
        alert_events=tuple(events),
    )


def store_reports(
    store: Store, engine: AlertEngine, reports: Sequence[EndpointReport], *, now: datetime
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Records reports the server made itself (a scan on request) with their alerts.

    Returns:
        The observation ids and the stream event ids.
    """
    with store.write() as connection:
        observation_ids, endpoints = record_for_judging(connection, reports)
        events = _judge_alerts(connection, engine, reports, observation_ids, endpoints, now)
    return tuple(observation_ids), tuple(events)


def _judge_alerts(
    connection: Connection,
    engine: AlertEngine,
    reports: Sequence[EndpointReport],
    observation_ids: Sequence[int],
    endpoints: Mapping[tuple[str, int, str, str], BatchEndpoint],
    now: datetime,
) -> list[int]:
    """Runs the alert rules on recorded reports and logs what they changed, in order.

    After each report: the alerts it resolved (those older than the batch), then those
    it made, in id order. A notice is made already resolved: it is told of as opened,
    then resolved, so a client counting open alerts stays right. The engine says which
    alert rows each report changed (``AlertEngine.judge_many_in``), so nothing is read
    back per report.
    """
    made: set[int] = set()
    told: list[tuple[int, str]] = []
    for judged in engine.judge_many_in(
        connection, reports, observation_ids, now, endpoints=endpoints
    ):
        # Resolutions are told of alerts older than the batch only (a notice is told
        # of as opened and resolved when made).
        resolved = sorted(
            c.alert_id
            for c in judged.changes
            if c.event == ENGINE_RESOLVED and c.alert_id not in made
        )
        told += [(alert_id, EVENT_RESOLVED) for alert_id in resolved]
        for change in sorted(
            (c for c in judged.changes if c.event != ENGINE_RESOLVED), key=lambda c: c.alert_id
        ):
            made.add(change.alert_id)
            told.append((change.alert_id, EVENT_OPENED))
            if change.event == ENGINE_NOTICE:
                told.append((change.alert_id, EVENT_RESOLVED))
    # Every report is judged before any event is written, so each event carries its
    # alert as the batch leaves it; one read and one insert for all of them.
    return record_alert_events(connection, told, now=now)
