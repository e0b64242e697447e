"""When the store cannot be written (a full disk, a read-only file): keep results, tell, recover.

The daemon does not stop on a failed write. The reports of that write, and every later
one until the store takes writes again, wait in a :class:`WriteBuffer` in memory, oldest
first, up to ``UNWRITTEN_REPORTS_MAX`` reports (beyond that the oldest are dropped and
counted); a back-off loop in the daemon tries the oldest again (1 s, doubling to 60 s).
Meanwhile the daemon keeps scanning on schedule.

A :class:`StoreAlarm` tells every route that the store is not writable, directly through
the channels: the outbox lives in the store that cannot be written. When the kept
reports are all written, the alarm sends the resolution the same way, and the outage
is recorded as a resolved alert so that ``alerts list --state all`` shows it.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from certvigil.alerts.channels import Channel, OutgoingMessage
from certvigil.alerts.delivery import send_direct
from certvigil.alerts.routing import AlertRoute
from certvigil.alerts.rules import EventAction
from certvigil.analysis.model import EndpointReport, Severity
from certvigil.daemon.logs import LOGGER_NAME
from certvigil.store import Store

log = logging.getLogger(f"{LOGGER_NAME}.daemon")

UNWRITTEN_REPORTS_MAX = 5_000
"""Most reports kept in memory while the store cannot be written (about 8 KiB each was
measured for a two-certificate chain, so some 40 MB)."""

STORE_ALERT_KIND = "store_not_writable"
"""The kind of the alert about the store itself."""


@dataclass(slots=True)
class PendingWrite:
    """Reports that one write would have committed, with what that write needed."""

    reports: list[EndpointReport]
    tags: list[tuple[str, ...]]
    now: datetime


@dataclass(slots=True)
class WriteBuffer:
    """Writes the store refused, oldest first, bounded in reports.

    Attributes:
        max_reports: The bound; adding beyond it drops the oldest writes.
        dropped: Reports dropped to keep the bound since the buffer was made.
    """

    max_reports: int = UNWRITTEN_REPORTS_MAX
    dropped: int = 0
    _writes: deque[PendingWrite] = field(default_factory=deque)
    _count: int = 0

    def __len__(self) -> int:
        return self._count

    def add(self, write: PendingWrite) -> int:
        """Keeps ``write``; returns how many older reports were dropped for it."""
        self._writes.append(write)
        self._count += len(write.reports)
        dropped = 0
        while self._count > self.max_reports and len(self._writes) > 1:
            oldest = self._writes.popleft()
            self._count -= len(oldest.reports)
            dropped += len(oldest.reports)
        self.dropped += dropped
        return dropped

    def oldest(self) -> PendingWrite | None:
        """The write to try next, ``None`` when none waits."""
        return self._writes[0] if self._writes else None

    def written(self) -> None:
        """The oldest write went in: forget it."""
        write = self._writes.popleft()
        self._count -= len(write.reports)


class StoreAlarm:
    """The critical "store not writable" alert, sent straight through the channels.

    Args:
        routes: Every configured route (all get it: it is about certvigil itself).
        channels: Channel per route key.
        database: The database, password hidden, for the message.
    """

    def __init__(
        self, routes: Sequence[AlertRoute], channels: Mapping[str, Channel], *, database: str
    ) -> None:
        self.routes = tuple(routes)
        self.channels = channels
        self.database = database
        self.opened_at: datetime | None = None
        self.error = ""
        self._key = ""
        self._told: set[str] = set()

    def carry_from(self, other: StoreAlarm) -> None:
        """Goes on with ``other``'s outage (same key, same routes already told)."""
        self.opened_at = other.opened_at
        self.error = other.error
        self._key = other._key
        self._told = set(other._told)

    @property
    def is_open(self) -> bool:
        """Whether an outage is going on."""
        return self.opened_at is not None

    def open(self, error: str, now: datetime) -> bool:
        """Starts an outage (once); returns whether this call started it."""
        self.error = error
        if self.opened_at is not None:
            return False
        self.opened_at = now
        self._key = f"certvigil-store-{uuid.uuid4()}"
        self._told = set()
        return True

    def _message(self, action: EventAction, now: datetime, text: str) -> OutgoingMessage:
        opened = self.opened_at or now
        title = f"Store not writable: {self.database}"
        return OutgoingMessage(
            delivery_id=0,
            idempotency_key=f"{self._key}-{action.value}",
            alert_id=0,
            event=action,
            kind=STORE_ALERT_KIND,
            severity=Severity.CRITICAL,
            state="resolved" if action is EventAction.RESOLVE else "open",
            dedup_key=f"{STORE_ALERT_KIND}|{self.database}",
            endpoint=None,
            certificate_sha256=None,
            title=f"Resolved: {title}" if action is EventAction.RESOLVE else title,
            message=text,
            opened_at_utc=opened,
            occurred_at_utc=now,
        )

    async def tell(self, now: datetime, *, kept: int, bound: int) -> None:
        """Sends the alert to every route not yet told (again on each call until each took it)."""
        pending = [r for r in self.routes if r.key not in self._told]
        if not pending or self.opened_at is None:
            return
        text = (
            f"certvigil cannot write to its database {self.database}: {self.error}. "
            f"It keeps scanning; {kept} results wait in memory (at most {bound}) and are "
            "written, with the alerts they raise, once the database takes writes again."
        )
        await self._send(pending, self._message(EventAction.OPEN, now, text))

    async def close(self, now: datetime, *, written: int, dropped: int) -> None:
        """Ends the outage and sends the resolution to the routes that got the alert."""
        told = [r for r in self.routes if r.key in self._told]
        lost = f"; {dropped} results were dropped to stay within memory" if dropped else ""
        text = (
            f"The database {self.database} takes writes again: "
            f"{written} kept results written{lost}."
        )
        self.opened_at = None
        if told:
            self._told = set()
            await self._send(told, self._message(EventAction.RESOLVE, now, text))

    async def _send(self, routes: Sequence[AlertRoute], message: OutgoingMessage) -> None:
        for result in await send_direct(routes, message, channels=self.channels):
            if result.ok:
                self._told.add(result.key)
                log.info(
                    "store alert sent",
                    extra={
                        "route": result.route,
                        "channel": result.channel,
                        "event": message.event.value,
                    },
                )
            else:
                log.warning(
                    "store alert not sent",
                    extra={"route": result.route, "channel": result.channel, "error": result.error},
                )


def record_outage(
    store: Store, *, database: str, opened_at: datetime, now: datetime, error: str, written: int
) -> None:
    """Records a past outage as a resolved alert (its messages were sent directly).

    Raises:
        StoreError: The store refused the write.
    """
    from certvigil.store import outbox

    with store.write() as connection:
        alert, _created = outbox.open_alert_if_absent(
            connection,
            dedup_key=f"{STORE_ALERT_KIND}|{opened_at.isoformat()}",
            kind=STORE_ALERT_KIND,
            severity=Severity.CRITICAL,
            summary=f"Store not writable: {database}",
            now=opened_at,
            details={
                "message": f"certvigil could not write to {database}: {error}",
                "resolution": f"Writable again; {written} kept results written.",
            },
        )
        outbox.resolve_alert(connection, alert.id, now=now)
