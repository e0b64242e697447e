"""What changed between observations: pure comparisons of ObservedState values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from certvigil.analysis.changes import (
    ChangeKind,
    ObservedState,
    changes_over,
    detect_changes,
    observed_state_from_report,
)
from certvigil.targets.target import Target
from tests.store.factories import NOW, facts, failed_report, ok_report

HOUR = timedelta(hours=1)


def _ok(at: datetime, **changes: object) -> ObservedState:
    values: dict[str, object] = {
        "observed_at_utc": at,
        "is_ok": True,
        "leaf_sha256": "aa" * 32,
        "leaf_issuer": "CN=CA One",
        "protocol": "TLSv1.3",
        "chain_sha256": ("aa" * 32,),
        "is_trusted": True,
        "hostname_matches": True,
    }
    values.update(changes)
    return ObservedState(**values)  # type: ignore[arg-type]


def _failed(at: datetime) -> ObservedState:
    return ObservedState(observed_at_utc=at, is_ok=False, failure_kind="timeout")


def test_identical_observations_have_no_changes() -> None:
    """Two equal observations yield nothing."""
    assert detect_changes(_ok(NOW), _ok(NOW + HOUR)) == ()


def test_rotation_and_issuer_change() -> None:
    """A new leaf from a new issuer is a rotation and an issuer change."""
    after = _ok(NOW + HOUR, leaf_sha256="bb" * 32, leaf_issuer="CN=CA Two")
    changes = detect_changes(_ok(NOW), after)
    assert [c.kind for c in changes] == [ChangeKind.CERTIFICATE_ROTATED, ChangeKind.ISSUER_CHANGED]
    assert changes[0].before == "aa" * 32 and changes[0].after == "bb" * 32
    assert changes[1].after == "CN=CA Two"
    assert changes[0].observed_at_utc == NOW + HOUR


def test_rotation_with_same_issuer_is_only_rotation() -> None:
    """A renewal by the same CA is a rotation, not an issuer change."""
    changes = detect_changes(_ok(NOW), _ok(NOW + HOUR, leaf_sha256="cc" * 32))
    assert [c.kind for c in changes] == [ChangeKind.CERTIFICATE_ROTATED]


def test_protocol_downgrade_and_upgrade() -> None:
    """A lower negotiated protocol is a downgrade; a higher one an upgrade."""
    down = detect_changes(_ok(NOW), _ok(NOW + HOUR, protocol="TLSv1.2"))
    assert [(c.kind, c.before, c.after) for c in down] == [
        (ChangeKind.PROTOCOL_DOWNGRADED, "TLSv1.3", "TLSv1.2")
    ]
    up = detect_changes(_ok(NOW, protocol="TLSv1"), _ok(NOW + HOUR, protocol="TLSv1.1"))
    assert [c.kind for c in up] == [ChangeKind.PROTOCOL_UPGRADED]


def test_unknown_protocol_names_are_not_compared() -> None:
    """A protocol name outside the known ladder yields no protocol change."""
    assert detect_changes(_ok(NOW), _ok(NOW + HOUR, protocol="QUICv1")) == ()


def test_trust_and_hostname_changes_both_ways() -> None:
    """Losing and regaining trust or a hostname match are reported each way."""
    broke = detect_changes(_ok(NOW), _ok(NOW + HOUR, is_trusted=False, hostname_matches=False))
    assert [c.kind for c in broke] == [
        ChangeKind.CHAIN_BROKE,
        ChangeKind.HOSTNAME_MISMATCH_APPEARED,
    ]
    fixed = detect_changes(_ok(NOW, is_trusted=False, hostname_matches=False), _ok(NOW + HOUR))
    assert [c.kind for c in fixed] == [
        ChangeKind.CHAIN_REPAIRED,
        ChangeKind.HOSTNAME_MISMATCH_CLEARED,
    ]


def test_failure_and_recovery() -> None:
    """Going from ok to failed and back is reported; failed to failed is not."""
    assert [c.kind for c in detect_changes(_ok(NOW), _failed(NOW + HOUR))] == [
        ChangeKind.ENDPOINT_FAILED
    ]
    assert detect_changes(_failed(NOW), _failed(NOW + HOUR)) == ()
    assert [c.kind for c in detect_changes(_failed(NOW), _ok(NOW + HOUR))] == [
        ChangeKind.ENDPOINT_RECOVERED
    ]


def test_rotation_during_an_outage_is_seen() -> None:
    """changes_over compares across a failure with the last successful observation."""
    series = [
        _ok(NOW),
        _failed(NOW + HOUR),
        _failed(NOW + 2 * HOUR),
        _ok(NOW + 3 * HOUR, leaf_sha256="dd" * 32),
    ]
    assert [c.kind for c in changes_over(series)] == [
        ChangeKind.ENDPOINT_FAILED,
        ChangeKind.ENDPOINT_RECOVERED,
        ChangeKind.CERTIFICATE_ROTATED,
    ]


def test_state_from_reports() -> None:
    """States built from reports carry the leaf, issuer, protocol and failure kind."""
    target = Target(host="www.example.test", port=443)
    leaf = facts("www", not_after_utc=NOW + timedelta(days=30), issuer="CN=X")
    ok = observed_state_from_report(ok_report(target, (leaf,), protocol="TLSv1.2"))
    assert (ok.is_ok, ok.leaf_sha256, ok.leaf_issuer, ok.protocol) == (
        True,
        leaf.sha256_hex,
        "CN=X",
        "TLSv1.2",
    )
    failed = observed_state_from_report(failed_report(target, at=datetime(2026, 1, 1, tzinfo=UTC)))
    assert not failed.is_ok and failed.failure_kind == "connection_refused"
    assert failed.observed_at_utc == datetime(2026, 1, 1, tzinfo=UTC)


def test_grade_protocols_and_revocation_compare_with_their_own_last_run() -> None:
    """Looks that did not grade, probe or check revocation are skipped for those changes:
    the daily check compares with the previous daily check."""
    from certvigil.analysis.changes import ObservedState, changes_over

    def at(hour: int, **facts: object) -> ObservedState:
        return ObservedState(
            observed_at_utc=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=hour),
            is_ok=True,
            leaf_sha256="a" * 64,
            leaf_issuer="CN=CA",
            protocol="TLSv1.3",
            **facts,  # type: ignore[arg-type]
        )

    states = [
        at(0, grade="A", protocols=("TLSv1.2", "TLSv1.3"), revocation_status="good"),
        at(1, revocation_status="good"),  # a certificate-and-revocation look
        at(24, grade="B", protocols=("TLSv1.0", "TLSv1.2", "TLSv1.3")),
        at(25, revocation_status="revoked"),
        at(26, revocation_status="revoked"),  # still revoked: said once
        at(48, grade="B", protocols=("TLSv1.2", "TLSv1.3")),
    ]
    assert [c.message for c in changes_over(states)] == [
        "grade A \u2192 B",
        "TLS 1.0 enabled",
        "revoked: the certificate aaaaaaaaaaaaaaaa is revoked",
        "TLS 1.0 disabled",
    ]
