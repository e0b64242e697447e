"""The tally counts reports and turns them into the documented exit code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from certvigil.analysis.model import EndpointReport
from certvigil.cli.exitcodes import ExitCode
from certvigil.errors import TargetError
from certvigil.output.summary import Tally, days_remaining
from tests.output.reports import expired, expiring, good, refused

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "days"),
    [
        (timedelta(days=5, seconds=1), 5),
        (timedelta(days=5), 5),
        (timedelta(days=5, seconds=-1), 4),
        (timedelta(hours=23), 0),
        (timedelta(seconds=-1), 0),
        (timedelta(days=-3, seconds=1), -2),
        (timedelta(days=-3), -3),
        (timedelta(days=-3, seconds=-1), -3),
        (timedelta(days=-4, seconds=1), -3),
    ],
)
def test_days_remaining_truncates_toward_zero(delta: timedelta, days: int) -> None:
    """Days left are whole days truncated toward zero, negative after the first expired day."""
    assert days_remaining(NOW + delta, now=NOW) == days


def test_days_remaining_ignores_time_zone_of_input() -> None:
    """The same instant in another time zone gives the same count."""
    tokyo = timezone(timedelta(hours=9))
    expiry = (NOW + timedelta(days=3)).astimezone(tokyo)
    assert days_remaining(expiry, now=NOW.astimezone(tokyo)) == 3


@pytest.mark.parametrize(
    ("reports", "malformed", "code"),
    [
        ([good], 0, ExitCode.OK),
        ([good, expiring], 0, ExitCode.WARNING),
        ([good, expiring, expired], 0, ExitCode.CRITICAL),
        ([good, refused], 0, ExitCode.UNKNOWN),
        ([expiring, refused], 0, ExitCode.UNKNOWN),
        ([expired, refused], 0, ExitCode.CRITICAL),
        ([good], 1, ExitCode.UNKNOWN),
        ([expired], 1, ExitCode.CRITICAL),
        ([], 1, ExitCode.USAGE),
        ([], 0, ExitCode.OK),
    ],
)
def test_exit_code_follows_documented_precedence(
    reports: list[Callable[[], EndpointReport]], malformed: int, code: ExitCode
) -> None:
    """Critical beats not-checked beats warning beats OK; only malformed targets is 64."""
    tally = Tally()
    for make in reports:
        tally.add(make())
    for _ in range(malformed):
        tally.add_target_error(TargetError("x y", "contains white space"))
    assert tally.exit_code is code


def test_description_counts_each_kind() -> None:
    """The stderr summary line counts verdicts, failures and malformed targets."""
    tally = Tally()
    for report in (good(), good(), expiring(), expired(), refused()):
        tally.add(report)
    tally.add_target_error(TargetError("x y", "contains white space"))
    assert tally.describe() == (
        "5 endpoints: 2 ok, 1 warning, 1 critical, 1 not checked, 1 malformed target"
    )
