"""Endpoint reports as Prometheus text exposition (format 0.0.4), blackbox_exporter-compatible.

Pure: :func:`probe_families` turns one report into metric families and :func:`render`
writes families as exposition text. The ``probe_*`` names, labels and meanings follow
blackbox_exporter's TLS metrics, so its dashboards and rules keep working:

* ``probe_success``: 1 when the handshake succeeded, the chain verified and the
  certificate matches the name, which is when blackbox_exporter's TLS probe (which
  verifies) succeeds; the ``certvigil_*`` metrics say which part failed.
* ``probe_duration_seconds``: the whole probe, as the exporter measured it.
* ``probe_ssl_earliest_cert_expiry``: earliest notAfter (Unix seconds) over the
  certificates the server sent, trusted or not.
* ``probe_ssl_last_chain_expiry_timestamp_seconds``: earliest notAfter over the verified
  path; only when the chain verified (blackbox_exporter has no verified chain then).
* ``probe_ssl_last_chain_info{fingerprint_sha256,subject,issuer,subjectalternative,
  serialnumber}``: the leaf; certvigil sends it for untrusted leaves too.
* ``probe_tls_version_info{version}`` (``TLS 1.3``), ``probe_tls_cipher_info{cipher}``
  (the IANA name, as Go's ``tls.CipherSuiteName``).

certvigil's own metrics carry what blackbox_exporter cannot tell: time left, chain
trust, hostname match, findings by code and severity, revocation and the grade. Every
label set is bounded: codes and severities are fixed lists, one ``_info`` series each.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from certvigil.analysis.model import EndpointReport
from certvigil.integrations.versions import TLS_VERSION_NAMES
from certvigil.tls.cipher_suites import SUITES

__all__ = [
    "CONTENT_TYPE",
    "Family",
    "MetricType",
    "Sample",
    "endpoint_label",
    "escape_help",
    "escape_label_value",
    "failed_probe_families",
    "probe_families",
    "render",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of the text exposition format."""

_LABEL_LIMIT = 1024
"""Longest label value, in characters (a certificate subject can be made huge)."""

_IANA_BY_OPENSSL = {suite.openssl_name: suite.iana_name for suite in SUITES.values()}


class MetricType(StrEnum):
    """The metric types of the exposition format used here."""

    GAUGE = "gauge"
    COUNTER = "counter"


@dataclass(frozen=True, slots=True)
class Sample:
    """One series' value: labels (name, value) and the number."""

    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Family:
    """A metric family: name, type, help and its samples."""

    name: str
    type: MetricType
    help: str
    samples: tuple[Sample, ...] = field(default_factory=tuple)


def endpoint_label(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets, as Prometheus writes instances."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def escape_label_value(value: str) -> str:
    """A label value for the text format: ``\\``, ``"`` and newline escaped, length bounded."""
    if len(value) > _LABEL_LIMIT:
        value = value[: _LABEL_LIMIT - 3] + "..."
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """A HELP text for the text format: ``\\`` and newline escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _value(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return repr(float(number))


def render(families: Iterable[Family]) -> str:
    """The exposition text of ``families`` (each name once, in the order given)."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type.value}")
        for sample in family.samples:
            labels = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in sample.labels)
            name = f"{family.name}{{{labels}}}" if labels else family.name
            lines.append(f"{name} {_value(sample.value)}")
    return "\n".join(lines) + "\n"


def _gauge(name: str, help_text: str, value: float, **labels: str) -> Family:
    return Family(
        name=name,
        type=MetricType.GAUGE,
        help=help_text,
        samples=(Sample(tuple(labels.items()), value),),
    )


def _blackbox_families(report: EndpointReport) -> list[Family]:
    families: list[Family] = []
    if report.certificates:
        earliest = min(c.not_after_utc for c in report.certificates)
        families.append(
            _gauge(
                "probe_ssl_earliest_cert_expiry",
                "Returns earliest SSL cert expiry in unixtime",
                earliest.timestamp(),
            )
        )
    chain = report.chain
    if chain is not None and chain.is_trusted:
        on_path = [c for c in report.certificates if c.sha256_hex in chain.verified_path_sha256]
        if on_path:
            families.append(
                _gauge(
                    "probe_ssl_last_chain_expiry_timestamp_seconds",
                    "Returns last SSL chain expiry in timestamp",
                    min(c.not_after_utc for c in on_path).timestamp(),
                )
            )
    leaf = report.leaf
    if leaf is not None:
        families.append(
            _gauge(
                "probe_ssl_last_chain_info",
                "Contains SSL leaf certificate information",
                1,
                fingerprint_sha256=leaf.sha256_hex,
                subject=leaf.subject,
                issuer=leaf.issuer,
                subjectalternative=",".join(leaf.san_dns),
                serialnumber=leaf.serial_hex,
            )
        )
    observation = report.observation
    if observation is not None:
        version = TLS_VERSION_NAMES.get(observation.protocol, "unknown")
        families.append(
            _gauge("probe_tls_version_info", "Returns the TLS version used", 1, version=version)
        )
        cipher = _IANA_BY_OPENSSL.get(observation.cipher, observation.cipher)
        families.append(
            _gauge("probe_tls_cipher_info", "Returns the TLS cipher negotiated", 1, cipher=cipher)
        )
    return families


