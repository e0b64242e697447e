"""The history the alert rules read before judging a report costs the same however long
the endpoint's history is.

The previous grade, revocation statuses and leaf are the newest observations that have
one. An endpoint never graded (no daily checks configured), never checked for
revocation or never reached has none, and searching for them read its whole history for
every report: 9,600 rows per report after 400 days of hourly scans. Counted here in
SQLite virtual-machine steps, which do not depend on the machine's speed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, select, update

from certvigil.store import Store, open_store
from certvigil.store.alert_queries import read_history, read_prior_histories
from certvigil.store.models import ENDPOINTS, OBSERVATIONS
from certvigil.targets.target import Target
from tests.store.factories import NOW, facts, failed_report, ok_report

SHORT, LONG = 20, 2_000


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """One SQLite file: endpoints with 20 and with 2,000 observations, reached and never
    reached, none graded or checked for revocation. Returns the file and endpoint ids."""
    path = tmp_path_factory.mktemp("history") / "history.db"
    store = open_store(str(path))
    try:
        for name, count, reached in (
            ("short", SHORT, True),
            ("long", LONG, True),
            ("short-down", SHORT, False),
            ("long-down", LONG, False),
        ):
            target = Target(host=f"{name}.example.test", port=443)
            leaf = facts(target.host, not_after_utc=NOW + timedelta(days=90))
            reports = [
                ok_report(target, (leaf,), at=NOW + timedelta(hours=i))
                if reached
                else failed_report(target, at=NOW + timedelta(hours=i))
                for i in range(count)
            ]
            for start in range(0, count, 500):
                store.record_reports(reports[start : start + 500])
        with store.read() as connection:
            ids = {
                host.split(".")[0]: endpoint_id
                for endpoint_id, host in connection.execute(
                    select(ENDPOINTS.c.id, ENDPOINTS.c.host)
                )
            }
    finally:
        store.close()
    return path, ids


def _steps(store: Store, call: Callable[[Connection], Any]) -> int:
    """SQLite virtual-machine steps ``call`` makes (in hundreds)."""
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    with store.read() as connection:
        raw = connection.connection.driver_connection
        raw.set_progress_handler(tick, 100)
        try:
            call(connection)
        finally:
            raw.set_progress_handler(None, 100)
    return counted[0]


def _prior(endpoint_id: int) -> Callable[[Connection], Any]:
    return lambda connection: read_prior_histories(
        connection, {endpoint_id: []}, max_failures=3, max_revocation=3
    )


def _history(endpoint_id: int) -> Callable[[Connection], Any]:
    return lambda connection: read_history(
        connection,
        endpoint_id=endpoint_id,
        before_utc=NOW + timedelta(days=1000),
        leaf_sha256=None,
        max_failures=3,
        max_revocation=3,
    )


@pytest.mark.parametrize("read", [_prior, _history], ids=["batched", "one report"])
@pytest.mark.parametrize("kind", ["", "-down"], ids=["reached", "never reached"])
def test_a_long_history_costs_no_more_to_read(
    histories: tuple[Path, dict[str, int]], read: Callable[[int], Any], kind: str
) -> None:
    """2,000 observations without a grade or a revocation status (and, never reached,
    without a leaf) are read at the cost of 20."""
    path, ids = histories
    store = open_store(str(path))
    try:
        short = _steps(store, read(ids["short" + kind]))
        long = _steps(store, read(ids["long" + kind]))
    finally:
        store.close()

    assert long < 2 * short + 10, (short, long)


@pytest.mark.parametrize("read", [_prior, _history], ids=["batched", "one report"])
def test_a_grade_and_revocation_status_far_back_are_still_found(
    histories: tuple[Path, dict[str, int]], read: Callable[[int], Any], tmp_path: Path
) -> None:
    """Graded and checked once, 2,000 observations ago (the endpoint row keeps them):
    both are found, as before."""
    path, ids = histories
    copy = tmp_path / "copy.db"
    copy.write_bytes(path.read_bytes())
    store = open_store(str(copy))
    try:
        endpoint_id = ids["long"]
        with store.write() as connection:
            o = OBSERVATIONS.c
            oldest = connection.execute(
                select(o.id).where(o.endpoint_id == endpoint_id).order_by(o.id).limit(1)
            ).scalar_one()
            connection.execute(
                update(OBSERVATIONS)
                .where(o.id == oldest)
                .values(grade="A", revocation_status="good")
            )
            connection.execute(
                update(ENDPOINTS)
                .where(ENDPOINTS.c.id == endpoint_id)
                .values(grade="A", revocation_status="good")
            )
        with store.read() as connection:
            found = read(endpoint_id)(connection)
    finally:
        store.close()

    history = found[endpoint_id] if isinstance(found, dict) else found
    assert history.previous_grade == "A"
    assert history.revocation_statuses == ("good",)


@pytest.mark.parametrize("read", [_prior, _history], ids=["batched", "one report"])
def test_the_history_is_read_from_the_index_alone(
    histories: tuple[Path, dict[str, int]], read: Callable[[int], Any]
) -> None:
    """Every probe into an endpoint's observations is answered by the covering index in
    its own order: a row visited is never looked up again in the table, whose rows hold
    the whole stored observation, and no probe sorts."""
    path, ids = histories
    store = open_store(str(path))
    seen: list[tuple[str, Any]] = []

    def remember(
        _c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        if "FROM observations" in statement:
            seen.append((statement, parameters))

    try:
        event.listen(store.engine, "before_cursor_execute", remember)
        with store.read() as connection:
            read(ids["long"])(connection)
        event.remove(store.engine, "before_cursor_execute", remember)
        with store.read() as connection:
            plans = [
                [
                    str(row[-1])
                    for row in connection.exec_driver_sql(
                        f"EXPLAIN QUERY PLAN {statement}", parameters
                    ).all()
                ]
                for statement, parameters in seen
            ]
    finally:
        store.close()

    assert seen
    for (statement, _), plan in zip(seen, plans, strict=True):
        probes = [step for step in plan if step.split(" ")[:2][-1] in ("o", "observations")]
        assert probes, (statement, plan)
        for step in probes:
            assert "USING COVERING INDEX ix_observations_endpoint_time_cover" in step, (
                statement,
                plan,
            )
        assert not any("TEMP B-TREE" in step for step in plan), (statement, plan)
