"""The inventory's state in the store renders as bounded, parseable Prometheus metrics."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from certvigil.analysis.model import Finding, Severity
from certvigil.integrations.prometheus import Family, MetricType, Sample
from certvigil.integrations.prometheus_store import (
    METRIC_NAMES,
    inventory_exposition,
    render_inventory_metrics,
)
from certvigil.observed.handshake import FailureKind
from certvigil.store import Store
from certvigil.store.metrics_state import EndpointState, InventoryState
from certvigil.store.models import ENDPOINTS
from certvigil.store.records import ObservationStatus
from certvigil.targets.target import StartTLS, Target
from tests.integrations.exposition import parse
from tests.store.factories import NOW, facts, failed_report, ok_report

GOOD = Target(host="good.example", port=443)
WEAK = Target(host="weak.example", port=8443)
MAIL = Target(host="mail.example", port=25, starttls=StartTLS.SMTP)
DOWN = Target(host="down.example", port=443)
V6 = Target(host="2001:db8::1", port=443, sni="v6.example")


def _fill(store: Store) -> None:
    ca = facts("Test CA", not_after_utc=NOW + timedelta(days=3000), is_ca=True)
    store.record_reports(
        [
            ok_report(GOOD, (facts("good.example", not_after_utc=NOW + timedelta(days=40)), ca)),
            ok_report(
                WEAK,
                (facts("weak.example", not_after_utc=NOW + timedelta(days=5, hours=1)),),
                protocol="TLSv1.2",
                is_trusted=False,
                findings=(
                    Finding(code="revoked", severity=Severity.CRITICAL, message="revoked"),
                    Finding(code="protocol_tls10", severity=Severity.WARNING, message="1.0"),
                    Finding(code="protocol_tls11", severity=Severity.WARNING, message="1.1"),
                    Finding(code="expires_soon", severity=Severity.WARNING, message="soon"),
                ),
            ),
            ok_report(
                MAIL,
                (facts("mail.example", not_after_utc=NOW - timedelta(hours=1)),),
                hostname_matches=False,
            ),
            ok_report(V6, (facts("v6.example", not_after_utc=NOW + timedelta(days=90)),)),
        ]
    )
    # Down served a certificate once, then stopped answering.
    store.record_report(
        ok_report(
            DOWN,
            (facts("down.example", not_after_utc=NOW + timedelta(days=20)),),
            at=NOW - timedelta(days=1),
        )
    )
    store.record_report(failed_report(DOWN, kind=FailureKind.TIMEOUT))
    store.record_report(failed_report(DOWN, kind=FailureKind.TIMEOUT))


def test_store_state_renders_every_family(store: Store) -> None:
    """Each endpoint's expiry, trust, name, revocation, protocols and failure come out
    of the store as labelled series, with aggregate counts beside them."""
    # Given: five endpoints with different troubles
    _fill(store)
    # When: the inventory renders
    parsed = parse(render_inventory_metrics(store, now=NOW))
    # Then
    assert all(name in parsed.types for name in METRIC_NAMES)

    def key(endpoint: str, sni: str = "", starttls: str = "") -> dict[str, str]:
        return {"endpoint": endpoint, "sni": sni, "starttls": starttls}

    good, weak = key("good.example:443"), key("weak.example:8443")
    mail, down = key("mail.example:25", starttls="smtp"), key("down.example:443")
    v6 = key("[2001:db8::1]:443", sni="v6.example")
    assert parsed.value("certvigil_inventory_endpoints", status="ok") == 4
    assert parsed.value("certvigil_inventory_endpoints", status="failed") == 1
    remaining = "certvigil_endpoint_expiry_remaining_days"
    assert parsed.value(remaining, **good) == 40
    assert parsed.value(remaining, **weak) == 5
    assert parsed.value(remaining, **mail) == -1
    assert parsed.value(remaining, **v6) == 90
    # The failing endpoint keeps the expiry of what it served last.
    assert parsed.value(remaining, **down) == 20
    assert parsed.value("certvigil_endpoint_up", **down) == 0
    assert parsed.value("certvigil_endpoint_consecutive_failures", **down) == 2
    assert parsed.value("certvigil_endpoint_scan_failure_info", **down, kind="timeout") == 1
    assert parsed.value("certvigil_scan_errors", kind="timeout") == 1
    assert parsed.value("certvigil_endpoint_leaf_expiry_timestamp_seconds", **good) == int(
        (NOW + timedelta(days=40)).timestamp()
    )
    # The CA expires later than the leaf: the earliest over the chain is the leaf's.
    assert parsed.value("certvigil_endpoint_earliest_cert_expiry_timestamp_seconds", **good) == int(
        (NOW + timedelta(days=40)).timestamp()
    )
    assert parsed.value("certvigil_endpoint_chain_trusted", **good) == 1
    assert parsed.value("certvigil_endpoint_chain_trusted", **weak) == 0
    assert parsed.value("certvigil_endpoint_hostname_match", **mail) == 0
    assert parsed.value("certvigil_endpoint_revoked", **weak) == 1
    assert parsed.value("certvigil_endpoint_revoked", **good) == 0
    assert parsed.value("certvigil_endpoint_severity", **weak) == 3
    assert parsed.value("certvigil_endpoint_severity", **good) == 0
    accepted = {
        labels["version"]
        for labels in parsed.labels_of("certvigil_endpoint_weak_protocol_accepted")
        if labels["endpoint"] == "weak.example:8443"
    }
    assert accepted == {"TLS 1.0", "TLS 1.1"}
    assert (
        parsed.value(
            "certvigil_endpoint_findings", **weak, code="protocol_tls10", severity="warning"
        )
        == 1
    )
    assert parsed.value("certvigil_inventory_findings", code="revoked", severity="critical") == 1
    assert parsed.value("certvigil_endpoint_tls_version_info", **weak, version="TLS 1.2") == 1
    # A failed endpoint's old verdicts are not repeated as if current.
    assert not [
        labels
        for labels in parsed.labels_of("certvigil_endpoint_chain_trusted")
        if labels["endpoint"] == "down.example:443"
    ]


def test_alerts_and_deliveries_are_counted(store: Store) -> None:
    """Active alerts count by severity and state; failed and retrying deliveries show."""
    store.open_alert_if_absent(
        dedup_key="a",
        kind="expiry",
        severity=Severity.CRITICAL,
        summary="s",
        now=NOW,
        routes=("mail-ops", "webhook"),
    )
    second, _ = store.open_alert_if_absent(
        dedup_key="b", kind="expiry", severity=Severity.WARNING, summary="s", now=NOW
    )
    store.acknowledge_alert(second.id, by="ops", now=NOW)
    third, _ = store.open_alert_if_absent(
        dedup_key="c", kind="expiry", severity=Severity.WARNING, summary="s", now=NOW
    )
    store.resolve_alert(third.id, now=NOW)
    claimed = {d.route: d for d in store.claim_due_deliveries(now=NOW)}
    store.mark_failed(claimed["mail-ops"].id, next_attempt_at=NOW, error="refused", give_up=True)
    store.mark_failed(claimed["webhook"].id, next_attempt_at=NOW, error="503")
    parsed = parse(render_inventory_metrics(store, now=NOW))
    assert parsed.value("certvigil_alerts_active", severity="critical", state="open") == 1
    assert parsed.value("certvigil_alerts_active", severity="warning", state="acknowledged") == 1
    assert len(parsed.labels_of("certvigil_alerts_active")) == 2
    assert parsed.value("certvigil_deliveries", status="failed") == 1
    assert parsed.value("certvigil_deliveries", status="pending") == 1
    assert parsed.value("certvigil_deliveries_failed", route="mail-ops") == 1
    assert parsed.value("certvigil_deliveries_retrying") == 1


def test_empty_store_still_declares_every_family(store: Store) -> None:
    """An empty inventory renders every family (zero counts), not an empty page."""
    parsed = parse(render_inventory_metrics(store, now=NOW))
    assert all(name in parsed.types for name in METRIC_NAMES)
    assert parsed.value("certvigil_inventory_endpoints", status="ok") == 0


def test_label_values_from_stored_data_are_bounded() -> None:
    """Odd stored codes, severities and kinds fold into "other": no label set grows
    with what a database row holds."""
    odd = EndpointState(
        host="h",
        port=1,
        sni="",
        starttls="",
        status=ObservationStatus.OK,
        consecutive_failures=0,
        observed_at_utc=NOW,
        leaf_not_after_utc=None,
        earliest_not_after_utc=None,
        failure_kind=None,
        is_trusted=None,
        hostname_matches=None,
        verdict="bogus",
        protocol="QUIC-ish",
        findings=(('x"}\n', "dire"), ("A" * 500, "critical")),
    )
    state = InventoryState(
        endpoints=(odd,),
        active_alerts={("nope", "weird"): 2},
        deliveries={"lost": 3},
        failed_deliveries_by_route={"r" * 500: 1},
        retrying_deliveries=0,
    )
    extra = Family(
        name="certvigil_ct_log_backlog_entries",
        type=MetricType.GAUGE,
        help="h",
        samples=(Sample((("log", "argon"),), 7),),
    )
    parsed = parse(inventory_exposition(state, now=NOW, extra=[extra]))
    assert parsed.labels_of("certvigil_endpoint_findings") == [
        {"endpoint": "h:1", "sni": "", "starttls": "", "code": "other", "severity": "critical"},
        {"endpoint": "h:1", "sni": "", "starttls": "", "code": "other", "severity": "other"},
    ]
    assert parsed.value("certvigil_alerts_active", severity="other", state="other") == 2
    assert parsed.value("certvigil_deliveries", status="other") == 3
    (route,) = parsed.labels_of("certvigil_deliveries_failed")
    assert len(route["route"]) == 100
    assert (
        parsed.value(
            "certvigil_endpoint_tls_version_info",
            endpoint="h:1",
            sni="",
            starttls="",
            version="other",
        )
        == 1
    )
    assert parsed.value("certvigil_ct_log_backlog_entries", log="argon") == 7


def test_a_stored_grade_is_a_label_and_a_score(store: Store) -> None:
    """The grade the daemon's grade check stored on an endpoint comes out as both."""
    _fill(store)
    with store.write() as connection:
        connection.execute(
            update(ENDPOINTS).where(ENDPOINTS.c.host == "weak.example").values(grade="B")
        )
    parsed = parse(render_inventory_metrics(store, now=NOW))
    weak = {"endpoint": "weak.example:8443", "sni": "", "starttls": ""}
    assert parsed.value("certvigil_endpoint_grade_info", **weak, grade="B") == 1
    assert parsed.value("certvigil_endpoint_grade_score", **weak) == 6
    assert parsed.labels_of("certvigil_endpoint_grade_score") == [weak]
