"""Zabbix's side of certvigil: low-level discovery JSON and the master item's document.

Pure: :func:`discovery_document` turns endpoints into a low-level discovery (LLD)
document, :func:`item_document` one endpoint's report into the JSON a master item
holds, and :func:`item_value` picks one key out of it for a plain item. The template
``contrib/zabbix/certvigil_template.yaml`` reads the document with JSONPath
preprocessing in dependent items, so one scan feeds every item of an endpoint.

Numbers only where Zabbix stores numbers: a state that was not checked (revocation
without the ``revocation`` module, protocols without ``deep``) is ``2``, not null, so
the value maps show "not checked" and no trigger fires on it; what a failed probe
cannot know is left out of the document, so the dependent item's JSONPath finds
nothing and the template discards the value (``error_handler: DISCARD_VALUE``)
rather than storing a false zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from certvigil.analysis.model import EndpointReport
from certvigil.integrations.prometheus import endpoint_label
from certvigil.integrations.versions import TLS_VERSION_NAMES
from certvigil.tls.cipher_suites import SUITES
from certvigil.tls.records import TlsProtocol

__all__ = [
    "ITEM_KEYS",
    "NOT_CHECKED",
    "DiscoveredEndpoint",
    "discovery_document",
    "item_document",
    "item_value",
]

NOT_CHECKED = 2
"""The value of a yes/no item whose check did not run (value map "not checked")."""

_TEXT_LIMIT = 1024
_WEAK = (TlsProtocol.SSL_2_0, TlsProtocol.SSL_3_0, TlsProtocol.TLS_1_0, TlsProtocol.TLS_1_1)
_IANA_BY_OPENSSL = {suite.openssl_name: suite.iana_name for suite in SUITES.values()}

ITEM_KEYS: Mapping[str, str] = {
    "success": "1 when the handshake succeeded, the chain verified and the name matched",
    "error": "why the endpoint could not be observed ('' when it was)",
    "error_kind": "the failure kind (connection_refused, timeout, ...; '' when none)",
    "days_left": "whole days until the earliest served certificate expires",
    "leaf_days_left": "whole days until the leaf expires",
    "not_after": "the leaf's expiry, Unix seconds",
    "earliest_not_after": "the earliest expiry over the served chain, Unix seconds",
    "trusted": "1 when the chain verifies to a trusted anchor",
    "chain_error": "why the chain does not verify ('' when it does)",
    "hostname_match": "1 when the leaf covers the name checked",
    "revoked": "1 revoked, 0 not revoked, 2 not checked",
    "weak_protocol": "1 when SSLv2/3 or TLS 1.0/1.1 is accepted, 0 not, 2 not checked",
    "weak_protocols": "the weak protocol versions accepted, comma-separated",
    "tls_version": "the protocol negotiated (TLS 1.3, ...)",
    "cipher": "the cipher suite negotiated (IANA name)",
    "grade": "the SSL Labs-style grade ('' unless the deep module ran)",
    "severity": "worst finding: 0 ok, 1 info, 2 warning, 3 critical",
    "problems": "the warning and critical findings, most severe first, '; '-separated",
    "findings": "number of findings",
    "subject": "the leaf's subject (RFC 4514)",
    "issuer": "the leaf's issuer (RFC 4514)",
    "serial": "the leaf's serial number (hex)",
    "fingerprint_sha256": "the leaf's SHA-256 fingerprint (hex)",
    "san": "the leaf's DNS names, comma-separated",
    "chain_length": "certificates the server sent",
    "handshake_seconds": "the TLS handshake's duration",
    "duration_seconds": "the whole probe's duration",
}
"""Every key of :func:`item_document` besides ``target``, ``sni`` and ``starttls``,
with its meaning (``certvigil zabbix get HOST:PORT KEY`` takes these)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveredEndpoint:
    """One endpoint for low-level discovery.

    Attributes:
        host: Host name or address.
        port: TCP port.
        sni: SNI sent, ``""`` for the default.
        starttls: STARTTLS protocol, ``""`` for direct TLS.
        tags: Labels from the configuration or the store.
    """

    host: str
    port: int
    sni: str = ""
    starttls: str = ""
    tags: tuple[str, ...] = ()


def _text(value: str) -> str:
    return value if len(value) <= _TEXT_LIMIT else value[: _TEXT_LIMIT - 3] + "..."


