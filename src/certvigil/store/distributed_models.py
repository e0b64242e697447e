"""The distributed scan's bookkeeping: shards, the endpoints each one recorded, workers.

A shard is a batch of targets the scheduler hands to one Celery task. Its items are
written in the same transaction as each endpoint's observation, so a shard that is
delivered again after its worker died skips what was already recorded: nothing is lost
and nothing is stored twice (docs/scaling.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from certvigil.store.models import Base, IdType


class ScanShard(Base):
    """One task: a batch of targets, its state, attempts and the worker that ran it last."""

    __tablename__ = "scan_shards"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    round_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16))
    targets: Mapped[int] = mapped_column(Integer)
    recorded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    alert_events: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255))
    created_at_utc: Mapped[datetime]
    started_at_utc: Mapped[datetime | None]
    finished_at_utc: Mapped[datetime | None]
    current_index: Mapped[int | None] = mapped_column(Integer)
    suspect_index: Mapped[int | None] = mapped_column(Integer)
    suspect_crashes: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class ScanShardItem(Base):
    """One target of a shard that is done: the observation it became, or set aside."""

    __tablename__ = "scan_shard_items"

    shard_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("scan_shards.id", ondelete="CASCADE"), primary_key=True
    )
    item_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    observation_id: Mapped[int | None] = mapped_column(IdType)
    poisoned: Mapped[bool] = mapped_column(Boolean, default=False)


class ScanWorker(Base):
    """A worker process: identity, heartbeat, progress and throughput."""

    __tablename__ = "scan_workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(32))
    started_at_utc: Mapped[datetime]
    heartbeat_at_utc: Mapped[datetime]
    current_shard: Mapped[str | None] = mapped_column(String(64))
    shards_done: Mapped[int] = mapped_column(Integer, default=0)
    endpoints_done: Mapped[int] = mapped_column(Integer, default=0)
    endpoints_per_s: Mapped[float] = mapped_column(Float, default=0.0)
    cpu_s: Mapped[float] = mapped_column(Float, default=0.0)
    store_waits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Times the worker found the store refusing and waited for it (revision 0016)."""
    store_waited_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    """Seconds spent in those waits."""


def _table(model: type[Base]) -> Table:
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


SCAN_SHARDS = _table(ScanShard)
SCAN_SHARD_ITEMS = _table(ScanShardItem)
SCAN_WORKERS = _table(ScanWorker)
