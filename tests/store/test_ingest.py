"""Recording reports: endpoints and certificates upserted, one observation per report."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from certvigil.analysis.model import Finding, Severity
from certvigil.errors import StoreError
from certvigil.observed.handshake import FailureKind
from certvigil.store import ObservationStatus, Store, open_store
from certvigil.store.ingest import _statements, prepare_reports, record_reports
from certvigil.targets.target import StartTLS, Target
from tests.store.factories import NOW, facts, failed_report, ok_report
from tests.support.postgres import ThrowawayPostgres

WEB = Target(host="www.example.test", port=443)
MAIL = Target(host="mail.example.test", port=25, starttls=StartTLS.SMTP)


def test_certificate_is_one_row_wherever_deployed(store: Store) -> None:
    """The same certificate served by two endpoints is stored once and found at both."""
    shared = facts("shared.example.test", not_after_utc=NOW + timedelta(days=40))
    store.record_report(ok_report(WEB, (shared,)))
    store.record_report(ok_report(MAIL, (shared,)))
    with store.read() as connection:
        count = connection.exec_driver_sql("SELECT count(*) FROM certificates").scalar()
    assert count == 1
    places = store.certificate_deployments(shared.sha256_hex)
    assert {p.target for p in places} == {WEB, MAIL}
    assert all(p.is_current for p in places)


def test_repeat_observations_reuse_the_endpoint(store: Store) -> None:
    """Observing one endpoint three times makes one endpoint and three observations."""
    leaf = facts("www.example.test", not_after_utc=NOW + timedelta(days=40))
    ids = [
        store.record_report(ok_report(WEB, (leaf,), at=NOW + timedelta(hours=h))) for h in range(3)
    ]
    assert len(set(ids)) == 3
    endpoints = store.list_endpoints()
    assert len(endpoints) == 1
    assert endpoints[0].first_seen_utc == NOW
    assert endpoints[0].last_seen_utc == NOW + timedelta(hours=2)
    assert endpoints[0].last_observation_id == ids[-1]


def test_endpoint_key_includes_sni_and_starttls(store: Store) -> None:
    """Same host and port with another SNI or STARTTLS protocol is another endpoint."""
    leaf = facts("x.example.test", not_after_utc=NOW + timedelta(days=40))
    plain = Target(host="10.test", port=587)
    with_sni = Target(host="10.test", port=587, sni="mail.example.test")
    with_starttls = Target(host="10.test", port=587, starttls=StartTLS.SMTP)
    for target in (plain, with_sni, with_starttls):
        store.record_report(ok_report(target, (leaf,)))
    found = {e.target for e in store.list_endpoints()}
    assert found == {plain, with_sni, with_starttls}


def test_rotation_moves_the_current_deployment(store: Store) -> None:
    """After a rotation the old leaf is no longer current at the endpoint; the new one is."""
    old = facts("old.example.test", not_after_utc=NOW + timedelta(days=5))
    new = facts("new.example.test", not_after_utc=NOW + timedelta(days=90))
    ca = facts("Test CA", not_after_utc=NOW + timedelta(days=900), is_ca=True)
    store.record_report(ok_report(WEB, (old, ca)))
    store.record_report(ok_report(WEB, (new, ca), at=NOW + timedelta(days=1)))
    endpoint = store.find_endpoint(WEB)
    assert endpoint is not None
    assert endpoint.current_certificate_sha256 == new.sha256_hex
    (old_place,) = store.certificate_deployments(old.sha256_hex)
    assert not old_place.is_current
    assert old_place.last_seen_utc == NOW
    (ca_place,) = store.certificate_deployments(ca.sha256_hex, current_only=True)
    assert ca_place.chain_position == 1
    assert ca_place.first_seen_utc == NOW


def test_deployments_last_seen_through_rotations_and_returns(store: Store) -> None:
    """A current deployment was last seen at its endpoint's last success; a retired one
    when it was last served, also when the leaf comes back later; a failure moves
    neither."""
    a = facts("a.example.test", not_after_utc=NOW + timedelta(days=90))
    b = facts("b.example.test", not_after_utc=NOW + timedelta(days=90))

    def at(hours: int) -> datetime:
        return NOW + timedelta(hours=hours)

    def last_seen(leaf: Any) -> tuple[bool, datetime]:
        (place,) = store.certificate_deployments(leaf.sha256_hex)
        return place.is_current, place.last_seen_utc

    store.record_report(ok_report(WEB, (a,), at=at(0)))
    store.record_report(ok_report(WEB, (a,), at=at(1)))
    assert last_seen(a) == (True, at(1))
    (row,) = store.inventory()
    assert row.last_seen_utc == at(1)
    store.record_report(failed_report(WEB, at=at(2)))
    assert last_seen(a) == (True, at(1))
    store.record_reports([ok_report(WEB, (b,), at=at(3)), ok_report(WEB, (b,), at=at(4))])
    assert last_seen(a) == (False, at(1))
    assert last_seen(b) == (True, at(4))
    store.record_report(ok_report(WEB, (a,), at=at(5)))
    assert last_seen(a) == (True, at(5))
    assert last_seen(b) == (False, at(4))
    (row,) = store.inventory()
    assert (row.sha256_hex, row.last_seen_utc) == (a.sha256_hex, at(5))
    places = store.certificate_deployments(a.sha256_hex) + store.certificate_deployments(
        b.sha256_hex
    )
    assert [p.last_seen_utc for p in places] == [at(5), at(4)]


def test_a_chain_served_again_rewrites_no_deployment(store: Store) -> None:
    """Seeing the same chain again writes no deployment row (at a million observations,
    rewriting them and their index entries was a fifth of the ingest time)."""
    leaf = facts("www.example.test", not_after_utc=NOW + timedelta(days=40))
    ca = facts("Test CA", not_after_utc=NOW + timedelta(days=900), is_ca=True)
    store.record_report(ok_report(WEB, (leaf, ca), at=NOW))
    with store.read() as connection:
        before = connection.exec_driver_sql(
            "SELECT certificate_sha256, chain_position, last_seen_utc, is_current"
            " FROM deployments ORDER BY certificate_sha256"
        ).all()
    store.record_reports([ok_report(WEB, (leaf, ca), at=NOW + timedelta(hours=1))])
    with store.read() as connection:
        after = connection.exec_driver_sql(
            "SELECT certificate_sha256, chain_position, last_seen_utc, is_current"
            " FROM deployments ORDER BY certificate_sha256"
        ).all()
    assert after == before
    assert {p.last_seen_utc for p in store.certificate_deployments(ca.sha256_hex)} == {
        NOW + timedelta(hours=1)
    }


def test_failures_count_up_and_keep_the_current_certificate(store: Store) -> None:
    """Failed observations count consecutive failures and leave the last leaf current."""
    leaf = facts("www.example.test", not_after_utc=NOW + timedelta(days=40))
    store.record_report(ok_report(WEB, (leaf,)))
    for hours in (1, 2):
        store.record_report(failed_report(WEB, at=NOW + timedelta(hours=hours)))
    endpoint = store.find_endpoint(WEB)
    assert endpoint is not None
    assert endpoint.consecutive_failures == 2
    assert endpoint.last_status is ObservationStatus.FAILED
    assert endpoint.last_ok_utc == NOW
    assert endpoint.current_certificate_sha256 == leaf.sha256_hex
    assert len(store.inventory()) == 1
    store.record_report(ok_report(WEB, (leaf,), at=NOW + timedelta(hours=3)))
    endpoint = store.find_endpoint(WEB)
    assert endpoint is not None
    assert endpoint.consecutive_failures == 0


def test_observation_round_trips(store: Store) -> None:
    """What was recorded comes back as a frozen record with the same facts."""
    leaf = facts("www.example.test", not_after_utc=NOW + timedelta(days=40))
    finding = Finding(code="expiring", severity=Severity.WARNING, message="soon", cert_index=0)
    report = ok_report(WEB, (leaf,), protocol="TLSv1.2", findings=(finding,))
    observation_id = store.record_report(report)
    record = store.get_observation(observation_id)
    assert record is not None
    assert record.target == WEB
    assert record.status is ObservationStatus.OK
    assert record.protocol == "TLSv1.2"
    assert record.leaf_sha256 == leaf.sha256_hex
    assert record.leaf_issuer == leaf.issuer
    assert record.chain_sha256 == (leaf.sha256_hex,)
    assert record.findings == (finding,)
    assert record.verdict is Severity.WARNING
    assert record.observed_at_utc == NOW
    assert record.observed_at_utc.utcoffset() == timedelta(0)


def test_failed_observation_round_trips(store: Store) -> None:
    """A failure is stored with its kind and detail and no certificate."""
    observation_id = store.record_report(failed_report(MAIL, kind=FailureKind.TIMEOUT))
    record = store.get_observation(observation_id)
    assert record is not None
    assert record.status is ObservationStatus.FAILED
    assert record.failure_kind is FailureKind.TIMEOUT
    assert record.leaf_sha256 is None
    assert record.chain_sha256 == ()
    assert record.target == MAIL


def test_certificate_facts_round_trip(store: Store) -> None:
    """A stored certificate's facts are rebuilt equal to what was recorded."""
    leaf = facts("www.example.test", not_after_utc=NOW + timedelta(days=40))
    store.record_report(ok_report(WEB, (leaf,)))
    assert store.get_certificate(leaf.sha256_hex.upper()) == leaf