def _certvigil_families(report: EndpointReport) -> list[Family]:
    families: list[Family] = []
    leaf = report.leaf
    if leaf is not None:
        families.append(
            _gauge(
                "certvigil_leaf_expiry_remaining_seconds",
                "Seconds until the leaf certificate expires (negative once expired)",
                (leaf.not_after_utc - report.evaluated_at_utc).total_seconds(),
            )
        )
    if report.chain is not None:
        families.append(
            _gauge(
                "certvigil_chain_trusted",
                "1 when the served chain verifies to a trusted anchor",
                1 if report.chain.is_trusted else 0,
            )
        )
    if report.hostname_matches is not None:
        families.append(
            _gauge(
                "certvigil_hostname_match",
                "1 when the leaf covers the name checked",
                1 if report.hostname_matches else 0,
            )
        )
    counts: dict[tuple[str, str], int] = {}
    for finding in report.findings:
        key = (finding.code, finding.severity.value)
        counts[key] = counts.get(key, 0) + 1
    families.append(
        Family(
            name="certvigil_findings",
            type=MetricType.GAUGE,
            help="Findings on the endpoint, by code and severity",
            samples=tuple(
                Sample((("code", code), ("severity", severity)), count)
                for (code, severity), count in sorted(counts.items())
            ),
        )
    )
    worst = report.verdict if report.failure is None else None
    if worst is not None:
        families.append(
            _gauge(
                "certvigil_severity",
                "Worst finding: 0 ok, 1 info, 2 warning, 3 critical",
                worst.rank,
            )
        )
    if report.revocation is not None:
        families.append(
            _gauge(
                "certvigil_revoked",
                "1 when a certificate of the served chain is revoked (revocation checked)",
                1 if report.revocation.is_revoked else 0,
            )
        )
    if report.deep is not None:
        grade = report.deep.grade
        families.append(
            _gauge("certvigil_grade_info", "The SSL Labs-style grade", 1, grade=grade.grade)
        )
        families.append(
            _gauge("certvigil_grade_score", "The grade's numeric score (0-100)", grade.score)
        )
        families.append(
            Family(
                name="certvigil_tls_protocol_accepted",
                type=MetricType.GAUGE,
                help="1 for each protocol version the endpoint accepts",
                samples=tuple(
                    Sample((("version", TLS_VERSION_NAMES.get(str(p), str(p))),), 1)
                    for p in report.deep.tls_config.protocols
                ),
            )
        )
    if report.failure is not None:
        families.append(
            _gauge(
                "certvigil_probe_failure_info",
                "Why the endpoint could not be observed",
                1,
                kind=report.failure.kind.value,
            )
        )
    return families


def probe_families(report: EndpointReport, *, duration_s: float) -> list[Family]:
    """The families a ``/probe`` answers for one report.

    Args:
        report: The endpoint's report.
        duration_s: How long the probe took, measured by the caller.

    Returns:
        ``probe_success`` and ``probe_duration_seconds`` first, then the TLS families
        and certvigil's own.
    """
    success = (
        report.failure is None
        and report.chain is not None
        and report.chain.is_trusted
        and report.hostname_matches is True
    )
    families = [
        _gauge("probe_success", "Displays whether or not the probe was a success", int(success)),
        _gauge(
            "probe_duration_seconds",
            "Returns how long the probe took to complete in seconds",
            duration_s,
        ),
    ]
    return [*families, *_blackbox_families(report), *_certvigil_families(report)]


def failed_probe_families(*, duration_s: float, reason_kind: str) -> list[Family]:
    """The families of a probe that produced no report (its time limit passed)."""
    return [
        _gauge("probe_success", "Displays whether or not the probe was a success", 0),
        _gauge(
            "probe_duration_seconds",
            "Returns how long the probe took to complete in seconds",
            duration_s,
        ),
        _gauge(
            "certvigil_probe_failure_info",
            "Why the endpoint could not be observed",
            1,
            kind=reason_kind,
        ),
    ]
