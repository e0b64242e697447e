"""Statements run through the database driver itself, for the hottest writes.

SQLAlchemy builds a dictionary and runs every type's conversion for each row of an
executemany, and on PostgreSQL it renders a batch of INSERTs as one statement with a
placeholder per value, which psycopg then parses again for every batch (a quarter of
a millisecond per report). The store's batch writes are compiled once with
positional placeholders, with rows built as tuples, already converted: times by
``sqlite_utc_text`` on SQLite and as aware datetimes on PostgreSQL, JSON columns as
text.

On SQLite a batch runs through the driver's executemany (a C loop). On PostgreSQL an
INSERT's batch is one statement whose rows arrive as one JSON array, read by
``jsonb_array_elements`` and cast to the columns' types
(:func:`rows_as_json`): psycopg's pipelined executemany spends some 20 µs of Python per
row (a Bind, an Execute and a result each), some 40 % of what recording an
endpoint cost a distributed worker; orjson writes a batch's rows in a few
microseconds each, and the server reads them faster than the separate executions
too. Other statements (UPDATEs) keep the executemany.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, CursorResult, Dialect, LargeBinary, Table
from sqlalchemy.dialects import postgresql

from certvigil.store.models import sqlite_utc_text

__all__ = [
    "NUL_AS",
    "DriverStatement",
    "aware_time",
    "json_text",
    "positional_dialect",
    "rows_as_json",
    "statements_for",
    "time_binder",
]


NUL_AS = "\\x00"
"""What a NUL in text is written as on PostgreSQL, whose text and jsonb cannot hold one:
the escape ``visible`` shows it as (``store.pg_text`` for bound strings,
:func:`rows_as_json` for a batch's rows)."""

JSON_ROWS_MAX = 1000
"""Most rows one PostgreSQL INSERT takes as its JSON array (a bound on its size)."""


class DriverStatement:
    """A statement compiled once to the driver's SQL, run with plain parameter tuples
    in the order of the compiled parameters (``parameters``).

    Attributes:
        sql: The statement for one row.
        rows_sql: On PostgreSQL, for an INSERT: the same statement taking its rows as
            one JSON array (``None`` elsewhere).
    """

    __slots__ = ("rows_sql", "sql")

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
        self.rows_sql = (
            _insert_from_json(self.sql, statement.table, dialect, parameters)
            if dialect.name == "postgresql" and statement.is_insert
            else None
        )

    def run(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Executes the statement for every row of ``rows``.

        On PostgreSQL an INSERT's rows go in one statement, so no two of them may
        update the same row through ``ON CONFLICT DO UPDATE`` (PostgreSQL refuses the
        statement); every batch the store writes holds each key once.
        """
        if not rows:
            return
        if self.rows_sql is None:
            connection.exec_driver_sql(self.sql, list(rows))
            return
        for start in range(0, len(rows), JSON_ROWS_MAX):
            batch = rows[start : start + JSON_ROWS_MAX]
            connection.exec_driver_sql(self.rows_sql, (rows_as_json(batch),))

    def run_one(self, connection: Connection, row: tuple[Any, ...]) -> CursorResult[Any]:
        """Executes the statement for one row; its result (``RETURNING`` rows)."""
        return connection.exec_driver_sql(self.sql, row)


def _insert_from_json(sql: str, table: Table, dialect: Dialect, parameters: Sequence[str]) -> str:
    """``INSERT INTO t (…) VALUES (…) [ON CONFLICT …]`` rewritten to take its rows from one
    JSON array of arrays (``%s``): each parameter becomes ``CAST(v->>k AS <column type>)``
    (bytes arrive as base64), and the values that are not parameters stay as compiled.
    The cast cuts a string longer than its ``VARCHAR(n)`` column to ``n`` characters
    (outside text, such as a hostile certificate's serial, must not cost the batch).

    Raises:
        RuntimeError: The statement is not of that form (a bug, found at first use).
    """
    head, found, rest = sql.partition(" VALUES (")
    columns = [c.strip().strip('"') for c in head[head.find("(") + 1 : head.rfind(")")].split(",")]
    items: list[str] = []
    depth, start, end = 1, 0, -1
    for at, char in enumerate(rest):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                end = at
                break
        elif char == "," and depth == 1:
            items.append(rest[start:at].strip())
            start = at + 1
    items.append(rest[start:end].strip())
    if (
        not found
        or end < 0
        or len(items) != len(columns)
        or columns[: len(parameters)] != list(parameters)
    ):
        raise RuntimeError(f"not an INSERT of the columns {tuple(parameters)}: {sql}")
    selected = []
    for k, (column, item) in enumerate(zip(columns, items, strict=True)):
        if k >= len(parameters):
            if "%s" in item:
                raise RuntimeError(f"an unexpected parameter in {sql}")
            selected.append(item)
            continue
        if item.count("%s") != 1:
            raise RuntimeError(f"{column} is not one parameter in {sql}")
        column_type = table.c[column].type
        if isinstance(column_type.dialect_impl(dialect), LargeBinary):
            selected.append(f"decode(v->>{k}, 'base64')")
        else:
            selected.append(f"CAST(v->>{k} AS {column_type.compile(dialect=dialect)})")
    return (
        f"{head} SELECT {', '.join(selected)} FROM jsonb_array_elements(%s::jsonb) AS rows(v)"
        f"{rest[end + 1 :]}"
    )


_JSON_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")
"""A NUL written as JSON (``\\u0000`` after an even number of backslashes), which
PostgreSQL's jsonb refuses."""

_NUL_AS_JSON = orjson.dumps(NUL_AS)[1:-1]
""":data:`NUL_AS` as it is written inside a JSON string."""


def rows_as_json(rows: Sequence[tuple[Any, ...]]) -> str:
    """Rows as one JSON array of arrays, as :class:`DriverStatement` binds them on
    PostgreSQL: bytes as base64, times in ISO 8601, and a NUL in text as
    :data:`NUL_AS`, since jsonb cannot hold one."""
    try:
        data = orjson.dumps(rows, default=_json_value)
    except TypeError:  # an integer beyond 64 bits: json writes any
        data = json.dumps(rows, default=_json_value, separators=(",", ":")).encode("utf-8")
    if b"\\u0000" in data:
        data = _JSON_NUL.sub(lambda found: found[1] + _NUL_AS_JSON, data)
    return data.decode("utf-8")


def _json_value(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):  # for json; orjson writes times itself
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")


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
