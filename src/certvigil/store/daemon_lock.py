"""The daemon lock: one running daemon per database, as a row with an owner and a lease.

A daemon takes the lock at start-up and renews its lease while it runs (the
heartbeat). A second daemon finds a live holder and is refused with a message naming
it. A holder that died leaves a lease that lapses, after which the next daemon takes the
row over; on the same host a holder whose process is gone is taken over at once.

The lock is a row rather than a database lock (SQLite has none that outlives a
transaction; PostgreSQL's advisory locks die with the session and are invisible to
another tool), so it works the same on both and can be shown to a user. Acquiring runs
in one write transaction (``BEGIN IMMEDIATE`` on SQLite, ``SELECT … FOR UPDATE`` on
PostgreSQL), so two daemons starting together cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update

from certvigil.errors import StoreError
from certvigil.store.ingest import dialect_insert
from certvigil.store.models import DAEMON_LOCKS
from certvigil.store.outbox import WorkerId

DAEMON_LOCK_NAME = "daemon"
"""The lock row every ``certvigil run`` on a database contends for."""

DEFAULT_LOCK_LEASE_S = 60.0
"""How long a holder's lock lasts without a heartbeat (it renews every third of this)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LockHolder:
    """Who holds (or held) the lock.

    Attributes:
        owner: The holder's worker id (``host:pid:nonce``).
        acquired_at_utc: When it took the lock.
        heartbeat_at_utc: Its last renewal.
        lease_until_utc: When the lock lapses without a further renewal.
    """

    owner: str
    acquired_at_utc: datetime
    heartbeat_at_utc: datetime
    lease_until_utc: datetime

    def describe(self) -> str:
        """``process 123 on host h (running since …, last heartbeat …)``."""
        worker = WorkerId.parse(self.owner)
        host = worker.host.partition("/")[0] if worker else ""
        who = f"process {worker.pid} on host {host}" if worker else self.owner
        return (
            f"{who} (running since {self.acquired_at_utc:%Y-%m-%d %H:%M:%S} UTC, "
            f"last heartbeat {self.heartbeat_at_utc:%Y-%m-%d %H:%M:%S} UTC)"
        )


class DaemonLockedError(StoreError):
    """Another daemon holds the database's lock.

    Attributes:
        holder: The daemon holding it.
    """

    def __init__(self, database: str, holder: LockHolder) -> None:
        super().__init__(
            f"database {database} is in use by another certvigil daemon: {holder.describe()}; "
            "stop it first, or point this one at another database. If that daemon is "
            f"dead, its lock lapses at {holder.lease_until_utc:%Y-%m-%d %H:%M:%S} UTC "
            "and a new daemon takes it over then"
        )
        self.holder = holder


def _holder(row: Any) -> LockHolder:
    return LockHolder(
        owner=row.owner,
        acquired_at_utc=row.acquired_at_utc,
        heartbeat_at_utc=row.heartbeat_at_utc,
        lease_until_utc=row.lease_until_utc,
    )


def daemon_lock_holder(
    connection: Connection, *, name: str = DAEMON_LOCK_NAME
) -> LockHolder | None:
    """The lock's current row, ``None`` when no daemon ever held it or the last let go."""
    row = connection.execute(select(DAEMON_LOCKS).where(DAEMON_LOCKS.c.name == name)).first()
    return _holder(row) if row is not None else None


def acquire_daemon_lock(
    connection: Connection,
    *,
    owner: WorkerId,
    now: datetime,
    database: str,
    lease_s: float = DEFAULT_LOCK_LEASE_S,
    name: str = DAEMON_LOCK_NAME,
) -> LockHolder | None:
    """Takes the lock for ``owner``, or raises when a live daemon holds it.

    Args:
        connection: A connection inside a write transaction.
        owner: The daemon taking it.
        now: The current time.
        database: The database, for the message.
        lease_s: How long the lock lasts without a renewal.
        name: The lock row.

    Returns:
        The previous holder when a lapsed or dead one was taken over, else ``None``.

    Raises:
        DaemonLockedError: Another daemon holds a lease that has not lapsed, and is not
            known to be dead.
    """
    lease_until = now + timedelta(seconds=lease_s)
    statement = select(DAEMON_LOCKS).where(DAEMON_LOCKS.c.name == name)
    if connection.dialect.name == "postgresql":
        statement = statement.with_for_update()
    row = connection.execute(statement).first()
    if row is None:
        inserted = connection.execute(
            dialect_insert(connection, DAEMON_LOCKS)
            .values(
                name=name,
                owner=str(owner),
                acquired_at_utc=now,
                heartbeat_at_utc=now,
                lease_until_utc=lease_until,
            )
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(DAEMON_LOCKS.c.name)
        ).scalar_one_or_none()
        if inserted is None:
            # Another daemon inserted it between our read and our insert.
            holder = daemon_lock_holder(connection, name=name)
            if holder is not None:
                raise DaemonLockedError(database, holder)
        return None
    holder = _holder(row)
    previous: LockHolder | None = None
    if holder.owner != str(owner):
        worker = WorkerId.parse(holder.owner)
        gone = worker is not None and worker.is_gone()
        if holder.lease_until_utc > now and not gone:
            raise DaemonLockedError(database, holder)
        previous = holder
    connection.execute(
        update(DAEMON_LOCKS)
        .where(DAEMON_LOCKS.c.name == name)
        .values(
            owner=str(owner),
            acquired_at_utc=now if previous is not None else holder.acquired_at_utc,
            heartbeat_at_utc=now,
            lease_until_utc=lease_until,
        )
    )
    return previous


def renew_daemon_lock(
    connection: Connection,
    *,
    owner: WorkerId,
    now: datetime,
    lease_s: float = DEFAULT_LOCK_LEASE_S,
    name: str = DAEMON_LOCK_NAME,
) -> bool:
    """Extends ``owner``'s lease (the heartbeat).

    Returns:
        Whether ``owner`` still held the lock (``False``: another daemon took it over
        after this one's lease lapsed).
    """
    result = connection.execute(
        update(DAEMON_LOCKS)
        .where(and_(DAEMON_LOCKS.c.name == name, DAEMON_LOCKS.c.owner == str(owner)))
        .values(heartbeat_at_utc=now, lease_until_utc=now + timedelta(seconds=lease_s))
    )
    return result.rowcount == 1


def release_daemon_lock(
    connection: Connection, *, owner: WorkerId, name: str = DAEMON_LOCK_NAME
) -> bool:
    """Lets the lock go, if ``owner`` holds it.

    Returns:
        Whether it was held by ``owner``.
    """
    result = connection.execute(
        delete(DAEMON_LOCKS).where(
            and_(DAEMON_LOCKS.c.name == name, DAEMON_LOCKS.c.owner == str(owner))
        )
    )
    return result.rowcount == 1
