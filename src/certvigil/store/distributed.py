"""Queries of the distributed scan: shard state, recorded items, worker heartbeats.

Every function runs in the caller's transaction (``Store.write()`` / ``Store.read()``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Connection, Integer, bindparam, false, func, null, select, update
from sqlalchemy.dialects import postgresql

from certvigil.store.distributed_models import SCAN_SHARD_ITEMS, SCAN_SHARDS, SCAN_WORKERS
from certvigil.store.ingest import dialect_insert


class ShardState:
    """The states of a shard."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    FINAL = frozenset({DONE, FAILED, CANCELLED})


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """What a worker starting a shard needs to know about earlier attempts."""

    number: int
    """This attempt's number (1 for the first delivery)."""
    interrupted_index: int | None
    """The item an earlier careful attempt was scanning when its worker died."""
    suspect_index: int | None
    suspect_crashes: int
    done: frozenset[int]
    """Items already recorded."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardProgress:
    """One shard as the scheduler sees it."""

    id: str
    state: str
    recorded: int
    failed: int
    alert_events: int
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRow:
    """One worker's heartbeat and throughput."""

    name: str
    hostname: str
    pid: int
    version: str
    started_at_utc: datetime
    heartbeat_at_utc: datetime
    current_shard: str | None
    shards_done: int
    endpoints_done: int
    endpoints_per_s: float
    cpu_s: float
    store_waits: int = 0
    """Times the worker waited for a store that refused a write."""
    store_waited_s: float = 0.0
    """Seconds spent in those waits."""


def add_shards(
    connection: Connection, rows: Iterable[tuple[str, str, int]], *, now: datetime
) -> None:
    """Record new shards as queued: ``(shard id, round id, number of targets)``."""
    values = [
        {
            "id": shard_id,
            "round_id": round_id,
            "state": ShardState.QUEUED,
            "targets": targets,
            "recorded": 0,
            "failed": 0,
            "alert_events": 0,
            "attempts": 0,
            "created_at_utc": now,
            "suspect_crashes": 0,
        }
        for shard_id, round_id, targets in rows
    ]
    if values:
        connection.execute(SCAN_SHARDS.insert(), values)


def begin_attempt(
    connection: Connection, shard_id: str, *, worker: str, now: datetime
) -> Attempt | None:
    """Count a delivery of ``shard_id`` and read what earlier attempts left.

    Returns:
        ``None`` when the shard is unknown or already final (a late duplicate).
    """
    row = connection.execute(
        select(
            SCAN_SHARDS.c.state,
            SCAN_SHARDS.c.attempts,
            SCAN_SHARDS.c.current_index,
            SCAN_SHARDS.c.suspect_index,
            SCAN_SHARDS.c.suspect_crashes,
        )
        .where(SCAN_SHARDS.c.id == shard_id)
        .with_for_update()
    ).one_or_none()
    if row is None or row.state in ShardState.FINAL:
        return None
    number = row.attempts + 1
    connection.execute(
        update(SCAN_SHARDS)
        .where(SCAN_SHARDS.c.id == shard_id)
        .values(
            state=ShardState.RUNNING,
            attempts=number,
            worker=worker,
            started_at_utc=now,
            current_index=None,
        )
    )
    done = connection.execute(
        select(SCAN_SHARD_ITEMS.c.item_index).where(SCAN_SHARD_ITEMS.c.shard_id == shard_id)
    ).scalars()
    return Attempt(
        number=number,
        interrupted_index=row.current_index,
        suspect_index=row.suspect_index,
        suspect_crashes=row.suspect_crashes,
        done=frozenset(done),
    )


def set_suspect(connection: Connection, shard_id: str, *, index: int, crashes: int) -> None:
    """Remember the item that was in flight when a worker died, and how often."""
    connection.execute(
        update(SCAN_SHARDS)
        .where(SCAN_SHARDS.c.id == shard_id)
        .values(suspect_index=index, suspect_crashes=crashes)
    )


def set_current(connection: Connection, shard_id: str, index: int | None) -> None:
    """Name the item a careful attempt is about to scan (``None`` when between items)."""
    connection.execute(
        update(SCAN_SHARDS).where(SCAN_SHARDS.c.id == shard_id).values(current_index=index)
    )


def claim_items(connection: Connection, shard_id: str, indexes: Sequence[int]) -> set[int]:
    """Mark items recorded, in one statement; returns those no other attempt claimed first.

    An item another delivery of the shard already recorded (or is recording: the insert
    waits for that transaction) is left out, so the caller records only the rest.
    """
    if not indexes:
        return set()
    if connection.dialect.name == "postgresql":
        # One statement whatever the batch's size: the indexes bound as one array.
        rows = connection.execute(
            _CLAIM_ON_POSTGRESQL, {"b_shard": shard_id, "b_indexes": list(indexes)}
        )
        return set(rows.scalars())
    statement = (
        dialect_insert(connection, SCAN_SHARD_ITEMS)
        .values(
            [
                {"shard_id": shard_id, "item_index": i, "observation_id": None, "poisoned": False}
                for i in indexes
            ]
        )
        .on_conflict_do_nothing(index_elements=["shard_id", "item_index"])
        .returning(SCAN_SHARD_ITEMS.c.item_index)
    )
    return set(connection.execute(statement).scalars())


_CLAIM_ON_POSTGRESQL = (
    postgresql.insert(SCAN_SHARD_ITEMS)
    .from_select(
        ["shard_id", "item_index", "observation_id", "poisoned"],
        select(
            bindparam("b_shard", type_=SCAN_SHARD_ITEMS.c.shard_id.type),
            func.unnest(bindparam("b_indexes", type_=postgresql.ARRAY(Integer))),
            null(),
            false(),
        ),
    )
    .on_conflict_do_nothing(index_elements=["shard_id", "item_index"])
    .returning(SCAN_SHARD_ITEMS.c.item_index)
)


