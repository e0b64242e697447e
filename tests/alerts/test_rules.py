"""The pure alert rules, driven by an injected clock over simulated certificate lives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from certvigil.alerts.rules import (
    AlertKind,
    AlertPolicy,
    EndpointHistory,
    EventAction,
    ExpiryThreshold,
    evaluate,
    issuer_organization,
    parse_threshold,
)
from certvigil.analysis.model import Finding, Severity
from certvigil.targets.target import Target

from .factories import T0, Replay, leaf, report


def _kinds(events, action=None):
    return [e.kind for e in events if action is None or e.action is action]


def test_thresholds_alert_once_each_over_a_certificate_life() -> None:
    """30/14/7/1-day thresholds alert once each in a one-year life, then expired once."""
    cert = leaf("a", not_before=T0, lifetime=timedelta(days=365))
    replay = Replay()
    now = T0
    while now < cert.not_after_utc + timedelta(days=3):
        replay.step(report(cert, now), now)
        now += timedelta(hours=6)
    opened = replay.opened()
    assert [e.threshold for e in opened if e.kind is AlertKind.EXPIRY_THRESHOLD] == [
        "30d",
        "14d",
        "7d",
        "1d",
    ]
    assert _kinds(opened).count(AlertKind.EXPIRED) == 1
    assert [e.severity for e in opened] == [
        Severity.WARNING,
        Severity.WARNING,
        Severity.CRITICAL,
        Severity.CRITICAL,
        Severity.CRITICAL,
    ]
    # Each new crossing supersedes the previous one: one expiry alert open at a time.
    assert sum(a.is_open for a in replay.alerts.values()) == 1


def test_threshold_fires_one_second_after_crossing_not_before() -> None:
    """A 14-day threshold is crossed one second after 14 days remain, not before."""
    cert = leaf("b", not_before=T0, lifetime=timedelta(days=365))
    policy = AlertPolicy(thresholds=(parse_threshold("14d"),))
    crossing = cert.not_after_utc - timedelta(days=14)
    before = evaluate(
        report(cert, crossing - timedelta(seconds=1)),
        EndpointHistory(),
        policy,
        now=crossing - timedelta(seconds=1),
    )
    after_utc = crossing + timedelta(seconds=1)
    after_local = after_utc.astimezone(timezone(timedelta(hours=-5)))
    after = evaluate(report(cert, after_local), EndpointHistory(), policy, now=after_local)
    assert before == ()
    assert [(e.kind, e.threshold) for e in after] == [(AlertKind.EXPIRY_THRESHOLD, "14d")]


def test_first_scan_deep_past_thresholds_raises_only_the_most_urgent() -> None:
    """A certificate first seen with 5 days left raises the 7-day alert only, then 1-day once."""
    cert = leaf("c", not_before=T0, lifetime=timedelta(days=365))
    replay = Replay()
    start = cert.not_after_utc - timedelta(days=5)
    for hour in range(0, 5 * 24 - 1, 3):
        now = start + timedelta(hours=hour)
        replay.step(report(cert, now), now)
    assert [e.threshold for e in replay.opened()] == ["7d", "1d"]


def _acme_life(
    lifetime: timedelta, renew_at_remaining: timedelta, total: timedelta, step: timedelta
):
    """Scan every ``step`` while an ACME client, run every 12 hours, renews on time."""
    replay = Replay()
    cert = leaf("acme-0", not_before=T0, lifetime=lifetime)
    now = T0
    n = 0
    next_client_run = T0 + timedelta(hours=5)
    while now < T0 + total:
        if now >= next_client_run:
            next_client_run += timedelta(hours=12)
            if cert.not_after_utc - now <= renew_at_remaining:
                n += 1
                cert = leaf(f"acme-{n}", not_before=now, lifetime=lifetime)
        replay.step(report(cert, now), now)
        now += step
    return replay, n


def test_ninety_day_acme_certificates_renewed_on_time_raise_no_storm() -> None:
    """90-day certificates renewed with 30 days left for a year raise only 'replaced' notices."""
    replay, renewals = _acme_life(
        timedelta(days=90), timedelta(days=30), timedelta(days=365), timedelta(hours=2)
    )
    assert renewals >= 5
    assert _kinds(replay.events) == [AlertKind.REPLACED] * renewals
    assert all(e.action is EventAction.NOTIFY for e in replay.events)
    assert all(e.severity is Severity.INFO for e in replay.events)


def test_six_day_acme_certificates_renewed_on_time_raise_no_storm() -> None:
    """6-day certificates renewed at half-life for 60 days raise only 'replaced' notices."""
    replay, renewals = _acme_life(
        timedelta(days=6), timedelta(days=3), timedelta(days=60), timedelta(hours=1)
    )
    assert renewals >= 19
    assert _kinds(replay.events) == [AlertKind.REPLACED] * renewals


def test_six_day_certificate_not_renewed_alerts_once_at_one_day_then_expired() -> None:
    """A 6-day certificate left to expire crosses only the 1-day threshold, then expires."""
    cert = leaf("short", not_before=T0, lifetime=timedelta(days=6))
    replay = Replay()
    for hour in range(0, 8 * 24, 1):
        now = T0 + timedelta(hours=hour)
        replay.step(report(cert, now), now)
    assert [(e.kind, e.threshold) for e in replay.opened()] == [
        (AlertKind.EXPIRY_THRESHOLD, "1d"),
        (AlertKind.EXPIRED, None),
    ]


@pytest.mark.parametrize(
    ("lifetime_days", "fires_at_days_left"), [(6, 1.2), (90, 18.0), (398, 79.6)]
)
def test_fractional_threshold_scales_with_lifetime(lifetime_days, fires_at_days_left) -> None:
    """A 20% threshold fires when a fifth of the certificate's own lifetime remains."""
    cert = leaf("f", not_before=T0, lifetime=timedelta(days=lifetime_days))
    policy = AlertPolicy(thresholds=(parse_threshold("20%"),))
    edge = cert.not_after_utc - timedelta(days=fires_at_days_left)
    early = edge - timedelta(seconds=1)
    late = edge + timedelta(seconds=1)
    assert evaluate(report(cert, early), EndpointHistory(), policy, now=early) == ()
    events = evaluate(report(cert, late), EndpointHistory(), policy, now=late)
    assert [(e.kind, e.threshold) for e in events] == [(AlertKind.EXPIRY_THRESHOLD, "20%")]


