"""Inventory queries: expiring certificates with filters, history and what changed."""

from __future__ import annotations

from datetime import timedelta

from certvigil.analysis.changes import ChangeKind
from certvigil.store import Store
from certvigil.targets.target import Target
from tests.store.factories import NOW, facts, failed_report, ok_report

LE = "CN=R11,O=Let's Encrypt,C=US"
INTERNAL = "CN=Corp Issuing CA,O=Example Corp"


def _fill(store: Store) -> dict[str, Target]:
    """Four endpoints: two internal ones expiring soon, one public soon, one far off."""
    targets = {
        "db": Target(host="internal-db.example.test", port=5432),
        "wiki": Target(host="internal-wiki.example.test", port=443),
        "www": Target(host="www.example.test", port=443),
        "api": Target(host="api.example.test", port=443),
    }
    plan = {
        "db": (10, INTERNAL, ["prod", "db"]),
        "wiki": (45, INTERNAL, ["staging"]),
        "www": (3, LE, ["prod"]),
        "api": (200, LE, ["prod"]),
    }
    ca = facts("Corp Issuing CA", not_after_utc=NOW + timedelta(days=20), is_ca=True)
    for name, (days, issuer, tags) in plan.items():
        leaf = facts(targets[name].host, not_after_utc=NOW + timedelta(days=days), issuer=issuer)
        chain = (leaf, ca) if issuer == INTERNAL else (leaf,)
        store.record_report(ok_report(targets[name], chain), tags=tags)
    return targets


def test_expiring_within_days_soonest_first(store: Store) -> None:
    """Leaves expiring within 30 days come back soonest first; later ones do not."""
    targets = _fill(store)
    rows = store.expiring_certificates(now=NOW, within_days=30)
    assert [r.target for r in rows] == [targets["www"], targets["db"]]
    assert all(r.chain_position == 0 for r in rows)
    assert rows[0].not_after_utc == NOW + timedelta(days=3)


def test_already_expired_is_included(store: Store) -> None:
    """A certificate that expired already is within any horizon."""
    target = Target(host="old.example.test", port=443)
    leaf = facts("old.example.test", not_after_utc=NOW - timedelta(days=2))
    store.record_report(ok_report(target, (leaf,)))
    assert [r.target for r in store.expiring_certificates(now=NOW, within_days=1)] == [target]


def test_host_glob_filter(store: Store) -> None:
    """A host glob keeps only matching endpoints, case-insensitively."""
    targets = _fill(store)
    rows = store.expiring_certificates(now=NOW, within_days=60, host_glob="INTERNAL*")
    assert {r.target for r in rows} == {targets["db"], targets["wiki"]}
    assert (
        store.expiring_certificates(now=NOW, within_days=60, host_glob="internal?db*")[0].target
        == (targets["db"])
    )


def test_glob_treats_sql_wildcards_literally(store: Store) -> None:
    """``_`` and ``%`` in a glob match only themselves."""
    _fill(store)
    assert store.expiring_certificates(now=NOW, within_days=60, host_glob="internal_db*") == ()
    assert store.expiring_certificates(now=NOW, within_days=60, host_glob="%") == ()


def test_issuer_filter(store: Store) -> None:
    """An issuer filter keeps certificates whose issuer contains the text."""
    targets = _fill(store)
    rows = store.expiring_certificates(now=NOW, within_days=365, issuer="let's encrypt")
    assert [r.target for r in rows] == [targets["www"], targets["api"]]


def test_tag_filter(store: Store) -> None:
    """A tag filter keeps endpoints carrying the label, and rows carry their tags."""
    targets = _fill(store)
    rows = store.expiring_certificates(now=NOW, within_days=365, tag="prod")
    assert [r.target for r in rows] == [targets["www"], targets["db"], targets["api"]]
    assert rows[1].tags == ("db", "prod")
    assert store.expiring_certificates(now=NOW, within_days=365, tag="nope") == ()


def test_include_chain_adds_intermediates(store: Store) -> None:
    """With include_chain, an intermediate expiring soon is listed at each endpoint."""
    targets = _fill(store)
    rows = store.expiring_certificates(now=NOW, within_days=30, include_chain=True)
    intermediates = [r for r in rows if r.chain_position == 1]
    assert {r.target for r in intermediates} == {targets["db"], targets["wiki"]}


