"""An endpoint a batch records for the first time has no history and no alerts: the
batched path judges it without reading either, and still raises what it should."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event

from certvigil.alerts.engine import AlertEngine
from certvigil.daemon.runner import record_and_judge
from certvigil.store import Store
from certvigil.targets.target import Target

from .factories import T0, leaf, report


def _reads(statements: list[str]) -> dict[str, int]:
    selects = [s for s in statements if s.lstrip().startswith("SELECT")]
    return {
        "history": sum("FROM observations AS o" in s for s in selects),
        "alerts": sum("FROM alerts" in s for s in selects),
        "labels": sum("FROM endpoint_tags" in s for s in selects),
    }


def test_new_endpoints_are_judged_without_reading_what_they_cannot_have(store: Store) -> None:
    engine = AlertEngine(store)
    cert = leaf("fresh", not_before=T0, lifetime=timedelta(days=365))
    old = [Target(host=f"old{i}.example.test", port=443) for i in range(3)]
    new = [Target(host=f"new{i}.example.test", port=443) for i in range(3)]
    statements: list[str] = []

    def remember(_c: Any, _cur: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    def batch(targets: list[Target], at: Any) -> list[Any]:
        reports = [report(cert, at, trusted=False, target=t) for t in targets]
        with store.write() as connection:
            return record_and_judge(connection, engine, reports, [("prod",)] * len(reports), at)

    event.listen(store.engine, "before_cursor_execute", remember)
    try:
        first = batch(old, T0)
        reads_first = _reads(statements)
        statements.clear()
        second = batch([*old, *new], T0 + timedelta(hours=1))
        reads_second = _reads(statements)
    finally:
        event.remove(store.engine, "before_cursor_execute", remember)

    # Every endpoint of the first batch is new: nothing is read to judge it...
    assert reads_first == {"history": 0, "alerts": 0, "labels": 0}
    # ...and its untrusted chain still opens an alert on each.
    assert [[e.kind.value for e in events] for _, events in first] == [["untrusted"]] * 3
    # The second batch reads the three known endpoints' history, alerts and labels
    # once each; the new ones open their alerts, the known ones' stay open.
    assert reads_second == {"history": 1, "alerts": 1, "labels": 1}
    assert [[e.kind.value for e in events] for _, events in second] == [[]] * 3 + [
        ["untrusted"]
    ] * 3
