"""``column IN (list)`` written so that a statement's text does not grow with the list.

SQLAlchemy renders an IN list as one placeholder per value, each with a type cast on
PostgreSQL, at every execution; psycopg then parses the long text again, since it
only caches short queries. For the batches the store reads by id or key (100 to 500
values, several times per batch of reports) that cost more than the query itself.
On PostgreSQL the list is therefore bound as one array, so the statement's text is
fixed and both SQLAlchemy and psycopg reuse their work. It is read as a table
(``column IN (SELECT unnest(:values))``), not as ``column = ANY(:values)``: once
psycopg prepares a statement it runs on PostgreSQL's generic plan, which cannot hash
a parameter array and compares every row with every value (6.6 ms against 0.6 ms for
100 hosts in 1,000 endpoints). SQLite has no arrays: the list is bound as one JSON
array and read as a table (``column IN (SELECT value FROM json_each(:values))``).
Its driver would take a long parameter list cheaply, but SQLAlchemy renders and binds
an expanding list value by value at every execution: about 60 µs for 100 values, more
than SQLite then spends answering the alert engine's reads of a batch's 100 endpoints.

The values are integers or strings (ids, keys, digests, hosts). Both forms mean the
same, empty lists included.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Dialect, Select, String, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator

__all__ = ["CHUNK", "chunks", "none_of_parameter", "one_of", "one_of_parameter"]

_T = TypeVar("_T")

CHUNK = 500
"""Most values bound in one ``IN`` list: SQLite binds them one parameter each, and
allows 32,766 parameters in a statement."""


def chunks(values: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    """``values`` in slices of at most ``size``, for lists longer than one statement binds."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def one_of(
    dialect_name: str, column: ColumnElement[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """``column IN values``, the values bound now."""
    listed = list(values)
    if dialect_name == "postgresql":
        return column.in_(_unnest(column, bindparam(None, listed, type_=_array_of(column))))
    return column.in_(_json_each(bindparam(None, listed, type_=_JsonList())))


def one_of_parameter(
    dialect_name: str, column: ColumnElement[Any], name: str
) -> ColumnElement[bool]:
    """``column IN :name``, for a statement built once; bind a list to ``name``."""
    if dialect_name == "postgresql":
        return column.in_(_unnest(column, bindparam(name, type_=_array_of(column))))
    return column.in_(_json_each(bindparam(name, type_=_JsonList())))


def none_of_parameter(
    dialect_name: str, column: ColumnElement[Any], name: str
) -> ColumnElement[bool]:
    """``column NOT IN :name``, for a statement built once; bind a list to ``name``."""
    if dialect_name == "postgresql":
        return column.not_in(_unnest(column, bindparam(name, type_=_array_of(column))))
    return column.not_in(_json_each(bindparam(name, type_=_JsonList())))


class _JsonList(TypeDecorator[Any]):
    """A list of integers or strings bound as one JSON array (SQLite)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(list(value))


def _array_of(column: ColumnElement[Any]) -> postgresql.ARRAY[Any]:
    return postgresql.ARRAY(column.type)


def _unnest(column: ColumnElement[Any], array: Any) -> Select[Any]:
    return select(func.unnest(array, type_=column.type))


def _json_each(array: Any) -> Select[Any]:
    return select(func.json_each(array).table_valued("value").c.value)
