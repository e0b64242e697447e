"""Inventory rows in full: every field, the order of ties, labels and times, on both databases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from certvigil.analysis.model import CertificateFacts
from certvigil.store import Store
from certvigil.store.records import InventoryRow
from certvigil.targets.target import StartTLS, Target
from tests.store.factories import NOW, facts, failed_report, ok_report

INTERMEDIATE = "CN=Fleet Issuing CA,O=Example Fleet"
OTHER = "CN=R11,O=Let's Encrypt,C=US"


@dataclass(frozen=True, slots=True, kw_only=True)
class Served:
    """What one endpoint serves in the fleet below, and since when."""

    target: Target
    tags: tuple[str, ...]
    chain: tuple[CertificateFacts, ...]
    first_utc: datetime
    last_utc: datetime


def _fleet(store: Store) -> list[Served]:
    """Records a small fleet whose inventory exercises ties, labels, chains and rotations.

    Three endpoints share one expiry (ordered by host, then port), labels are given
    unsorted and mixed in case and script, one endpoint has none, one sends an
    intermediate, one rotated its leaf, one failed after its last success and one
    expires after the horizon.
    """
    soon = NOW + timedelta(days=12, seconds=7, microseconds=250)
    ca = facts("Fleet Issuing CA", not_after_utc=NOW + timedelta(days=20), is_ca=True)
    plans: list[tuple[Target, list[str], tuple[CertificateFacts, ...]]] = [
        (
            Target(host="b.example.test", port=443),
            ["zeta", "Alpha", "ä-label", "mid-1"],
            (facts("b", not_after_utc=soon, san_dns=("b.example.test", "alt.example.test")),),
        ),
        (
            Target(host="a.example.test", port=8443),
            ["prod"],
            (facts("a-8443", not_after_utc=soon, issuer=OTHER),),
        ),
        (
            Target(host="a.example.test", port=443, sni="x.example.test"),
            ["prod", "Edge"],
            (facts("a-443", not_after_utc=soon),),
        ),
        (
            Target(host="mail.example.test", port=587, starttls=StartTLS.SMTP),
            [],
            (
                facts("mail", not_after_utc=NOW + timedelta(days=3), issuer=INTERMEDIATE),
                ca,
            ),
        ),
        (
            Target(host="late.example.test", port=443),
            ["prod"],
            (facts("late", not_after_utc=NOW + timedelta(days=200)),),
        ),
        (
            Target(host="old.example.test", port=443),
            ["legacy"],
            (facts("old", not_after_utc=NOW - timedelta(days=1, hours=3)),),
        ),
    ]
    fleet = []
    for index, (target, tags, chain) in enumerate(plans):
        first = NOW + timedelta(minutes=index)
        store.record_report(ok_report(target, chain, at=first), tags=tags)
        last = first + timedelta(hours=1)
        store.record_report(ok_report(target, chain, at=last))
        fleet.append(
            Served(
                target=target, tags=tuple(sorted(tags)), chain=chain, first_utc=first, last_utc=last
            )
        )
    # A rotation: the replaced leaf (expiring in 2 days) leaves the inventory.
    rotated = Target(host="rotated.example.test", port=443)
    store.record_report(
        ok_report(rotated, (facts("rot-old", not_after_utc=NOW + timedelta(days=2)),))
    )
    new_leaf = facts("rot-new", not_after_utc=NOW + timedelta(days=25))
    at = NOW + timedelta(hours=2)
    store.record_report(ok_report(rotated, (new_leaf,), at=at))
    fleet.append(Served(target=rotated, tags=(), chain=(new_leaf,), first_utc=at, last_utc=at))
    # A failure after the last success leaves the served certificate current.
    failed = fleet[0].target
    store.record_report(failed_report(failed, at=NOW + timedelta(hours=3)))
    return fleet


def _expected(
    store: Store, fleet: list[Served], *, horizon: datetime | None, include_chain: bool
) -> tuple[InventoryRow, ...]:
    rows = []
    for served in fleet:
        endpoint = store.find_endpoint(served.target)
        assert endpoint is not None
        for position, cert in enumerate(served.chain):
            if position > 0 and not include_chain:
                continue
            if horizon is not None and cert.not_after_utc > horizon:
                continue
            rows.append(
                InventoryRow(
                    endpoint_id=endpoint.id,
                    target=served.target,
                    tags=served.tags,
                    chain_position=position,
                    sha256_hex=cert.sha256_hex,
                    subject=cert.subject,
                    subject_cn=cert.subject_cn,
                    issuer=cert.issuer,
                    issuer_cn=cert.issuer_cn,
                    serial_hex=cert.serial_hex,
                    not_before_utc=cert.not_before_utc,
                    not_after_utc=cert.not_after_utc,
                    key_type=cert.key_type.value,
                    key_bits=cert.key_bits,
                    san_dns=cert.san_dns,
                    deployed_since_utc=served.first_utc,
                    last_seen_utc=served.last_utc,
                )
            )
    rows.sort(key=lambda r: (r.not_after_utc, r.target.host, r.target.port, r.chain_position))
    return tuple(rows)


def _times(row: InventoryRow) -> tuple[datetime, ...]:
    return (row.not_before_utc, row.not_after_utc, row.deployed_since_utc, row.last_seen_utc)


def test_expiring_rows_match_field_for_field(store: Store) -> None:
    """Each expiring row carries exactly the stored facts, sorted labels and UTC times, in order."""
    fleet = _fleet(store)
    horizon = NOW + timedelta(days=30)
    rows = store.expiring_certificates(now=NOW, within_days=30)
    assert rows == _expected(store, fleet, horizon=horizon, include_chain=False)
    assert [(r.target.host, r.target.port) for r in rows[2:5]] == [
        ("a.example.test", 443),
        ("a.example.test", 8443),
        ("b.example.test", 443),
    ]
    assert rows[4].tags == ("Alpha", "mid-1", "zeta", "ä-label")
    assert all(t.tzinfo is UTC for r in rows for t in _times(r))


def test_inventory_rows_with_chain_match_field_for_field(store: Store) -> None:
    """The whole inventory with chains lists every served certificate exactly, soonest first."""
    fleet = _fleet(store)
    rows = store.inventory(include_chain=True)
    assert rows == _expected(store, fleet, horizon=None, include_chain=True)
    assert [r.chain_position for r in rows if r.target.host == "mail.example.test"] == [0, 1]
    assert store.inventory(include_chain=True, limit=3) == rows[:3]


def test_filtered_rows_keep_their_labels(store: Store) -> None:
    """Filters by label, host and issuer keep whole rows, labels included, in order."""
    fleet = _fleet(store)
    everything = _expected(store, fleet, horizon=None, include_chain=False)
    by_tag = store.inventory(tag="prod")
    assert by_tag == tuple(r for r in everything if "prod" in r.tags)
    assert by_tag[0].tags == ("Edge", "prod")
    assert store.inventory(host_glob="a.*") == tuple(
        r for r in everything if r.target.host.startswith("a.")
    )
    assert store.inventory(issuer="encrypt") == tuple(r for r in everything if r.issuer == OTHER)