def test_inventory_without_horizon_lists_everything(store: Store) -> None:
    """The inventory without filters lists every deployed leaf."""
    _fill(store)
    assert len(store.inventory()) == 4
    assert len(store.inventory(limit=2)) == 2


def test_rotated_certificate_leaves_the_inventory(store: Store) -> None:
    """After a rotation the replaced leaf no longer shows as expiring."""
    target = Target(host="www.example.test", port=443)
    old = facts("old", not_after_utc=NOW + timedelta(days=2))
    new = facts("new", not_after_utc=NOW + timedelta(days=90))
    store.record_report(ok_report(target, (old,)))
    assert len(store.expiring_certificates(now=NOW, within_days=30)) == 1
    store.record_report(ok_report(target, (new,), at=NOW + timedelta(hours=1)))
    assert store.expiring_certificates(now=NOW, within_days=30) == ()


def test_history_is_newest_first_and_limited(store: Store) -> None:
    """An endpoint's history lists its observations newest first, up to the limit."""
    target = Target(host="www.example.test", port=443)
    leaf = facts("www", not_after_utc=NOW + timedelta(days=90))
    for hours in range(6):
        at = NOW + timedelta(hours=hours)
        report = failed_report(target, at=at) if hours == 4 else ok_report(target, (leaf,), at=at)
        store.record_report(report)
    endpoint = store.find_endpoint(target)
    assert endpoint is not None
    history = store.endpoint_history(endpoint.id, limit=3)
    assert [h.observed_at_utc for h in history] == [
        NOW + timedelta(hours=5),
        NOW + timedelta(hours=4),
        NOW + timedelta(hours=3),
    ]
    assert history[1].failure_kind is not None
    since = store.endpoint_history(endpoint.id, limit=None, since_utc=NOW + timedelta(hours=2))
    assert len(since) == 4


def test_endpoint_changes(store: Store) -> None:
    """Rotation, issuer change, downgrade, broken chain and outage are all reported."""
    target = Target(host="www.example.test", port=443)
    first = facts("one", not_after_utc=NOW + timedelta(days=30), issuer=LE)
    second = facts("two", not_after_utc=NOW + timedelta(days=90), issuer=INTERNAL)
    hour = timedelta(hours=1)
    store.record_report(ok_report(target, (first,)))
    store.record_report(failed_report(target, at=NOW + hour))
    store.record_report(ok_report(target, (second,), at=NOW + 2 * hour, protocol="TLSv1.2"))
    store.record_report(
        ok_report(target, (second,), at=NOW + 3 * hour, protocol="TLSv1.2", is_trusted=False)
    )
    endpoint = store.find_endpoint(target)
    assert endpoint is not None
    kinds = [c.kind for c in store.endpoint_changes(endpoint.id)]
    assert kinds == [
        ChangeKind.ENDPOINT_FAILED,
        ChangeKind.ENDPOINT_RECOVERED,
        ChangeKind.CERTIFICATE_ROTATED,
        ChangeKind.ISSUER_CHANGED,
        ChangeKind.PROTOCOL_DOWNGRADED,
        ChangeKind.CHAIN_BROKE,
    ]
    recent = store.endpoint_changes(endpoint.id, since_utc=NOW + 2 * hour)
    assert [c.kind for c in recent] == [
        ChangeKind.ENDPOINT_RECOVERED,
        ChangeKind.CERTIFICATE_ROTATED,
        ChangeKind.ISSUER_CHANGED,
        ChangeKind.PROTOCOL_DOWNGRADED,
        ChangeKind.CHAIN_BROKE,
    ]


def test_changes_since_covers_every_endpoint(store: Store) -> None:
    """changes_since lists each endpoint with changes in the period, and only those."""
    calm = Target(host="calm.example.test", port=443)
    busy = Target(host="busy.example.test", port=443)
    leaf = facts("calm", not_after_utc=NOW + timedelta(days=90))
    store.record_report(ok_report(calm, (leaf,)))
    store.record_report(ok_report(busy, (leaf,)))
    day = timedelta(days=1)
    store.record_report(ok_report(calm, (leaf,), at=NOW + day))
    store.record_report(ok_report(busy, (leaf,), at=NOW + day, hostname_matches=False))
    result = store.changes_since(NOW + timedelta(hours=12))
    assert [(e.target, [c.kind for c in cs]) for e, cs in result] == [
        (busy, [ChangeKind.HOSTNAME_MISMATCH_APPEARED])
    ]
