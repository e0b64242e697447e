"""The daemon's batch path (record, then judge) routes each alert by the labels the
same batch gave its endpoint, as the exact per-report path does, without reading the
endpoints back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.routing import AlertRoute
from certvigil.daemon.runner import record_and_judge
from certvigil.server.ingest import AgentInfo, store_batch
from certvigil.store import Store, open_store
from certvigil.store.ingest import record_reports
from certvigil.store.outbox import list_deliveries
from certvigil.targets.target import Target

from .factories import T0, leaf, report

PROD = AlertRoute(name="prod", url="json://127.0.0.1:9/prod", tags=frozenset({"prod"}))
LAB = AlertRoute(name="lab", url="json://127.0.0.1:9/lab", tags=frozenset({"lab"}))
TARGETS = tuple(Target(host=f"h{i}.example.test", port=443) for i in range(4))
# Each target's labels per batch: relabelled, unlabelled, blanks and duplicates.
LABELS = (
    (("prod",), ("lab",), (), (" prod ", "prod", "")),
    (("lab",), ("prod", "lab"), ("prod",), ()),
)


def _batches() -> list[list[Any]]:
    """An untrusted chain, then a trusted one that does not match the name: each batch
    opens an alert on every endpoint, routed by that batch's labels."""
    cert = leaf("labels", not_before=T0, lifetime=timedelta(days=365))
    first = [report(cert, T0, trusted=False, target=t) for t in TARGETS]
    later = T0 + timedelta(hours=1)
    second = [report(cert, later, hostname_matches=False, target=t) for t in TARGETS]
    return [first, second]


def _routes_told(store: Store) -> list[tuple[str, str, str]]:
    with store.read() as connection:
        hosts = {
            alert.id: alert.target.host for alert in AlertEngine(store, routes=()).list_alerts()
        }
        return sorted((hosts[d.alert_id], d.route, d.event) for d in list_deliveries(connection))


def _judge_exactly(
    store: Store, engine: AlertEngine, batch: list[Any], tags: dict[Target, Any]
) -> None:
    """The exact path: record the batch, then judge report by report."""
    now = batch[0].evaluated_at_utc
    with store.write() as connection:
        ids = record_reports(connection, batch, tags=tags)
        for one, observation_id in zip(batch, ids, strict=True):
            engine.process_in(connection, one, now, observation_id=observation_id)


def _opened(told: list[tuple[str, str, str]]) -> set[tuple[str, str]]:
    """(host, route name) of every delivery of an opened alert."""
    return {(host, route.split("#")[0]) for host, route, what in told if what == "opened"}


def test_labels_set_in_the_batch_route_its_alerts_as_one_by_one(
    store: Store, tmp_path: Path
) -> None:
    exact = open_store(f"sqlite:///{tmp_path / 'exact.db'}")
    batched_engine = AlertEngine(store, routes=(PROD, LAB))
    exact_engine = AlertEngine(exact, routes=(PROD, LAB))
    statements: list[str] = []

    def remember(_c: Any, _cur: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", remember)
    try:
        for batch, labels in zip(_batches(), LABELS, strict=True):
            now = batch[0].evaluated_at_utc
            with store.write() as connection:
                record_and_judge(connection, batched_engine, batch, list(labels), now)
            _judge_exactly(exact, exact_engine, batch, dict(zip(TARGETS, labels, strict=True)))
    finally:
        event.remove(store.engine, "before_cursor_execute", remember)
    try:
        told = _routes_told(store)
        assert told == _routes_told(exact)
    finally:
        exact.close()

    assert _opened(told) == {
        ("h0.example.test", "prod"),
        ("h1.example.test", "lab"),
        ("h3.example.test", "prod"),
        ("h0.example.test", "lab"),
        ("h1.example.test", "prod"),
        ("h2.example.test", "prod"),
    }, told
    endpoint_reads = [
        s for s in statements if s.lstrip().startswith("SELECT") and "FROM endpoint_tags" in s
    ]
    # Labels are read once per batch, to replace them, and never again to judge; the
    # first batch creates every endpoint, which has none to read.
    assert len(endpoint_reads) == len(LABELS) - 1, endpoint_reads


# Labels an agent sends per item; None keeps what the endpoint has.
AGENT_LABELS = (
    (("prod",), ("lab",), None, ("prod", "lab")),
    (None, ("prod",), ("lab",), None),
)


def test_the_servers_batch_routes_by_sent_and_kept_labels_as_one_by_one(
    store: Store, tmp_path: Path
) -> None:
    """The server's ingest takes the labels an item carries and reads only the others."""
    exact = open_store(f"sqlite:///{tmp_path / 'exact.db'}")
    batched_engine = AlertEngine(store, routes=(PROD, LAB))
    exact_engine = AlertEngine(exact, routes=(PROD, LAB))
    agent = AgentInfo(name="agent-1", version="test")
    try:
        for number, (batch, labels) in enumerate(zip(_batches(), AGENT_LABELS, strict=True)):
            now = batch[0].evaluated_at_utc
            store_batch(
                store,
                batched_engine,
                report_id=f"batch-{number}",
                agent=agent,
                api_key_id=None,
                judged=list(zip(batch, labels, strict=True)),
                rejected=[],
                now=now,
            )
            sent = {t: tags for t, tags in zip(TARGETS, labels, strict=True) if tags is not None}
            _judge_exactly(exact, exact_engine, batch, sent)
        told = _routes_told(store)
        assert told == _routes_told(exact)
    finally:
        exact.close()

    assert _opened(told) == {
        ("h0.example.test", "prod"),
        ("h1.example.test", "lab"),
        ("h3.example.test", "prod"),
        ("h3.example.test", "lab"),
        ("h0.example.test", "prod"),
        ("h1.example.test", "prod"),
        ("h2.example.test", "lab"),
    }, told
