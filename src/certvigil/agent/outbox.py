"""The agent's outbox: report batches kept on disk (SQLite) until the server has them.

Batches are sent oldest first and removed only once the server has answered that it
stored them; each has a report id made when it was queued, so a batch sent twice (the
answer was lost) is stored once by the server. The file is bounded: a new batch that
would take it over ``max_bytes`` first drops the oldest batches, and the agent says so
loudly (a warning naming how many observations were dropped), since that loses data.

The same file keeps the server's last assignment and, per endpoint and check, when the
check last ran (``check_runs``), so that an agent restarted (or run from cron with
``--once``) scans only what is due instead of everything.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("certvigil.agent.outbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id TEXT NOT NULL UNIQUE,
    queued_at TEXT NOT NULL,
    items INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS assigned (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fetched_at TEXT NOT NULL,
    targets BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS check_runs (
    endpoint TEXT NOT NULL,
    check_name TEXT NOT NULL,
    ran_at TEXT NOT NULL,
    PRIMARY KEY (endpoint, check_name)
);
CREATE TABLE IF NOT EXISTS dropped (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    batches INTEGER NOT NULL,
    items INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedBatch:
    """A batch waiting to be sent.

    Attributes:
        seq: Its place in the queue.
        report_id: The id the server stores it under.
        items: The observations (JSON-ready).
    """

    seq: int
    report_id: str
    items: list[Any]


class AgentOutbox:
    """The on-disk queue of one agent.

    Args:
        path: The SQLite file (created with its directory's permissions).
        max_bytes: Most bytes of queued batches kept.
    """

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        self._path = path
        self._max_bytes = max_bytes
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(
                self._path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        return self._db

    def close(self) -> None:
        """Closes the file."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def add(self, items: list[Any]) -> str:
        """Queues a batch under a new report id; returns the id.

        Drops the oldest batches first when the bound would be passed (and warns).
        """
        body = json.dumps(items, separators=(",", ":")).encode()
        report_id = uuid.uuid4().hex
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            used = db.execute("SELECT COALESCE(SUM(size), 0) FROM batches").fetchone()[0]
            dropped_batches = dropped_items = 0
            while used + len(body) > self._max_bytes:
                oldest = db.execute(
                    "SELECT seq, items, size FROM batches ORDER BY seq LIMIT 1"
                ).fetchone()
                if oldest is None:
                    break
                db.execute("DELETE FROM batches WHERE seq = ?", (oldest[0],))
                used -= oldest[2]
                dropped_batches += 1
                dropped_items += oldest[1]
            db.execute(
                "INSERT INTO batches (report_id, queued_at, items, size, body) VALUES (?,?,?,?,?)",
                (report_id, datetime.now(UTC).isoformat(), len(items), len(body), body),
            )
            if dropped_batches:
                db.execute(
                    "INSERT INTO dropped (id, batches, items) VALUES (1, ?, ?) ON CONFLICT(id) "
                    "DO UPDATE SET batches = batches + excluded.batches, "
                    "items = items + excluded.items",
                    (dropped_batches, dropped_items),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if dropped_batches:
            log.warning(
                "outbox %s is full (%d bytes): dropped the %d oldest batches (%d observations) "
                "the server never received; is the server reachable?",
                self._path,
                self._max_bytes,
                dropped_batches,
                dropped_items,
            )
        return report_id

    def oldest(self) -> QueuedBatch | None:
        """The batch to send next."""
        row = (
            self._connection()
            .execute("SELECT seq, report_id, body FROM batches ORDER BY seq LIMIT 1")
            .fetchone()
        )
        if row is None:
            return None
        return QueuedBatch(seq=row[0], report_id=row[1], items=json.loads(row[2]))

    def remove(self, seq: int) -> None:
        """Forgets a batch the server has stored."""
        self._connection().execute("DELETE FROM batches WHERE seq = ?", (seq,))

    def backlog(self) -> tuple[int, int]:
        """``(batches, observations)`` waiting."""
        row = (
            self._connection()
            .execute("SELECT COUNT(*), COALESCE(SUM(items), 0) FROM batches")
            .fetchone()
        )
        return int(row[0]), int(row[1])

    def save_assigned(self, entries: list[Any]) -> None:
        """Keeps the server's latest assignment, for runs that cannot reach it."""
        self._connection().execute(
            "INSERT INTO assigned (id, fetched_at, targets) VALUES (1, ?, ?) ON CONFLICT(id) "
            "DO UPDATE SET fetched_at = excluded.fetched_at, targets = excluded.targets",
            (datetime.now(UTC).isoformat(), json.dumps(entries).encode()),
        )

    def last_assigned(self) -> list[Any] | None:
        """The assignment saved last, ``None`` when the server never answered."""
        row = self._connection().execute("SELECT targets FROM assigned").fetchone()
        if row is None:
            return None
        value = json.loads(row[0])
        return value if isinstance(value, list) else None

    def dropped(self) -> tuple[int, int]:
        """``(batches, observations)`` dropped for space since the file was made."""
        row = self._connection().execute("SELECT batches, items FROM dropped").fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def record_runs(self, runs: list[tuple[str, str]], *, at: datetime) -> None:
        """Notes that each ``(endpoint key, check name)`` ran at ``at`` (aware UTC)."""
        if not runs:
            return
        stamp = at.astimezone(UTC).isoformat()
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO check_runs (endpoint, check_name, ran_at) VALUES (?, ?, ?) "
                "ON CONFLICT(endpoint, check_name) DO UPDATE SET ran_at = excluded.ran_at",
                [(endpoint, check, stamp) for endpoint, check in runs],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def check_runs(self, endpoints: set[str]) -> dict[str, dict[str, datetime]]:
        """When each check last ran on each of ``endpoints``; forgets every other endpoint
        (one the configuration or the assignment no longer names), so the table stays as
        large as the target list."""
        db = self._connection()
        found: dict[str, dict[str, datetime]] = {}
        stale: list[str] = []
        for endpoint, check, ran_at in db.execute(
            "SELECT endpoint, check_name, ran_at FROM check_runs"
        ):
            if endpoint not in endpoints:
                stale.append(endpoint)
                continue
            try:
                when = datetime.fromisoformat(ran_at)
            except ValueError:
                continue
            if when.tzinfo is not None:
                found.setdefault(endpoint, {})[check] = when
        if stale:
            db.executemany("DELETE FROM check_runs WHERE endpoint = ?", [(e,) for e in set(stale)])
        return found