def test_replacement_resolves_expiry_alerts_of_the_old_certificate() -> None:
    """Replacing a certificate that crossed a threshold resolves its alert and notifies."""
    old = leaf("old", not_before=T0, lifetime=timedelta(days=90))
    replay = Replay()
    now = old.not_after_utc - timedelta(days=10)
    replay.step(report(old, now), now)
    new = leaf("new", not_before=now, lifetime=timedelta(days=90))
    out = replay.step(report(new, now + timedelta(hours=1)), now + timedelta(hours=1))
    assert [(e.action, e.kind) for e in out] == [
        (EventAction.RESOLVE, AlertKind.EXPIRY_THRESHOLD),
        (EventAction.NOTIFY, AlertKind.REPLACED),
    ]
    assert not any(a.is_open for a in replay.alerts.values())


def test_expired_supersedes_threshold_and_resolves_on_replacement() -> None:
    """An expired leaf opens one critical alert that a replacement resolves."""
    old = leaf("x", not_before=T0, lifetime=timedelta(days=30))
    replay = Replay()
    for day in (29, 31, 32):
        now = T0 + timedelta(days=day)
        replay.step(report(old, now), now)
    expired = [e for e in replay.events if e.kind is AlertKind.EXPIRED]
    assert len(expired) == 1 and expired[0].severity is Severity.CRITICAL
    now = T0 + timedelta(days=33)
    new = leaf("y", not_before=now, lifetime=timedelta(days=30))
    out = replay.step(report(new, now), now)
    assert (EventAction.RESOLVE, AlertKind.EXPIRED) in [(e.action, e.kind) for e in out]
    assert not any(a.is_open for a in replay.alerts.values())


