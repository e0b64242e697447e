"""The central server's tables: API keys, agents, received reports and the alert event log.

They share the inventory's declarative base, so one migration chain and one schema
comparison cover them; ``certvigil.store`` imports this module so that the metadata is
complete wherever the store is used.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from certvigil.store.models import Base, IdType


class ApiKey(Base):
    """An API key: only a hash of the token is kept, looked up by a short public id.

    The token is ``cvk_<lookup>_<secret>``; ``lookup`` (12 characters) finds the row
    and ``key_hash`` (SHA-256 of the whole token, hex) is compared in constant time.
    A 256-bit random token needs no slow hash: nobody can guess it from its SHA-256.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    lookup: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at_utc: Mapped[datetime]
    revoked_at_utc: Mapped[datetime | None]
    last_used_at_utc: Mapped[datetime | None]


class Agent(Base):
    """An agent that reports to this server, keyed by its name."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    api_key_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("api_keys.id", ondelete="SET NULL")
    )
    version: Mapped[str] = mapped_column(String(64))
    tags: Mapped[list[str]] = mapped_column(JSON)
    interval_s: Mapped[int] = mapped_column(Integer)
    targets: Mapped[int] = mapped_column(Integer)
    backlog: Mapped[int] = mapped_column(Integer)
    first_contact_utc: Mapped[datetime]
    last_contact_utc: Mapped[datetime] = mapped_column(index=True)


class ReceivedReport(Base):
    """A report batch already stored, by ``agent name/report id``: a retry is stored once."""

    __tablename__ = "received_reports"

    report_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    agent_name: Mapped[str] = mapped_column(String(100))
    received_at_utc: Mapped[datetime]
    accepted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class AlertEventRow(Base):
    """One thing that happened to an alert, for the live stream; ids only ever grow.

    Events are appended inside the transaction that changed the alert, so the stream
    and the alerts never disagree. On PostgreSQL that transaction first takes an
    advisory lock, so events commit in id order and a reader that has seen id N can
    never later find a smaller one.
    """

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(IdType, index=True)
    event: Mapped[str] = mapped_column(String(32))
    created_at_utc: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(Text)
    delivery_id: Mapped[int | None] = mapped_column(IdType, index=True)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


API_KEYS = _table(ApiKey)
AGENTS = _table(Agent)
RECEIVED_REPORTS = _table(ReceivedReport)
ALERT_EVENTS = _table(AlertEventRow)
