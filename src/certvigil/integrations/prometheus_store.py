"""The inventory's state as Prometheus metric families, for ``/metrics``.

:func:`inventory_exposition` is pure: an :class:`~certvigil.store.metrics_state.InventoryState`
and ``now`` in, exposition text out. :func:`render_inventory_metrics` reads the state
from a :class:`~certvigil.store.Store` in one read transaction and renders it; the
exporter's ``/metrics`` calls it when a database is configured, and ``certvigil serve``
can mount the same function.

Per-endpoint series carry ``endpoint`` (``host:port``, ``[v6]:port``), ``sni`` and
``starttls`` (empty when not set), so one series per inventory endpoint: bounded by the
inventory, as blackbox_exporter's are by its targets. Every other label comes from a
fixed list (severities, failure kinds, protocol versions, alert states, delivery
statuses) or is cut to a safe form (finding codes, delivery routes), so no label set
grows with what a server sends.

More state plugs in through ``extra_sources``: a callable reading its own tables on the
same connection and returning families. The CT monitor's tables are meant to arrive
that way (``certvigil_ct_log_backlog_entries{log}``,
``certvigil_ct_log_entries_per_second{log}``; see docs/monitoring.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from certvigil.analysis.model import Severity
from certvigil.integrations.prometheus import (
    Family,
    endpoint_label,
    escape_help,
    escape_label_value,
    render,
)
from certvigil.integrations.versions import TLS_VERSION_NAMES
from certvigil.observed.handshake import FailureKind
from certvigil.store.api import Store
from certvigil.store.metrics_state import EndpointState, InventoryState, inventory_state
from certvigil.store.records import AlertState, DeliveryStatus, ObservationStatus

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = [
    "METRIC_NAMES",
    "MetricsSource",
    "inventory_exposition",
    "render_inventory_metrics",
]

MetricsSource = Callable[["Connection", datetime], Iterable[Family]]
"""A reader of further state (CT logs, …): a connection and ``now`` in, families out."""

_SECONDS_PER_DAY = 86400
_CODE = re.compile(r"[a-z0-9_]{1,64}")
_ROUTE_LIMIT = 100
_SEVERITIES = frozenset(s.value for s in Severity)
_KINDS = frozenset(k.value for k in FailureKind)
_ALERT_STATES = frozenset(s.value for s in AlertState)
_DELIVERY_STATUSES = frozenset(s.value for s in DeliveryStatus)
_WEAK_PROTOCOL_CODES = {
    "protocol_sslv2": "SSLv2",
    "protocol_sslv3": "SSLv3",
    "protocol_tls10": "TLS 1.0",
    "protocol_tls11": "TLS 1.1",
}
_RANK = {s.value: s.rank for s in Severity}
_GRADE_SCORE = {
    grade: score for score, grade in enumerate(("M", "T", "F", "E", "D", "C", "B", "A-", "A", "A+"))
}

METRIC_NAMES = (
    "certvigil_inventory_endpoints",
    "certvigil_endpoint_up",
    "certvigil_endpoint_last_observed_timestamp_seconds",
    "certvigil_endpoint_consecutive_failures",
    "certvigil_endpoint_leaf_expiry_timestamp_seconds",
    "certvigil_endpoint_earliest_cert_expiry_timestamp_seconds",
    "certvigil_endpoint_expiry_remaining_days",
    "certvigil_endpoint_chain_trusted",
    "certvigil_endpoint_hostname_match",
    "certvigil_endpoint_revoked",
    "certvigil_endpoint_grade_info",
    "certvigil_endpoint_grade_score",
    "certvigil_endpoint_severity",
    "certvigil_endpoint_findings",
    "certvigil_endpoint_weak_protocol_accepted",
    "certvigil_endpoint_tls_version_info",
    "certvigil_endpoint_scan_failure_info",
    "certvigil_inventory_findings",
    "certvigil_scan_errors",
    "certvigil_alerts_active",
    "certvigil_deliveries",
    "certvigil_deliveries_failed",
    "certvigil_deliveries_retrying",
)
"""Every family :func:`inventory_exposition` writes, in its order."""


def _code(text: str) -> str:
    return text if _CODE.fullmatch(text) else "other"


def _one_of(text: str | None, allowed: frozenset[str], other: str = "other") -> str:
    return text if text in allowed else other


def _number(value: float) -> str:
    if isinstance(value, int) or value == int(value):
        return str(int(value))
    return repr(float(value))


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f'{k}="{escape_label_value(v)}"' for k, v in pairs)


class _Lines:
    """Sample lines per family name, in :data:`METRIC_NAMES` order.

    Lines are written as text at once (each endpoint's labels escaped once, not once
    per series): at 10,000 endpoints, building ``Sample`` objects and rendering them
    took most of the scrape.
    """

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {name: [] for name in METRIC_NAMES}

    def add(self, name: str, labels: str, value: float) -> None:
        """One sample; ``labels`` already written (``a="b",c="d"``) or empty."""
        if labels:
            self.lines[name].append(f"{name}{{{labels}}} {_number(value)}")
        else:
            self.lines[name].append(f"{name} {_number(value)}")


def _endpoint_samples(out: _Lines, state: EndpointState, now: datetime) -> None:
    key = _labels(
        (
            ("endpoint", endpoint_label(state.host, state.port)),
            ("sni", state.sni),
            ("starttls", state.starttls),
        )
    )
    out.add("certvigil_endpoint_up", key, int(state.status is ObservationStatus.OK))
    if state.observed_at_utc is not None:
        out.add(
            "certvigil_endpoint_last_observed_timestamp_seconds",
            key,
            int(state.observed_at_utc.timestamp()),
        )
    out.add("certvigil_endpoint_consecutive_failures", key, state.consecutive_failures)
    if state.leaf_not_after_utc is not None:
        out.add(
            "certvigil_endpoint_leaf_expiry_timestamp_seconds",
            key,
            int(state.leaf_not_after_utc.timestamp()),
        )
    if state.earliest_not_after_utc is not None:
        out.add(
            "certvigil_endpoint_earliest_cert_expiry_timestamp_seconds",
            key,
            int(state.earliest_not_after_utc.timestamp()),
        )
        # Whole days, rounded down, as `certvigil check` prints them: -1 once expired.
        remaining_s = (state.earliest_not_after_utc - now).total_seconds()
        out.add(
            "certvigil_endpoint_expiry_remaining_days", key, int(remaining_s // _SECONDS_PER_DAY)
        )
    if state.failure_kind is not None:
        kind = _one_of(state.failure_kind, _KINDS)
        out.add("certvigil_endpoint_scan_failure_info", f'{key},kind="{kind}"', 1)
        return
    # The verdicts below are the latest successful observation's; a failed one has none.
    if state.is_trusted is not None:
        out.add("certvigil_endpoint_chain_trusted", key, int(state.is_trusted))
    if state.hostname_matches is not None:
        out.add("certvigil_endpoint_hostname_match", key, int(state.hostname_matches))
    out.add("certvigil_endpoint_revoked", key, int(any(c == "revoked" for c, _ in state.findings)))
    if state.grade is not None:
        grade = state.grade if state.grade in _GRADE_SCORE else "other"
        out.add("certvigil_endpoint_grade_info", f'{key},grade="{grade}"', 1)
        out.add("certvigil_endpoint_grade_score", key, _GRADE_SCORE.get(state.grade, 0))
    if state.verdict is not None:
        out.add("certvigil_endpoint_severity", key, _RANK.get(state.verdict, 0))
    if not state.findings:
        if state.protocol is not None:
            version = TLS_VERSION_NAMES.get(state.protocol, "other")
            out.add("certvigil_endpoint_tls_version_info", f'{key},version="{version}"', 1)
        return
    counts: dict[tuple[str, str], int] = {}
    for code, severity in state.findings:
        pair = (_code(code), _one_of(severity, _SEVERITIES))
        counts[pair] = counts.get(pair, 0) + 1
    for (code, severity), count in sorted(counts.items()):
        out.add("certvigil_endpoint_findings", f'{key},code="{code}",severity="{severity}"', count)
    weak = sorted({_WEAK_PROTOCOL_CODES[c] for c, _ in state.findings if c in _WEAK_PROTOCOL_CODES})
    for version in weak:
        out.add("certvigil_endpoint_weak_protocol_accepted", f'{key},version="{version}"', 1)
    if state.protocol is not None:
        version = TLS_VERSION_NAMES.get(state.protocol, "other")
        out.add("certvigil_endpoint_tls_version_info", f'{key},version="{version}"', 1)


_HELP = {
    "certvigil_inventory_endpoints": "Endpoints in the inventory, by latest status",
    "certvigil_endpoint_up": "1 when the endpoint's latest observation completed a handshake",
    "certvigil_endpoint_last_observed_timestamp_seconds": "When the endpoint was last observed",
    "certvigil_endpoint_consecutive_failures": "Failed observations since the last good one",
    "certvigil_endpoint_leaf_expiry_timestamp_seconds": "Expiry (Unix time) of the leaf served",
    "certvigil_endpoint_earliest_cert_expiry_timestamp_seconds": (
        "Earliest expiry (Unix time) over the chain the endpoint serves"
    ),
    "certvigil_endpoint_expiry_remaining_days": (
        "Whole days until the earliest certificate served expires (negative once expired)"
    ),
    "certvigil_endpoint_chain_trusted": "1 when the served chain verifies to a trusted anchor",
    "certvigil_endpoint_hostname_match": "1 when the leaf covers the name checked",
    "certvigil_endpoint_revoked": "1 when the latest observation found a revoked certificate",
    "certvigil_endpoint_grade_info": "The latest grade (protocols and grade checks)",
    "certvigil_endpoint_grade_score": (
        "The latest grade as a number: A+ 9, A 8, A- 7, B 6, C 5, D 4, E 3, F 2, T 1, M 0"
    ),
    "certvigil_endpoint_severity": "Worst finding: 0 ok, 1 info, 2 warning, 3 critical",
    "certvigil_endpoint_findings": "Findings of the latest observation, by code and severity",
    "certvigil_endpoint_weak_protocol_accepted": (
        "1 for each weak protocol version the endpoint accepted (deep checks)"
    ),
    "certvigil_endpoint_tls_version_info": "The protocol version negotiated",
    "certvigil_endpoint_scan_failure_info": "Why the latest observation failed",
    "certvigil_inventory_findings": "Endpoints whose latest observation has a finding",
    "certvigil_scan_errors": "Endpoints whose latest observation failed, by failure kind",
    "certvigil_alerts_active": "Alerts not yet resolved, by severity and state",
    "certvigil_deliveries": "Notifications in the outbox, by status",
    "certvigil_deliveries_failed": "Notifications given up on, by route",
    "certvigil_deliveries_retrying": "Notifications due again after a failed attempt",
}


def inventory_exposition(
    state: InventoryState, *, now: datetime, extra: Sequence[Family] = ()
) -> str:
    """The exposition text of an inventory state.

    Args:
        state: What :func:`~certvigil.store.metrics_state.inventory_state` read.
        now: The time remaining days are counted from (aware UTC).
        extra: Families from further sources, appended as they are.

    Returns:
        Text format 0.0.4: the families of :data:`METRIC_NAMES` (empty ones
        declared too, so a family's absence never reads as an outage), then ``extra``.
    """
    out = _Lines()
    by_status: dict[str, int] = {s.value: 0 for s in ObservationStatus}
    findings: dict[tuple[str, str], int] = {}
    errors: dict[str, int] = {}
    for endpoint in state.endpoints:
        by_status[endpoint.status.value] += 1
        _endpoint_samples(out, endpoint, now)
        if endpoint.failure_kind is not None:
            kind = _one_of(endpoint.failure_kind, _KINDS)
            errors[kind] = errors.get(kind, 0) + 1
        else:
            for pair in {(_code(c), _one_of(s, _SEVERITIES)) for c, s in endpoint.findings}:
                findings[pair] = findings.get(pair, 0) + 1
    for status, count in by_status.items():
        out.add("certvigil_inventory_endpoints", f'status="{status}"', count)
    for (code, severity), count in sorted(findings.items()):
        out.add("certvigil_inventory_findings", f'code="{code}",severity="{severity}"', count)
    for kind, count in sorted(errors.items()):
        out.add("certvigil_scan_errors", f'kind="{kind}"', count)
    alerts: dict[tuple[str, str], int] = {}
    for (severity, alert_state), count in state.active_alerts.items():
        pair = (_one_of(severity, _SEVERITIES), _one_of(alert_state, _ALERT_STATES))
        alerts[pair] = alerts.get(pair, 0) + count
    for (severity, alert_state), count in sorted(alerts.items()):
        out.add("certvigil_alerts_active", f'severity="{severity}",state="{alert_state}"', count)
    deliveries: dict[str, int] = {s.value: 0 for s in DeliveryStatus}
    for status, count in state.deliveries.items():
        key = _one_of(status, _DELIVERY_STATUSES)
        deliveries[key] = deliveries.get(key, 0) + count
    for status, count in deliveries.items():
        out.add("certvigil_deliveries", f'status="{status}"', count)
    for route, count in sorted(state.failed_deliveries_by_route.items()):
        out.add("certvigil_deliveries_failed", _labels((("route", route[:_ROUTE_LIMIT]),)), count)
    out.add("certvigil_deliveries_retrying", "", state.retrying_deliveries)
    parts: list[str] = []
    for name, lines in out.lines.items():
        parts.append(f"# HELP {name} {escape_help(_HELP[name])}")
        parts.append(f"# TYPE {name} gauge")
        parts.extend(lines)
    text = "\n".join(parts) + "\n"
    return text + render(extra) if extra else text


def render_inventory_metrics(
    store: Store, *, now: datetime, extra_sources: Sequence[MetricsSource] = ()
) -> str:
    """The exposition text of the store's inventory state.

    Args:
        store: The inventory.
        now: The time remaining days are counted from (aware UTC).
        extra_sources: Further readers, run on the same read transaction.

    Returns:
        Text exposition format 0.0.4.

    Raises:
        StoreError: The database could not be read.
    """
    with store.read() as connection:
        state = inventory_state(connection)
        extra = [family for source in extra_sources for family in source(connection, now)]
    return inventory_exposition(state, now=now, extra=extra)