def test_tags_are_replaced_or_kept(store: Store) -> None:
    """Given tags replace an endpoint's labels; no tags leaves them alone."""
    leaf = facts("www.example.test", not_after_utc=NOW + timedelta(days=40))
    store.record_report(ok_report(WEB, (leaf,)), tags=["prod", "web", "prod", " "])
    store.record_report(ok_report(WEB, (leaf,), at=NOW + timedelta(hours=1)))
    endpoint = store.find_endpoint(WEB)
    assert endpoint is not None
    assert endpoint.tags == ("prod", "web")
    store.record_report(ok_report(WEB, (leaf,), at=NOW + timedelta(hours=2)), tags=["web"])
    endpoint = store.find_endpoint(WEB)
    assert endpoint is not None
    assert endpoint.tags == ("web",)


def test_batch_is_one_transaction(store: Store) -> None:
    """record_reports writes every report of a batch, in order."""
    leaf = facts("www.example.test", not_after_utc=NOW + timedelta(days=40))
    reports = [ok_report(WEB, (leaf,), at=NOW + timedelta(minutes=m)) for m in range(5)]
    ids = store.record_reports(reports, tags={WEB: ["batch"]})
    assert list(ids) == sorted(ids)
    endpoint = store.find_endpoint(WEB)
    assert endpoint is not None
    assert len(store.endpoint_history(endpoint.id)) == 5
    assert endpoint.tags == ("batch",)