def link_observations(
    connection: Connection, shard_id: str, pairs: Sequence[tuple[int, int]], *, poisoned: bool
) -> None:
    """Attach each claimed item's observation id (``(item index, observation id)``).

    One statement for the batch: on PostgreSQL the pairs bound as two arrays (an
    executemany cost the worker about 30 µs of CPU per endpoint there, a sixth of what
    recording a batch costs it), elsewhere an executemany.
    """
    if not pairs:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(
            _LINK_ON_POSTGRESQL,
            {
                "b_shard": shard_id,
                "b_poisoned": poisoned,
                "b_indexes": [index for index, _ in pairs],
                "b_observations": [observation for _, observation in pairs],
            },
        )
        return
    connection.execute(
        update(SCAN_SHARD_ITEMS)
        .where(
            SCAN_SHARD_ITEMS.c.shard_id == shard_id,
            SCAN_SHARD_ITEMS.c.item_index == bindparam("index"),
        )
        .values(observation_id=bindparam("observation"), poisoned=poisoned),
        [{"index": index, "observation": observation} for index, observation in pairs],
    )


_LINKED = (
    func.unnest(
        bindparam("b_indexes", type_=postgresql.ARRAY(Integer)),
        bindparam("b_observations", type_=postgresql.ARRAY(BigInteger)),
    )
    .table_valued("item_index", "observation_id")
    .render_derived()
)

_LINK_ON_POSTGRESQL = (
    update(SCAN_SHARD_ITEMS)
    .where(
        SCAN_SHARD_ITEMS.c.shard_id == bindparam("b_shard"),
        SCAN_SHARD_ITEMS.c.item_index == _LINKED.c.item_index,
    )
    .values(observation_id=_LINKED.c.observation_id, poisoned=bindparam("b_poisoned"))
)


def add_counts(
    connection: Connection, shard_id: str, *, recorded: int, failed: int, alert_events: int
) -> None:
    """Add to a shard's counts, in the same transaction as the records they count."""
    connection.execute(
        update(SCAN_SHARDS)
        .where(SCAN_SHARDS.c.id == shard_id)
        .values(
            recorded=SCAN_SHARDS.c.recorded + recorded,
            failed=SCAN_SHARDS.c.failed + failed,
            alert_events=SCAN_SHARDS.c.alert_events + alert_events,
        )
    )


def finish_shard(
    connection: Connection, shard_id: str, *, state: str, now: datetime, error: str | None = None
) -> None:
    """Close a shard (done, failed or cancelled)."""
    connection.execute(
        update(SCAN_SHARDS)
        .where(SCAN_SHARDS.c.id == shard_id)
        .values(state=state, finished_at_utc=now, current_index=None, error=error)
    )


def cancel_queued(connection: Connection, shard_ids: Sequence[str], *, now: datetime) -> None:
    """Mark shards that were never sent as cancelled (the scheduler stopped)."""
    if shard_ids:
        connection.execute(
            update(SCAN_SHARDS)
            .where(SCAN_SHARDS.c.id.in_(shard_ids), SCAN_SHARDS.c.state == ShardState.QUEUED)
            .values(state=ShardState.CANCELLED, finished_at_utc=now)
        )


def round_progress(connection: Connection, round_id: str) -> list[ShardProgress]:
    """Every shard of one round."""
    rows = connection.execute(
        select(
            SCAN_SHARDS.c.id,
            SCAN_SHARDS.c.state,
            SCAN_SHARDS.c.recorded,
            SCAN_SHARDS.c.failed,
            SCAN_SHARDS.c.alert_events,
            SCAN_SHARDS.c.attempts,
        ).where(SCAN_SHARDS.c.round_id == round_id)
    )
    return [
        ShardProgress(
            id=r.id,
            state=r.state,
            recorded=r.recorded,
            failed=r.failed,
            alert_events=r.alert_events,
            attempts=r.attempts,
        )
        for r in rows
    ]


def shard_observation_count(connection: Connection, round_id: str) -> int:
    """Items recorded over one round (each exactly once)."""
    return int(
        connection.execute(
            select(func.count())
            .select_from(SCAN_SHARD_ITEMS.join(SCAN_SHARDS))
            .where(SCAN_SHARDS.c.round_id == round_id)
        ).scalar_one()
    )


def beat(connection: Connection, row: WorkerRow) -> None:
    """Insert or refresh one worker's row."""
    values = {
        "name": row.name,
        "hostname": row.hostname,
        "pid": row.pid,
        "version": row.version,
        "started_at_utc": row.started_at_utc,
        "heartbeat_at_utc": row.heartbeat_at_utc,
        "current_shard": row.current_shard,
        "shards_done": row.shards_done,
        "endpoints_done": row.endpoints_done,
        "endpoints_per_s": row.endpoints_per_s,
        "cpu_s": row.cpu_s,
        "store_waits": row.store_waits,
        "store_waited_s": row.store_waited_s,
    }
    statement = dialect_insert(connection, SCAN_WORKERS).values(values)
    changed = {k: v for k, v in values.items() if k != "name"}
    connection.execute(statement.on_conflict_do_update(index_elements=["name"], set_=changed))


def workers(connection: Connection) -> list[WorkerRow]:
    """Every worker that ever reported, most recent heartbeat first."""
    rows = connection.execute(select(SCAN_WORKERS).order_by(SCAN_WORKERS.c.heartbeat_at_utc.desc()))
    return [WorkerRow(**row._mapping) for row in rows]
