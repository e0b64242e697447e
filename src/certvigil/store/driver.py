"""Statements run through the database driver itself, for the hottest writes.

SQLAlchemy builds a dictionary and runs every type's conversion for each row of an
executemany, and on PostgreSQL it renders a batch of INSERTs as one statement with a
placeholder per value, which psycopg then parses again for every batch (a quarter of
a millisecond per report). The store's batch writes are compiled once with
positional placeholders and run through the driver's own executemany (psycopg
pipelines it), with rows built as tuples, already converted: times by
``sqlite_utc_text`` on SQLite and as aware datetimes on PostgreSQL, JSON columns as
text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, CursorResult, Dialect
from sqlalchemy.dialects import postgresql

from certvigil.store.models import sqlite_utc_text

__all__ = [
    "DriverStatement",
    "aware_time",
    "json_text",
    "positional_dialect",
    "statements_for",
    "time_binder",
]


class DriverStatement:
    """A statement compiled once to the driver's SQL, run with plain parameter tuples
    in the order of the compiled parameters (``parameters``)."""

    __slots__ = ("sql",)

    def __init__(self, statement: Any, dialect: Dialect, parameters: Sequence[str]) -> None:
        # An INSERT's parameters are the columns it is given; an UPDATE's are named.
        compiled = statement.compile(
            dialect=dialect, column_keys=list(parameters) if statement.is_insert else None
        )
        if tuple(compiled.positiontup or ()) != tuple(parameters):
            raise RuntimeError(
                f"compiled parameters {compiled.positiontup} are not {tuple(parameters)}"
            )
        self.sql = str(compiled)

    def run(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Executes the statement once per row of ``rows``."""
        connection.exec_driver_sql(self.sql, list(rows))

    def run_one(self, connection: Connection, row: tuple[Any, ...]) -> CursorResult[Any]:
        """Executes the statement for one row; its result (``RETURNING`` rows)."""
        return connection.exec_driver_sql(self.sql, row)


def positional_dialect(dialect: Dialect) -> Dialect:
    """A dialect like ``dialect`` that compiles positional placeholders (``?``, ``%s``)."""
    if dialect.name == "sqlite":
        return dialect
    return postgresql.psycopg.dialect(paramstyle="format")  # type: ignore[no-untyped-call]


def json_text(value: Any) -> str:
    """A JSON column's value as text, for rows bound through the driver: orjson's
    compact form, or ``json``'s for what orjson cannot write (an integer beyond 64
    bits); either reads back the same."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return json.dumps(value)


def time_binder(dialect_name: str) -> Callable[[datetime], Any]:
    """How to bind a time through the driver: SQLite's UTC text, or an aware datetime."""
    return sqlite_utc_text if dialect_name == "sqlite" else aware_time


def aware_time(value: datetime) -> datetime:
    """``value``, refused when naive (as ``UtcDateTime`` and ``sqlite_utc_text`` do)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} given; pass an aware UTC time")
    return value


_Built = TypeVar("_Built")


def statements_for(
    connection: Connection, cache: dict[str, _Built], build: Callable[[Dialect], _Built]
) -> _Built:
    """The statements ``build`` makes for the connection's database, built once per
    database and kept in ``cache``: building them costs more than running them."""
    name = connection.dialect.name
    built = cache.get(name)
    if built is None:
        built = cache[name] = build(connection.dialect)
    return built