def test_issuer_organisation_change_warns_but_intermediate_rotation_does_not() -> None:
    """A new issuing CA is a warning; Let's Encrypt R10 to R11 is a plain replacement."""
    replay = Replay()
    first = leaf("i1", not_before=T0, lifetime=timedelta(days=90))
    replay.step(report(first, T0), T0)
    t1 = T0 + timedelta(days=60)
    rotated = leaf(
        "i2", not_before=t1, lifetime=timedelta(days=90), issuer="CN=R11,O=Let's Encrypt,C=US"
    )
    assert [e.kind for e in replay.step(report(rotated, t1), t1)] == [AlertKind.REPLACED]
    t2 = T0 + timedelta(days=120)
    other = leaf(
        "i3", not_before=t2, lifetime=timedelta(days=90), issuer="CN=Other CA,O=Other Inc,C=DE"
    )
    out = replay.step(report(other, t2), t2)
    assert [(e.action, e.kind, e.severity) for e in out] == [
        (EventAction.OPEN, AlertKind.ISSUER_CHANGED, Severity.WARNING)
    ]


def test_issuer_organization_reads_the_o_attribute() -> None:
    """The issuer's O= value is read, escaped commas kept; a DN without O= is used whole."""
    assert issuer_organization("CN=R11,O=Let's Encrypt,C=US") == "Let's Encrypt"
    assert issuer_organization(r"CN=x,O=Acme\, Inc.,C=US") == r"Acme\, Inc."
    assert issuer_organization("CN=Only Name") == "CN=Only Name"


def test_untrusted_opens_once_and_recovery_resolves() -> None:
    """An untrusted chain opens one alert over many cycles; a trusted chain resolves it."""
    cert = leaf("u", not_before=T0, lifetime=timedelta(days=365))
    replay = Replay()
    for hour in range(5):
        now = T0 + timedelta(hours=hour)
        replay.step(report(cert, now, trusted=False), now)
    now = T0 + timedelta(hours=6)
    replay.step(report(cert, now), now)
    assert [(e.action, e.kind) for e in replay.events] == [
        (EventAction.OPEN, AlertKind.UNTRUSTED),
        (EventAction.RESOLVE, AlertKind.UNTRUSTED),
    ]
    assert "unable to get issuer" in replay.events[0].message


def test_hostname_mismatch_weak_and_revoked_open_and_resolve() -> None:
    """Hostname mismatch, a weak-key finding and a revoked finding each open and recover."""
    cert = leaf("h", not_before=T0, lifetime=timedelta(days=365))
    bad = (
        Finding(code="weak_key", severity=Severity.WARNING, message="RSA 1024 bits", cert_index=0),
        Finding(code="revoked", severity=Severity.CRITICAL, message="revoked", cert_index=0),
    )
    replay = Replay()
    out = replay.step(report(cert, T0, hostname_matches=False, findings=bad), T0)
    assert sorted(e.kind for e in out) == sorted(
        [AlertKind.HOSTNAME_MISMATCH, AlertKind.WEAK, AlertKind.REVOKED]
    )
    assert all(e.action is EventAction.OPEN for e in out)
    later = T0 + timedelta(hours=1)
    assert replay.step(report(cert, later, hostname_matches=False, findings=bad), later) == ()
    fixed = T0 + timedelta(hours=2)
    out = replay.step(report(cert, fixed), fixed)
    assert sorted(e.kind for e in out) == sorted(
        [AlertKind.HOSTNAME_MISMATCH, AlertKind.WEAK, AlertKind.REVOKED]
    )
    assert all(e.action is EventAction.RESOLVE for e in out)


def test_unreachable_after_k_consecutive_failures_and_recovery() -> None:
    """K=3 failures in a row open one alert; a fourth adds none; an answer resolves it."""
    cert = leaf("r", not_before=T0, lifetime=timedelta(days=365))
    replay = Replay()
    replay.step(report(cert, T0), T0)
    counts = []
    for n in range(1, 5):
        now = T0 + timedelta(minutes=5 * n)
        counts.append(len(replay.step(report(None, now), now)))
    assert counts == [0, 0, 1, 0]
    now = T0 + timedelta(hours=1)
    out = replay.step(report(cert, now), now)
    assert [(e.action, e.kind) for e in out] == [(EventAction.RESOLVE, AlertKind.UNREACHABLE)]
    assert "3 scans in a row" in replay.events[0].message