def discovery_document(endpoints: Iterable[DiscoveredEndpoint]) -> dict[str, Any]:
    """The LLD document: ``{"data": [{"{#HOST}": ..., ...}, ...]}``.

    Each row has ``{#HOST}``, ``{#PORT}``, ``{#SNI}``, ``{#STARTTLS}`` (``""`` when
    not set), ``{#TARGET}`` (``host:port``, IPv6 in brackets: what ``zabbix get``
    takes), ``{#NAME}`` (the name the certificate must cover) and ``{#TAGS}``
    (comma-separated), plus a ``tags`` list of ``{"tag": ..., "value": ...}`` for LLD
    rules that map tags.
    """
    rows = []
    for endpoint in endpoints:
        rows.append(
            {
                "{#HOST}": endpoint.host,
                "{#PORT}": str(endpoint.port),
                "{#SNI}": endpoint.sni,
                "{#STARTTLS}": endpoint.starttls,
                "{#TARGET}": endpoint_label(endpoint.host, endpoint.port),
                "{#NAME}": endpoint.sni or endpoint.host,
                "{#TAGS}": ",".join(endpoint.tags),
                "tags": [{"tag": "certvigil", "value": tag} for tag in endpoint.tags],
            }
        )
    return {"data": rows}


def _days(not_after: datetime, now: datetime) -> int:
    return int((not_after - now).total_seconds() // 86400)


def item_document(report: EndpointReport, *, duration_s: float) -> dict[str, Any]:
    """One endpoint's state as the master item's JSON object (keys: :data:`ITEM_KEYS`).

    Args:
        report: The endpoint's report.
        duration_s: How long the probe took, measured by the caller.

    Returns:
        A JSON-ready dict; values a failed probe cannot know are left out.
    """
    target = report.target
    now = report.evaluated_at_utc
    leaf = report.leaf
    chain = report.chain
    failure = report.failure
    observation = report.observation
    success = failure is None and chain is not None and chain.is_trusted and report.hostname_matches
    if report.revocation is not None:
        revoked: int | None = int(report.revocation.is_revoked)
    else:
        revoked = None if failure is not None else NOT_CHECKED
    weak: list[str] = []
    weak_state: int | None = None if failure is not None else NOT_CHECKED
    grade = ""
    if report.deep is not None:
        accepted = report.deep.tls_config.protocols
        weak = [TLS_VERSION_NAMES[p.value] for p in _WEAK if p in accepted]
        weak_state = int(bool(weak))
        grade = report.deep.grade.grade
    problems = [
        f"{f.severity.value}: {f.message}"
        for f in report.findings
        if f.severity.rank >= 2  # warning and critical
    ]
    earliest = min((c.not_after_utc for c in report.certificates), default=None)
    handshake_s = observation.handshake_s if observation is not None else None
    document = {
        "target": endpoint_label(target.host, target.port),
        "sni": target.sni or "",
        "starttls": target.starttls.value if target.starttls else "",
        "success": int(bool(success)),
        "error": _text(failure.detail) if failure is not None else "",
        "error_kind": failure.kind.value if failure is not None else "",
        "days_left": _days(earliest, now) if earliest is not None else None,
        "leaf_days_left": _days(leaf.not_after_utc, now) if leaf is not None else None,
        "not_after": int(leaf.not_after_utc.timestamp()) if leaf is not None else None,
        "earliest_not_after": int(earliest.timestamp()) if earliest is not None else None,
        "trusted": int(chain.is_trusted) if chain is not None else None,
        "chain_error": _text(chain.error or "") if chain is not None else None,
        "hostname_match": (
            int(report.hostname_matches) if report.hostname_matches is not None else None
        ),
        "revoked": revoked,
        "weak_protocol": weak_state,
        "weak_protocols": ",".join(weak),
        "tls_version": (
            TLS_VERSION_NAMES.get(observation.protocol, observation.protocol)
            if observation is not None
            else None
        ),
        "cipher": (
            _IANA_BY_OPENSSL.get(observation.cipher, observation.cipher)
            if observation is not None
            else None
        ),
        "grade": grade,
        "severity": report.verdict.rank if failure is None else None,
        "problems": _text("; ".join(problems)),
        "findings": len(report.findings),
        "subject": _text(leaf.subject) if leaf is not None else None,
        "issuer": _text(leaf.issuer) if leaf is not None else None,
        "serial": leaf.serial_hex if leaf is not None else None,
        "fingerprint_sha256": leaf.sha256_hex if leaf is not None else None,
        "san": _text(",".join(leaf.san_dns)) if leaf is not None else None,
        "chain_length": len(report.certificates),
        "handshake_seconds": round(handshake_s, 6) if handshake_s is not None else None,
        "duration_seconds": round(duration_s, 6),
    }
    return {key: value for key, value in document.items() if value is not None}


def item_value(document: Mapping[str, Any], key: str) -> str | None:
    """One key of an item document as Zabbix reads a plain item's value.

    Returns:
        The value as text (``None``: not known for this endpoint).

    Raises:
        KeyError: ``key`` is not one of :data:`ITEM_KEYS`.
    """
    if key not in ITEM_KEYS:
        raise KeyError(key)
    value = document.get(key)
    return None if value is None else str(value)