def test_naive_datetimes_are_refused(store: Store) -> None:
    """A naive datetime never reaches the database; the write fails and stores nothing."""
    leaf = facts("www.example.test", not_after_utc=NOW + timedelta(days=40))
    naive = datetime(2026, 6, 1, 12, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises((StoreError, ValueError)):
        store.record_report(ok_report(WEB, (leaf,), at=naive))
    assert store.list_endpoints() == ()


def test_batch_with_repeats_applies_reports_in_order(store: Store) -> None:
    """A batch holding one endpoint several times ends in the state of its last report."""
    old = facts("old.example.test", not_after_utc=NOW + timedelta(days=5))
    new = facts("new.example.test", not_after_utc=NOW + timedelta(days=90))
    hour = timedelta(hours=1)
    reports = [
        ok_report(WEB, (old,)),
        failed_report(MAIL, at=NOW),
        failed_report(WEB, at=NOW + hour),
        failed_report(MAIL, at=NOW + hour),
        ok_report(WEB, (new,), at=NOW + 2 * hour),
        failed_report(WEB, at=NOW + 3 * hour),
    ]
    ids = store.record_reports(reports)
    assert len(set(ids)) == 6
    web = store.find_endpoint(WEB)
    mail = store.find_endpoint(MAIL)
    assert web is not None and mail is not None
    assert web.consecutive_failures == 1
    assert web.current_certificate_sha256 == new.sha256_hex
    assert web.last_observation_id == ids[5]
    assert mail.consecutive_failures == 2
    assert mail.current_certificate_sha256 is None
    history = store.endpoint_history(web.id)
    assert [h.id for h in history] == [ids[5], ids[4], ids[2], ids[0]]
    (old_place,) = store.certificate_deployments(old.sha256_hex)
    assert not old_place.is_current


def test_long_chain_retires_old_deployments(store: Store) -> None:
    """A chain longer than the batched retire statement handles still retires correctly."""
    chain = tuple(
        facts(f"c{i}", not_after_utc=NOW + timedelta(days=100 + i), is_ca=i > 0) for i in range(10)
    )
    store.record_report(ok_report(WEB, chain))
    store.record_report(ok_report(WEB, chain[:1], at=NOW + timedelta(hours=1)))
    current = store.inventory(include_chain=True)
    assert [r.sha256_hex for r in current] == [chain[0].sha256_hex]
    store.record_report(ok_report(WEB, chain, at=NOW + timedelta(hours=2)))
    assert len(store.inventory(include_chain=True)) == 10


def test_batch_of_known_endpoints_out_of_id_order_keeps_each_report_with_its_endpoint(
    store: Store,
) -> None:
    """Reports of stored endpoints, batched against their id order, land at their own endpoint."""
    targets = [Target(host=f"host{i}.example.test", port=443) for i in range(6)]
    for target in targets:
        store.record_report(failed_report(target, at=NOW))
    later = NOW + timedelta(hours=1)
    batch = [
        ok_report(t, (facts(t.host, not_after_utc=NOW + timedelta(days=30)),), at=later)
        for t in reversed(targets)
    ]
    batch.insert(2, ok_report(WEB, (facts(WEB.host, not_after_utc=NOW),), at=later))
    ids = store.record_reports(batch)
    for report, observation_id in zip(batch, ids, strict=True):
        endpoint = store.find_endpoint(report.target)
        assert endpoint is not None
        assert endpoint.last_observation_id == observation_id
        assert endpoint.current_certificate_sha256 == report.certificates[0].sha256_hex
        (latest,) = store.endpoint_history(endpoint.id, limit=1)
        assert latest.id == observation_id
        assert latest.target == report.target
        assert latest.leaf_sha256 == report.certificates[0].sha256_hex


def test_times_in_another_zone_are_stored_as_the_same_instant(store: Store) -> None:
    """A report timed in UTC+05:00 reads back as that instant in UTC, in every record."""
    plus_five = timezone(timedelta(hours=5))
    at = (NOW + timedelta(minutes=7, microseconds=12)).astimezone(plus_five)
    leaf = facts("www.example.test", not_after_utc=(NOW + timedelta(days=9)).astimezone(plus_five))
    (observation_id,) = store.record_reports([ok_report(WEB, (leaf,), at=at)])
    record = store.get_observation(observation_id)
    assert record is not None
    assert record.observed_at_utc == at
    assert record.observed_at_utc.tzinfo == UTC
    assert str(record.observed_at_utc) == "2026-06-01 12:07:00.000012+00:00"
    endpoint = store.find_endpoint(WEB)
    assert endpoint is not None
    assert (endpoint.first_seen_utc, endpoint.last_seen_utc, endpoint.last_ok_utc) == (at, at, at)
    (row,) = store.expiring_certificates(now=NOW, within_days=10)
    assert row.not_after_utc == NOW + timedelta(days=9)
    assert (row.deployed_since_utc, row.last_seen_utc) == (at, at)
    assert row.not_after_utc.tzinfo == UTC


def test_one_endpoints_deployments_are_found_by_its_own_index(tmp_path: Path) -> None:
    """Statements about one endpoint's or one certificate's deployments use that
    endpoint's or certificate's index, never the expiry index of every current
    deployment: read through that one, retiring a deployment cost time in proportion
    to the whole fleet (SQLite without statistics picked it)."""
    store = open_store(f"sqlite:///{tmp_path / 'plans.db'}")
    seen: list[tuple[str, Any]] = []

    def remember(
        _c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        if "deployments" in statement and "WHERE" in statement:
            seen.append((statement, parameters[0] if many else parameters))

    event.listen(store.engine, "before_cursor_execute", remember)
    leaf = facts("www.example.test", not_after_utc=NOW + timedelta(days=40))
    ca = facts("Test CA", not_after_utc=NOW + timedelta(days=900), is_ca=True)
    long_chain = tuple(
        facts(f"c{i}", not_after_utc=NOW + timedelta(days=100 + i), is_ca=i > 0) for i in range(10)
    )
    store.record_reports([ok_report(WEB, (leaf, ca)), ok_report(MAIL, long_chain)])
    store.record_reports(
        [
            ok_report(WEB, (leaf, ca), at=NOW + timedelta(hours=1)),
            ok_report(MAIL, long_chain, at=NOW + timedelta(hours=1)),
        ]
    )
    store.certificate_deployments(ca.sha256_hex, current_only=True)
    event.remove(store.engine, "before_cursor_execute", remember)
    assert len({statement for statement, _ in seen}) >= 3  # retire (short and long), read
    with store.read() as connection:
        for statement, parameters in seen:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            details = " ".join(str(row[-1]) for row in plan)
            assert "ix_deployments_current_expiry_cover" not in details, (statement, details)


@pytest.mark.postgres
def test_what_endpoints_serve_is_read_through_their_index_on_postgresql(
    postgres_server: ThrowawayPostgres,
) -> None:
    """The read of what a batch's endpoints serve probes the deployments' index per
    endpoint on PostgreSQL, even on a table without statistics (a new database):
    written as ``IN (SELECT unnest(...))`` the planner read the whole table per batch."""
    name = f"certvigil_plans_{os.getpid()}"
    store = open_store(postgres_server.create_database(name, template="certvigil_migrated"))
    try:
        ca = facts("Test CA", not_after_utc=NOW + timedelta(days=900), is_ca=True)
        for batch in range(6):
            store.record_reports(
                [
                    ok_report(
                        Target(host=f"h{batch}-{i}.example.test", port=443),
                        (facts(f"h{batch}-{i}", not_after_utc=NOW + timedelta(days=40)), ca),
                    )
                    for i in range(100)
                ]
            )
        with store.read() as connection:
            ids = [
                row[0]
                for row in connection.exec_driver_sql(
                    "SELECT id FROM endpoints WHERE host LIKE 'h0-%%' ORDER BY id"
                )
            ]
            statement = _statements(connection).current_deployments
            compiled = statement.compile(dialect=connection.dialect)
            plan = "\n".join(
                str(row[0])
                for row in connection.exec_driver_sql(
                    f"EXPLAIN {compiled}", {**compiled.params, "b_endpoint_ids": ids}
                )
            )
            rows = connection.execute(statement, {"b_endpoint_ids": ids}).all()
    finally:
        store.close()
        postgres_server.drop_database(name)
    assert len(ids) == 100
    assert len(rows) == 200
    assert "Seq Scan on deployments" not in plan, plan
    assert "Index" in plan, plan


def test_reports_prepared_ahead_are_recorded_as_given_ones(store: Store) -> None:
    """Reports encoded before the transaction (prepare_reports) are written exactly as
    the same reports given to record_reports."""
    leaf = facts("www.example.test", not_after_utc=NOW + timedelta(days=40))
    reports = [
        ok_report(WEB, (leaf,), at=NOW),
        failed_report(MAIL, at=NOW + timedelta(minutes=1)),
    ]
    prepared = prepare_reports(reports)
    with store.write() as connection:
        ids = record_reports(connection, prepared, tags={WEB: ["prod"]})
    assert len(ids) == 2
    web = store.find_endpoint(WEB)
    mail = store.find_endpoint(MAIL)
    assert web is not None and mail is not None
    assert (web.last_observation_id, mail.last_observation_id) == ids
    assert web.tags == ("prod",)
    assert web.current_certificate_sha256 == leaf.sha256_hex
    assert mail.last_status is ObservationStatus.FAILED


def test_a_batch_larger_than_one_id_list_rotates_every_endpoint_right(store: Store) -> None:
    """What a round's endpoints serve is read in chunks of ids: a batch of 1,100
    endpoints, then the same with one leaf in a hundred replaced, leaves exactly the new
    leaves current."""
    targets = [Target(host=f"h{i}.example.test", port=443) for i in range(1100)]
    first = [facts(t.host, not_after_utc=NOW + timedelta(days=60)) for t in targets]
    store.record_reports([ok_report(t, (leaf,)) for t, leaf in zip(targets, first, strict=True)])
    second = [
        facts(f"new-{t.host}", not_after_utc=NOW + timedelta(days=90)) if i % 100 == 0 else leaf
        for i, (t, leaf) in enumerate(zip(targets, first, strict=True))
    ]
    store.record_reports(
        [
            ok_report(t, (leaf,), at=NOW + timedelta(hours=1))
            for t, leaf in zip(targets, second, strict=True)
        ]
    )
    current = {row.sha256_hex for row in store.inventory()}
    assert current == {leaf.sha256_hex for leaf in second}
    (old_place,) = store.certificate_deployments(first[0].sha256_hex)
    assert (old_place.is_current, old_place.last_seen_utc) == (False, NOW)