def test_unreachable_counts_reset_between_failures() -> None:
    """Failures broken by a success never reach K."""
    cert = leaf("r2", not_before=T0, lifetime=timedelta(days=365))
    replay = Replay(policy=AlertPolicy(unreachable_after=2))
    pattern = [None, cert, None, cert, None, cert]
    for n, served in enumerate(pattern):
        now = T0 + timedelta(minutes=n)
        replay.step(report(served, now), now)
    assert replay.events == []


def test_per_target_thresholds_replace_global_ones() -> None:
    """A target with its own thresholds uses them instead of the global ones."""
    special = Target(host="db.example.test", port=5432)
    policy = AlertPolicy(target_thresholds={special: (parse_threshold("60d"),)})
    cert = leaf("p", not_before=T0, lifetime=timedelta(days=365))
    now = cert.not_after_utc - timedelta(days=45)
    assert evaluate(report(cert, now), EndpointHistory(), policy, now=now) == ()
    events = evaluate(report(cert, now, target=special), EndpointHistory(), policy, now=now)
    assert [e.threshold for e in events] == ["60d"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", ExpiryThreshold(days=30, severity=Severity.WARNING)),
        ("7", ExpiryThreshold(days=7, severity=Severity.CRITICAL)),
        ("20%", ExpiryThreshold(fraction=0.2, severity=Severity.WARNING)),
        ("2.5%", ExpiryThreshold(fraction=0.025, severity=Severity.CRITICAL)),
    ],
)
def test_parse_threshold_reads_days_and_percentages(text, expected) -> None:
    """Days and percentages parse, with the default severity by urgency."""
    assert parse_threshold(text) == expected
    assert parse_threshold(expected.label) == expected


@pytest.mark.parametrize("text", ["", "100%", "0%", "-3d", "thirty", "5h"])
def test_parse_threshold_refuses_nonsense(text) -> None:
    """Malformed thresholds are refused with a message naming them."""
    with pytest.raises(ValueError, match="expiry threshold"):
        parse_threshold(text)


def test_clock_is_the_injected_now_not_the_report_time() -> None:
    """Expiry is measured from ``now``, whatever the report's own evaluation time says."""
    cert = leaf("n", not_before=T0, lifetime=timedelta(days=365))
    stale = report(cert, T0)
    late = datetime(2026, 12, 30, tzinfo=UTC)
    events = evaluate(stale, EndpointHistory(), AlertPolicy(), now=late)
    assert [e.threshold for e in events] == ["7d"]


def test_must_staple_without_staple_opens_critical_names_the_fix_and_resolves() -> None:
    """A must-staple leaf served without a staple: one critical alert telling how to turn
    stapling on; a staple again resolves it."""
    cert = leaf("ms", not_before=T0, lifetime=timedelta(days=365))
    missing = (
        Finding(
            code="must_staple_not_stapled",
            severity=Severity.CRITICAL,
            message="must-staple leaf, no staple",
            cert_index=0,
        ),
    )
    replay = Replay()
    (opened,) = replay.step(report(cert, T0, findings=missing), T0)
    assert (opened.action, opened.kind, opened.severity) == (
        EventAction.OPEN,
        AlertKind.MUST_STAPLE_MISSING,
        Severity.CRITICAL,
    )
    assert "Fix: turn OCSP stapling on" in opened.message
    later = T0 + timedelta(hours=1)
    assert replay.step(report(cert, later, findings=missing), later) == ()
    fixed = T0 + timedelta(hours=2)
    (resolved,) = replay.step(report(cert, fixed), fixed)
    assert (resolved.action, resolved.kind) == (EventAction.RESOLVE, AlertKind.MUST_STAPLE_MISSING)


def test_no_policy_code_is_a_string_no_analysis_emits() -> None:
    """The codes the weak, protocol and cipher rules listen for are finding codes."""
    from certvigil.alerts.rules import DEFAULT_WEAK_CODES, WEAK_CIPHER_CODES, WEAK_PROTOCOL_FIXES
    from certvigil.analysis.codes import FindingCode

    for code in (*DEFAULT_WEAK_CODES, *WEAK_CIPHER_CODES, *WEAK_PROTOCOL_FIXES):
        assert code in FindingCode.__members__.values()
