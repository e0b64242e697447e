"""What each report batch writes besides its observations: the agent's contact and the
batch's id (a retry is stored once), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from certvigil.store import Store
from certvigil.store import server_queries as sq

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


def _contact(store: Store, name: str, **changed: object) -> None:
    values: dict[str, object] = {
        "api_key_id": None,
        "version": "1.0",
        "tags": ("dc1",),
        "interval_s": 3600,
        "targets": 10,
        "backlog": 0,
        "now": NOW,
    } | changed
    with store.write() as connection:
        sq.record_agent_contact(connection, name=name, **values)  # type: ignore[arg-type]


def test_a_later_contact_updates_the_agent_and_keeps_its_first_contact(store: Store) -> None:
    _contact(store, "dc1-agent")
    _contact(store, "dc2-agent", version="0.9")
    with store.read() as connection:
        first = {a.name: a for a in sq.list_agents(connection)}
    later = NOW + timedelta(hours=1)
    _contact(
        store,
        "dc1-agent",
        version="1.1",
        tags=("dc1", "prod"),
        interval_s=600,
        targets=12,
        backlog=3,
        now=later,
    )
    with store.read() as connection:
        agents = {a.name: a for a in sq.list_agents(connection)}
    assert agents["dc2-agent"] == first["dc2-agent"]
    agent = agents["dc1-agent"]
    assert agent.id == first["dc1-agent"].id
    assert (agent.first_contact_utc, agent.last_contact_utc) == (NOW, later)
    assert (agent.version, agent.tags, agent.interval_s, agent.targets, agent.backlog) == (
        "1.1",
        ("dc1", "prod"),
        600,
        12,
        3,
    )


def test_a_received_batch_is_found_with_what_it_refused(store: Store) -> None:
    rejected = [{"index": 2, "reason": "chain_der: not base64 ✗"}, {"index": 7, "reason": "x"}]
    with store.write() as connection:
        assert sq.received_report(connection, "agent/r-1") is None
        sq.record_received_report(
            connection,
            report_id="agent/r-1",
            agent_name="agent",
            accepted=98,
            rejected=rejected,
            now=NOW,
        )
    with store.read() as connection:
        assert sq.received_report(connection, "agent/r-1") == (98, rejected)
        assert sq.received_report(connection, "agent/r-2") is None
        assert sq.count_received_reports(connection) == 1
