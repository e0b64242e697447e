"""One endpoint's latest state as plain data, from the store or from a scan's JSON document.

The ECS documents (``integrations.ecs``) and the reports (``output.report_*``) read
these snapshots, so both work the same over the inventory and over a
``certvigil scan --json`` file. Pure: no I/O, no clock.

A scan document is input from outside (it may have been edited, or written by another
version): :func:`snapshots_from_scan_document` checks each value it uses and names the
endpoint and field of the first one that is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from certvigil.analysis.model import CertificateFacts, Finding, Severity
from certvigil.store.records import ObservationRecord, ObservationStatus

MAX_TEXT = 4096
"""Longest text kept from one field (a certificate subject can be made huge)."""
MAX_NAMES = 1000
"""Most subjectAltNames kept per certificate."""
MAX_FINDINGS = 200
"""Most findings kept per endpoint."""
MAX_TAGS = 100
"""Most labels kept per endpoint."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LeafSnapshot:
    """The certificate an endpoint serves first.

    Attributes:
        sha256_hex: SHA-256 of the DER, lower-case hex.
        sha1_hex: SHA-1 of the DER, ``None`` when not known.
        subject: RFC 4514 subject.
        subject_cn: Subject common name, ``None`` when absent.
        issuer: RFC 4514 issuer.
        issuer_cn: Issuer common name, ``None`` when absent.
        serial_hex: Serial number, lower-case hex.
        not_before_utc: Start of validity.
        not_after_utc: End of validity.
        san_dns: DNS subjectAltNames.
        san_ip: IP subjectAltNames.
        key_type: Public key algorithm (``rsa``, ``ec``...).
        key_bits: Key size in bits.
        key_curve: The EC curve, ``None`` otherwise.
        signature_algorithm: The signature algorithm's name.
        version: The X.509 version (3 for v3).
    """

    sha256_hex: str
    sha1_hex: str | None
    subject: str
    subject_cn: str | None
    issuer: str
    issuer_cn: str | None
    serial_hex: str
    not_before_utc: datetime
    not_after_utc: datetime
    san_dns: tuple[str, ...]
    san_ip: tuple[str, ...]
    key_type: str
    key_bits: int
    key_curve: str | None
    signature_algorithm: str
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointSnapshot:
    """What was last seen at one endpoint and the judgement on it.

    Attributes:
        observation_id: The store's observation row, ``None`` for a scan document.
        host: The host name or address asked for.
        port: The TCP port.
        sni: The SNI override, ``None`` when the host is sent.
        starttls: The STARTTLS protocol, ``None`` for direct TLS.
        tags: The endpoint's labels, sorted.
        observed_at_utc: When the handshake (or the failure) happened.
        is_failed: No handshake completed.
        failure_kind: Why it failed (``timeout``...), ``None`` when it did not.
        peer_address: The address connected to, ``None`` when unknown.
        protocol: The negotiated protocol (``TLSv1.3``), ``None`` when failed.
        cipher: The negotiated cipher suite, ``None`` when failed.
        verdict: The worst finding's severity (``ok`` ... ``critical``), ``unknown``
            for an endpoint that could not be observed.
        grade: The letter grade of a deep scan, ``None`` when not graded.
        findings: The findings.
        is_trusted: The chain verified, ``None`` when nothing was served.
        hostname_matches: The leaf covers the name, ``None`` without a leaf.
        revocation: The leaf's revocation status (``good``, ``revoked``...), ``None``
            when not checked.
        leaf: The served leaf, ``None`` when none.
    """

    observation_id: int | None
    host: str
    port: int
    sni: str | None
    starttls: str | None
    tags: tuple[str, ...]
    observed_at_utc: datetime
    is_failed: bool
    failure_kind: str | None
    peer_address: str | None
    protocol: str | None
    cipher: str | None
    verdict: str
    grade: str | None
    findings: tuple[Finding, ...]
    is_trusted: bool | None
    hostname_matches: bool | None
    revocation: str | None
    leaf: LeafSnapshot | None

    @property
    def endpoint(self) -> str:
        """``host:port`` (``[v6]:port``), with ``/sni`` and ``+starttls`` when set."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{host}:{self.port}"
        if self.sni:
            text += f"/{self.sni}"
        if self.starttls:
            text += f"+{self.starttls}"
        return text


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _cut_opt(text: str | None) -> str | None:
    return None if text is None else _cut(text)


def leaf_from_facts(facts: CertificateFacts) -> LeafSnapshot:
    """The snapshot of a certificate the analysis described."""
    return LeafSnapshot(
        sha256_hex=facts.sha256_hex,
        sha1_hex=facts.sha1_hex,
        subject=_cut(facts.subject),
        subject_cn=_cut_opt(facts.subject_cn),
        issuer=_cut(facts.issuer),
        issuer_cn=_cut_opt(facts.issuer_cn),
        serial_hex=facts.serial_hex,
        not_before_utc=facts.not_before_utc,
        not_after_utc=facts.not_after_utc,
        san_dns=tuple(_cut(n) for n in facts.san_dns[:MAX_NAMES]),
        san_ip=tuple(facts.san_ip[:MAX_NAMES]),
        key_type=facts.key_type.value,
        key_bits=facts.key_bits,
        key_curve=facts.key_curve,
        signature_algorithm=_cut(facts.signature_algorithm),
        version=facts.version,
    )


_REVOCATION_CODES = {"revoked": "revoked"}


def _revocation_from_findings(findings: Iterable[Finding]) -> str | None:
    """The store keeps findings, not the revocation report: ``revoked`` is one of them."""
    for finding in findings:
        if finding.code in _REVOCATION_CODES and finding.cert_index in (0, None):
            return _REVOCATION_CODES[finding.code]
    return None


def snapshot_from_record(
    record: ObservationRecord, leaf: CertificateFacts | None, *, tags: tuple[str, ...] = ()
) -> EndpointSnapshot:
    """The snapshot of a stored observation.

    Args:
        record: The observation.
        leaf: The facts of its leaf (``record.leaf_sha256``), ``None`` when none.
        tags: The endpoint's labels.
    """
    target = record.target
    failed = record.status is ObservationStatus.FAILED
    return EndpointSnapshot(
        observation_id=record.id,
        host=target.host,
        port=target.port,
        sni=target.sni,
        starttls=target.starttls.value if target.starttls is not None else None,
        tags=tuple(sorted(tags))[:MAX_TAGS],
        observed_at_utc=record.observed_at_utc,
        is_failed=failed,
        failure_kind=record.failure_kind.value if record.failure_kind else None,
        peer_address=record.peer_address,
        protocol=record.protocol,
        cipher=record.cipher,
        verdict="unknown" if failed else record.verdict.value,
        grade=None,
        findings=record.findings[:MAX_FINDINGS],
        is_trusted=record.is_trusted,
        hostname_matches=record.hostname_matches,
        revocation=_revocation_from_findings(record.findings),
        leaf=leaf_from_facts(leaf) if leaf is not None else None,
    )


# Scan documents ---------------------------------------------------------------------


class _Reader:
    """Typed access to one JSON object, naming the place of a wrong value."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object")
        self.data: dict[str, Any] = data
        self.where = where

    def _fail(self, key: str, expected: str) -> ValueError:
        return ValueError(f"{self.where}.{key}: expected {expected}")

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return _cut(value)

    def text_opt(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(key, "a string or null")
        return _cut(value)

    def integer(self, key: str, *, low: int, high: int) -> int:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._fail(key, f"an integer from {low} to {high}")
        return value

    def flag(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, bool):
            raise self._fail(key, "true, false or null")
        return value

    def time(self, key: str) -> datetime:
        value = self.data.get(key)
        if isinstance(value, str) and len(value) <= 64:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                pass
            else:
                if parsed.tzinfo is not None:
                    return parsed.astimezone(UTC)
        raise self._fail(key, "an ISO 8601 time with a zone")

    def texts(self, key: str, limit: int = MAX_NAMES) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings")
        return tuple(_cut(v) for v in value[:limit])

    def child(self, key: str) -> _Reader | None:
        value = self.data.get(key)
        return None if value is None else _Reader(value, f"{self.where}.{key}")

    def items(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._fail(key, "a list")
        return value


_VERDICTS = frozenset({"ok", "info", "warning", "critical", "unknown"})


def _leaf_from_json(reader: _Reader) -> LeafSnapshot:
    sha256 = reader.text("sha256_hex").lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"{reader.where}.sha256_hex: expected 64 hex digits")
    return LeafSnapshot(
        sha256_hex=sha256,
        sha1_hex=reader.text_opt("sha1_hex"),
        subject=reader.text("subject"),
        subject_cn=reader.text_opt("subject_cn"),
        issuer=reader.text("issuer"),
        issuer_cn=reader.text_opt("issuer_cn"),
        serial_hex=reader.text("serial_hex"),
        not_before_utc=reader.time("not_before_utc"),
        not_after_utc=reader.time("not_after_utc"),
        san_dns=reader.texts("san_dns"),
        san_ip=reader.texts("san_ip"),
        key_type=reader.text("key_type"),
        key_bits=reader.integer("key_bits", low=0, high=1 << 20),
        key_curve=reader.text_opt("key_curve"),
        signature_algorithm=reader.text("signature_algorithm"),
        version=reader.integer("version", low=0, high=255) if "version" in reader.data else 3,
    )


def _finding_from_json(reader: _Reader) -> Finding:
    severity = reader.text("severity")
    try:
        level = Severity(severity)
    except ValueError:
        raise ValueError(f"{reader.where}.severity: unknown severity") from None
    index = reader.data.get("cert_index")
    return Finding(
        code=reader.text("code")[:100],
        severity=level,
        message=reader.text("message"),
        cert_index=index if isinstance(index, int) and not isinstance(index, bool) else None,
    )


def _grade_from_json(endpoint: _Reader) -> str | None:
    deep = endpoint.child("deep")
    grade = deep.child("grade") if deep is not None else None
    if grade is None:
        return None
    letter = grade.text_opt("grade")
    return None if letter is None else letter[:4]


def snapshot_from_scan_endpoint(data: Any, *, where: str) -> EndpointSnapshot:
    """The snapshot of one entry of a scan document's ``endpoints``.

    Raises:
        ValueError: A value is missing or of the wrong type; the message names ``where``
            and the field.
    """
    endpoint = _Reader(data, where)
    target = endpoint.child("target")
    if target is None:
        raise ValueError(f"{where}.target: expected an object")
    failed = endpoint.text("status") == "failed"
    observation = endpoint.child("observation")
    failure = endpoint.child("failure")
    source = failure if failed else observation
    if source is None:
        raise ValueError(f"{where}: an {'failure' if failed else 'observation'} is required")
    chain = endpoint.child("chain")
    revocation = endpoint.child("revocation")
    certificates = endpoint.items("certificates")
    verdict = endpoint.text("verdict")
    if verdict not in _VERDICTS:
        raise ValueError(f"{where}.verdict: expected one of {', '.join(sorted(_VERDICTS))}")
    findings = endpoint.items("findings")[:MAX_FINDINGS]
    return EndpointSnapshot(
        observation_id=None,
        host=target.text("host"),
        port=target.integer("port", low=0, high=65535),
        sni=target.text_opt("sni"),
        starttls=target.text_opt("starttls"),
        tags=(),
        observed_at_utc=source.time("observed_at_utc"),
        is_failed=failed,
        failure_kind=failure.text_opt("kind") if failure is not None else None,
        peer_address=source.text_opt("peer_address"),
        protocol=observation.text_opt("protocol") if observation is not None else None,
        cipher=observation.text_opt("cipher") if observation is not None else None,
        verdict=verdict,
        grade=_grade_from_json(endpoint),
        findings=tuple(
            _finding_from_json(_Reader(f, f"{where}.findings[{i}]")) for i, f in enumerate(findings)
        ),
        is_trusted=chain.flag("is_trusted") if chain is not None else None,
        hostname_matches=endpoint.flag("hostname_matches"),
        revocation=revocation.text_opt("leaf_status") if revocation is not None else None,
        leaf=(
            _leaf_from_json(_Reader(certificates[0], f"{where}.certificates[0]"))
            if certificates
            else None
        ),
    )


def snapshots_from_scan_document(document: Any) -> tuple[EndpointSnapshot, ...]:
    """Every endpoint of a ``certvigil scan --json`` document.

    Raises:
        ValueError: Not a scan document, or an endpoint has a wrong value (named).
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("endpoints"), list):
        raise ValueError("not a certvigil scan document (no endpoints list)")
    if document.get("schema_version") != 1:
        raise ValueError("schema_version: expected 1")
    return tuple(
        snapshot_from_scan_endpoint(item, where=f"endpoints[{index}]")
        for index, item in enumerate(document["endpoints"])
    )
