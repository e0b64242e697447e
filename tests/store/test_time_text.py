"""Times as SQLite stores them (``models.sqlite_utc_text``), with the texts it keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certvigil.store.models import sqlite_utc_text, utc_from_sqlite_text

_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
)


def test_text_sorts_as_time_and_drops_the_zone() -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=UTC)
    assert sqlite_utc_text(moment) == "2026-03-04 05:06:07.000089"
    two_hours_east = moment.astimezone(timezone(timedelta(hours=2)))
    assert sqlite_utc_text(two_hours_east) == "2026-03-04 05:06:07.000089"


def test_naive_time_refused_even_after_the_same_wall_clock_time_was_written() -> None:
    aware = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    sqlite_utc_text(aware)  # kept
    with pytest.raises(ValueError, match="naive"):
        sqlite_utc_text(aware.replace(tzinfo=None))


def test_many_times_past_what_is_kept_still_convert() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for second in range(10_000):
        moment = start + timedelta(seconds=second)
        assert utc_from_sqlite_text(sqlite_utc_text(moment)) == moment


@given(
    st.datetimes(
        # hypothesis takes naive bounds and adds the zones itself
        min_value=datetime(1970, 1, 2),  # noqa: DTZ001
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=_ZONES,
    )
)
def test_same_text_as_computed_fresh(moment: datetime) -> None:
    expected = moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    assert sqlite_utc_text(moment) == expected
    assert sqlite_utc_text(moment) == expected  # from what was kept
    assert utc_from_sqlite_text(expected) == moment
