"""A batch's rows as PostgreSQL's INSERTs take them: one JSON array (``store.driver``)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from certvigil.store import Store, driver
from certvigil.store.driver import rows_as_json
from certvigil.targets.target import Target
from tests.store.factories import NOW, facts, ok_report


def test_values_are_written_as_the_casts_read_them() -> None:
    """Bytes as base64, aware times in ISO 8601, None as null, numbers as they are."""
    at = datetime(2026, 12, 6, 1, 2, 3, 456789, tzinfo=UTC)
    rows = [(1, "a", b"\x00\xff", at, None, 0.25, True)]
    assert json.loads(rows_as_json(rows)) == [
        [1, "a", "AP8=", "2026-12-06T01:02:03.456789+00:00", None, 0.25, True]
    ]


def test_an_integer_beyond_64_bits_is_written_whole() -> None:
    """orjson refuses it; the rows are written by json instead, times and bytes alike."""
    at = datetime(2026, 12, 6, tzinfo=UTC)
    assert json.loads(rows_as_json([(2**70, b"\x01", at)])) == [
        [2**70, "AQ==", "2026-12-06T00:00:00+00:00"]
    ]


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("a\x00b", "a\\x00b"),
        ("\x00\x00", "\\x00\\x00"),
        ("a\\u0000b", "a\\u0000b"),  # the six characters, not a NUL: kept
        ("a\\\x00b", "a\\\\x00b"),  # a backslash, then a NUL
        ("a\\\\u0000b", "a\\\\u0000b"),
        ("a\\\\\x00b", "a\\\\\\x00b"),
    ],
)
def test_a_nul_is_written_as_its_escape(text: str, stored: str) -> None:
    """jsonb cannot hold a NUL: it is written as ``\\x00``, as store.pg_text writes it;
    whatever only looks like a NUL's JSON escape is left alone."""
    document = rows_as_json([(text,)])
    assert "\\u0000" not in document.replace("\\\\", "")
    assert json.loads(document) == [[stored]]


def test_a_batch_longer_than_one_statement_is_written_whole(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows past JSON_ROWS_MAX go in further statements, none lost or repeated."""
    monkeypatch.setattr(driver, "JSON_ROWS_MAX", 3)
    reports = [
        ok_report(
            Target(host=f"h{i}.example.test", port=443),
            (facts(f"h{i}.example.test", not_after_utc=NOW + timedelta(days=40 + i)),),
        )
        for i in range(7)
    ]
    ids = store.record_reports(reports)
    assert len(set(ids)) == 7
    with store.read() as connection:
        counts = [
            connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
            for table in ("certificates", "endpoints", "observations", "deployments")
        ]
    assert counts == [7, 7, 7, 7]
    assert {e.target.host for e in store.list_endpoints()} == {
        f"h{i}.example.test" for i in range(7)
    }


def test_a_value_longer_than_its_column_does_not_cost_the_batch(store: Store) -> None:
    """A hostile certificate's serial past the column's 128 hex digits: on PostgreSQL the
    column keeps its first 128 (the cast to VARCHAR(128) cuts it) instead of refusing
    the batch; SQLite keeps it whole; the stored facts keep it whole on both."""
    long_serial = "ab" * 150
    leaf = dataclasses.replace(
        facts("long.example.test", not_after_utc=NOW + timedelta(days=40)),
        serial_hex=long_serial,
    )
    plain = facts("plain.example.test", not_after_utc=NOW + timedelta(days=40))
    ids = store.record_reports(
        [
            ok_report(Target(host="long.example.test", port=443), (leaf,)),
            ok_report(Target(host="plain.example.test", port=443), (plain,)),
        ]
    )
    assert len(ids) == 2
    with store.read() as connection:
        column = connection.exec_driver_sql(
            f"SELECT serial_hex FROM certificates WHERE sha256_hex = '{leaf.sha256_hex}'"
        ).scalar_one()
    assert column == (long_serial[:128] if store.dialect_name == "postgresql" else long_serial)
    stored = store.get_certificate(leaf.sha256_hex)
    assert stored is not None
    assert stored.serial_hex == long_serial
