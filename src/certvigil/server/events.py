"""The live alert stream: an append-only event table, polled by one task per process.

Every change to an alert made by the server (opened or resolved by a report, acknowledged
or resolved through the API, a delivery given up) appends a row to ``alert_events`` in
the same transaction, so the stream can never tell of a change that did not commit, nor
miss one that did. Each server process runs one :class:`AlertEventHub` that reads new
rows (at once when this process wrote them, else every ``poll_s``) into a ring in
memory; every WebSocket or SSE client of that process follows the ring, so a thousand
clients cost one query per poll, not a thousand. A client that comes back with
``after=ID`` older than the ring is first served from the table, page by page, then
from the ring, so it sees every event exactly once and in id order.

Why polling rather than PostgreSQL LISTEN/NOTIFY: it works the same on SQLite (where
several workers are not allowed, but the CLI and the server may both write), needs no
dedicated connection per worker, and a NOTIFY sent while a listener reconnects is lost
whereas the table is not; the cost is up to ``poll_s`` of latency for events written by
another worker (see ``bench/server_ws_fanout.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from certvigil.server.shapes import alert_json, event_json
from certvigil.store import Store
from certvigil.store import outbox as box
from certvigil.store import server_queries as sq
from certvigil.store.server_queries import AlertEventRecord

log = logging.getLogger("certvigil.server.events")

EVENT_OPENED = "opened"
EVENT_ACKNOWLEDGED = "acknowledged"
EVENT_RESOLVED = "resolved"
EVENT_DELIVERY_FAILED = "delivery_failed"
EVENT_KINDS = (EVENT_OPENED, EVENT_ACKNOWLEDGED, EVENT_RESOLVED, EVENT_DELIVERY_FAILED)
"""What the stream tells of."""

DEFAULT_POLL_S = 0.5
"""How often a process looks for events other processes wrote."""

RING_SIZE = 10_000
"""Events kept in memory for clients that follow live."""

REPLAY_PAGE = 500
"""Events read from the table at a time when a client catches up."""

TEXT_CACHE_SIZE = 1000
"""Encoded events kept for the clients that follow (cleared whole when full)."""


def record_alert_event(
    connection: Connection,
    alert_id: int,
    event: str,
    *,
    now: datetime,
    detail: str | None = None,
    delivery_id: int | None = None,
) -> int:
    """Appends an event about an alert, with the alert as it now stands, in the caller's
    write transaction; returns the event's id.

    Raises:
        ValueError: ``event`` is not one the stream tells of, or the alert does not exist.
    """
    if event not in EVENT_KINDS:
        raise ValueError(f"unknown alert event {event!r}")
    alert = box.get_alert(connection, alert_id)
    if alert is None:
        raise ValueError(f"alert {alert_id} does not exist")
    return sq.append_alert_event(
        connection,
        alert_id=alert_id,
        event=event,
        now=now,
        payload=alert_json(alert),
        detail=detail,
        delivery_id=delivery_id,
    )


def record_alert_events(
    connection: Connection, events: Sequence[tuple[int, str]], *, now: datetime
) -> list[int]:
    """Appends ``(alert id, event)`` pairs in order, each with its alert as it now
    stands, in the caller's write transaction: one read of the alerts and one insert for
    all of them. Returns the events' ids in the same order.

    Raises:
        ValueError: An event is not one the stream tells of, or an alert does not exist.
    """
    for _, event in events:
        if event not in EVENT_KINDS:
            raise ValueError(f"unknown alert event {event!r}")
    alerts = box.get_alerts(connection, (alert_id for alert_id, _ in events))
    payloads: dict[int, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for alert_id, event in events:
        if alert_id not in alerts:
            raise ValueError(f"alert {alert_id} does not exist")
        if alert_id not in payloads:
            payloads[alert_id] = alert_json(alerts[alert_id])
        rows.append(
            {
                "alert_id": alert_id,
                "event": event,
                "created_at_utc": now,
                "payload": payloads[alert_id],
                "detail": None,
                "delivery_id": None,
            }
        )
    return sq.append_alert_events(connection, rows)


class AlertEventHub:
    """One process's view of the event log, shared by all its stream clients.

    Args:
        store: The inventory.
        poll_s: Seconds between two looks at the table.
        ring_size: Events kept in memory.
    """

    def __init__(
        self, store: Store, *, poll_s: float = DEFAULT_POLL_S, ring_size: int = RING_SIZE
    ) -> None:
        self._store = store
        self._poll_s = poll_s
        self._ring: deque[AlertEventRecord] = deque()
        self._ring_size = ring_size
        self._floor = 0
        self._last = 0
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._texts: dict[int, str] = {}

    def text(self, event: AlertEventRecord) -> str:
        """The event as the JSON text clients receive, encoded once for all of them (a
        thousand clients of one event cost one encoding, not a thousand)."""
        found = self._texts.get(event.id)
        if found is None:
            if len(self._texts) >= TEXT_CACHE_SIZE:
                self._texts.clear()
            found = json.dumps(event_json(event), separators=(",", ":"))
            self._texts[event.id] = found
        return found

    @property
    def last_id(self) -> int:
        """The newest event this process has read."""
        return self._last

    async def start(self) -> None:
        """Reads where the log ends; events from then on go to the ring."""
        last = await asyncio.to_thread(self._read_last)
        self._floor = self._last = last
        self._started = True

    def _read_last(self) -> int:
        with self._store.read() as connection:
            return sq.last_alert_event_id(connection)

    def _read_after(self, after_id: int, limit: int) -> tuple[AlertEventRecord, ...]:
        with self._store.read() as connection:
            return sq.alert_events_after(connection, after_id, limit=limit)

    def wake(self) -> None:
        """Look at the table now (this process has just committed events).

        Safe from any thread: an ``asyncio.Event`` set from outside its loop's thread
        does not wake the loop, and the poller would sleep out its interval.
        """
        loop = self._loop
        if loop is None:
            self._wake.set()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Polls the table until cancelled."""
        self._loop = asyncio.get_running_loop()
        if not self._started:
            await self.start()
        while True:
            try:
                await self.poll_once()
            except Exception as exc:  # noqa: BLE001 - the stream outlives a database hiccup
                log.warning("alert stream: reading events failed: %s", exc)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)
            except TimeoutError:
                pass
            self._wake.clear()

    async def poll_once(self) -> int:
        """Reads new events into the ring and wakes the clients; returns how many."""
        found = 0
        while True:
            batch = await asyncio.to_thread(self._read_after, self._last, REPLAY_PAGE)
            for event in batch:
                self._ring.append(event)
                self._last = event.id
            while len(self._ring) > self._ring_size:
                self._floor = self._ring.popleft().id
            found += len(batch)
            if len(batch) < REPLAY_PAGE:
                break
        if found:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()
        return found

    def _newer_than(self, cursor: int) -> tuple[AlertEventRecord, ...]:
        # From the right: a client following live needs only the last few events.
        newer: list[AlertEventRecord] = []
        for event in reversed(self._ring):
            if event.id <= cursor:
                break
            newer.append(event)
        newer.reverse()
        return tuple(newer)

    async def follow(self, after: int | None) -> AsyncGenerator[AlertEventRecord, None]:
        """Every event with an id above ``after`` (only new ones for ``None``), in order,
        then live ones as they come; ends only when the caller stops iterating."""
        cursor = self._last if after is None else max(after, 0)
        while True:
            changed = self._changed
            if cursor < self._floor:
                batch: tuple[AlertEventRecord, ...] = await asyncio.to_thread(
                    self._read_after, cursor, REPLAY_PAGE
                )
            else:
                batch = self._newer_than(cursor)
            if not batch:
                await changed.wait()
                continue
            for event in batch:
                yield event
                cursor = event.id
