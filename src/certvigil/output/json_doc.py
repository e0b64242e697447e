"""The ``--json`` document: plain JSON values built from the frozen reports, written as a stream.

The document is one JSON object (schema in ``docs/json-schema.md``, held to the
pydantic models of ``certvigil.output.json_schema``)::

    {"schema_version": 1, "generator": {...}, "command": "scan",
     "started_at_utc": "...", "endpoints": [ {...}, {...} ],
     "target_errors": [...], "interrupted": null, "summary": {...},
     "finished_at_utc": "..."}

``JsonDocumentWriter`` writes the head, then each endpoint as soon as its report
arrives, then the tail, so memory does not grow with the number of endpoints. The
``*_json`` functions turn one frozen result into dicts, lists, strings, numbers,
booleans and ``None``, in the models' field order; times are ISO 8601 in UTC with a
``Z`` suffix. They are plain functions rather than pydantic models because a scan
writes one endpoint every millisecond or so: validating each object on the way out
cost more than the rest of the output, and importing pydantic a tenth of a second of
every scan's start-up.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, TextIO

from certvigil.analysis.model import (
    CertificateFacts,
    ChainReport,
    EndpointReport,
    Finding,
)
from certvigil.analysis.revocation_model import (
    CertificateRevocation,
    MethodResult,
    RevocationReport,
    StapleReport,
)
from certvigil.errors import TargetError
from certvigil.observed.codec import observation_to_dict
from certvigil.observed.handshake import ProbeFailure, TlsObservation
from certvigil.output.plain_json import jsonable
from certvigil.output.safe_text import json_visible
from certvigil.output.summary import Tally, days_remaining
from certvigil.targets.target import Target

SCHEMA_VERSION = 1
"""Raised only when a field changes meaning or disappears; additions keep the version."""

JsonObject = dict[str, Any]
"""A JSON object as Python values (str keys; dict, list, str, int, float, bool, None)."""

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """``value`` as compact JSON text (UTF-8 characters as they are, no spaces).

    Control, bidi and invisible characters are written as ``\\uXXXX`` escapes
    (``safe_text.json_visible``): the document decodes to the same strings, and
    printing it to a terminal cannot act on the terminal.
    """
    return json_visible(_ENCODER.encode(value))


def utc_text(value: datetime) -> str:
    """An aware time as the documents write it: ``2026-11-27T10:06:30Z``.

    Microseconds appear when there are any; an offset other than UTC is kept as
    ``+hh:mm`` (the reports carry UTC only).
    """
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _utc_or_none(value: datetime | None) -> str | None:
    return None if value is None else utc_text(value)


def verdict_text(report: EndpointReport) -> Literal["ok", "info", "warning", "critical", "unknown"]:
    """The worst finding's severity, or ``"unknown"`` when the endpoint could not be observed."""
    if report.is_failed:
        return "unknown"
    return report.verdict.value


def target_json(target: Target) -> JsonObject:
    """The endpoint probed (``TargetModel``)."""
    return {
        "host": target.host,
        "port": target.port,
        "sni": target.sni,
        "server_name": target.server_name,
        "expected_name": target.expected_name,
        "starttls": target.starttls.value if target.starttls is not None else None,
    }


def observation_json(observation: TlsObservation) -> JsonObject:
    """The successful handshake (``ObservationModel``); the chain is in ``certificates``."""
    return {
        "peer_address": observation.peer_address,
        "observed_at_utc": utc_text(observation.observed_at_utc),
        "protocol": observation.protocol,
        "cipher": observation.cipher,
        "alpn": observation.alpn,
        "connect_s": observation.connect_s,
        "handshake_s": observation.handshake_s,
        "chain_length": len(observation.chain_der),
        "ocsp_staple_present": observation.ocsp_staple_der is not None,
    }


def failure_json(failure: ProbeFailure) -> JsonObject:
    """Why the endpoint could not be observed (``FailureModel``)."""
    return {
        "kind": failure.kind.value,
        "detail": failure.detail,
        "observed_at_utc": utc_text(failure.observed_at_utc),
        "peer_address": failure.peer_address,
        "tls_alert": failure.tls_alert,
    }


def certificate_json(facts: CertificateFacts, *, index: int, now: datetime) -> JsonObject:
    """Every fact of one certificate at chain position ``index``, judged at ``now``.

    ``CertificateModel``; ``days_remaining`` is counted from ``now``.
    """
    return {
        "index": index,
        "subject": facts.subject,
        "subject_cn": facts.subject_cn,
        "issuer": facts.issuer,
        "issuer_cn": facts.issuer_cn,
        "serial_hex": facts.serial_hex,
        "not_before_utc": utc_text(facts.not_before_utc),
        "not_after_utc": utc_text(facts.not_after_utc),
        "days_remaining": days_remaining(facts.not_after_utc, now=now),
        "validity_days": facts.validity_days,
        "sha256_hex": facts.sha256_hex,
        "sha1_hex": facts.sha1_hex,
        "san_dns": facts.san_dns,
        "san_ip": facts.san_ip,
        "san_email": facts.san_email,
        "san_uri": facts.san_uri,
        "key_type": facts.key_type.value,
        "key_bits": facts.key_bits,
        "key_curve": facts.key_curve,
        "signature_algorithm": facts.signature_algorithm,
        "signature_hash": facts.signature_hash,
        "is_self_signed": facts.is_self_signed,
        "is_ca": facts.is_ca,
        "path_length": facts.path_length,
        "is_precertificate": facts.is_precertificate,
        "ocsp_urls": facts.ocsp_urls,
        "ca_issuer_urls": facts.ca_issuer_urls,
        "crl_urls": facts.crl_urls,
        "sct_count": facts.sct_count,
        "must_staple": facts.must_staple,
        "policy_oids": facts.policy_oids,
        "validation_level": facts.validation_level.value,
        "key_usage": facts.key_usage,
        "extended_key_usage": facts.extended_key_usage,
        "subject_key_id_hex": facts.subject_key_id_hex,
        "authority_key_id_hex": facts.authority_key_id_hex,
        "version": facts.version,
        "parse_problems": facts.parse_problems,
    }


def certificates_json(
    certificates: Sequence[CertificateFacts], *, now: datetime
) -> list[JsonObject]:
    """A chain's certificates, each with its position."""
    return [
        certificate_json(facts, index=index, now=now) for index, facts in enumerate(certificates)
    ]


def chain_json(chain: ChainReport) -> JsonObject:
    """The verdict on the served chain (``ChainModel``)."""
    return {
        "is_trusted": chain.is_trusted,
        "verified_path_sha256": chain.verified_path_sha256,
        "error": chain.error,
        "is_complete": chain.is_complete,
        "fetched_issuers_sha256": chain.fetched_issuers_sha256,
        "would_verify_with_fetched": chain.would_verify_with_fetched,
        "is_ordered": chain.is_ordered,
        "unneeded_sha256": chain.unneeded_sha256,
        "anchor_subject": chain.anchor_subject,
        "missing_issuer": chain.missing_issuer,
        "missing_issuer_urls": chain.missing_issuer_urls,
        "error_detail": chain.error_detail,
        "trusted_ignoring_validity": chain.trusted_ignoring_validity,
        "untrusted_causes": chain.untrusted_causes,
    }


def finding_json(finding: Finding) -> JsonObject:
    """One finding (``FindingModel``)."""
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "message": finding.message,
        "cert_index": finding.cert_index,
    }


def method_result_json(result: MethodResult) -> JsonObject:
    """What one revocation method said about one certificate (``MethodResultModel``)."""
    return {
        "method": result.method.value,
        "status": result.status.value,
        "url": result.url,
        "detail": result.detail,
        "revoked_at_utc": _utc_or_none(result.revoked_at_utc),
        "revocation_reason": result.revocation_reason,
        "this_update_utc": _utc_or_none(result.this_update_utc),
        "next_update_utc": _utc_or_none(result.next_update_utc),
        "signed_by": result.signed_by,
    }


def certificate_revocation_json(verdict: CertificateRevocation) -> JsonObject:
    """The combined revocation verdict on one certificate (``CertificateRevocationModel``)."""
    return {
        "cert_index": verdict.cert_index,
        "subject": verdict.subject,
        "serial_hex": verdict.serial_hex,
        "status": verdict.status.value,
        "decided_by": verdict.decided_by.value if verdict.decided_by is not None else None,
        "revoked_at_utc": _utc_or_none(verdict.revoked_at_utc),
        "revocation_reason": verdict.revocation_reason,
        "methods": [method_result_json(m) for m in verdict.methods],
    }


def staple_json(staple: StapleReport) -> JsonObject:
    """The verdict on the stapled OCSP response (``StapleModel``)."""
    return {
        "was_requested": staple.was_requested,
        "is_present": staple.is_present,
        "status": staple.status.value if staple.status is not None else None,
        "is_for_leaf": staple.is_for_leaf,
        "must_staple": staple.must_staple,
        "detail": staple.detail,
    }


def revocation_json(report: RevocationReport) -> JsonObject:
    """The revocation judgement on the served chain (``RevocationModel``)."""
    leaf_status = report.leaf_status
    return {
        "evaluated_at_utc": utc_text(report.evaluated_at_utc),
        "is_revoked": report.is_revoked,
        "leaf_status": leaf_status.value if leaf_status is not None else None,
        "certificates": [certificate_revocation_json(c) for c in report.certificates],
        "staple": staple_json(report.staple) if report.staple is not None else None,
    }


def endpoint_json(report: EndpointReport, *, crls: dict[str, bytes] | None = None) -> JsonObject:
    """The report on one endpoint (``EndpointModel``).

    Args:
        report: The report.
        crls: Include the observation (``--include-observation``): its document goes in
            ``observed``, and the CRLs it used go into this map (written once for the
            whole document, as its ``crls``) rather than into every endpoint.
            ``None`` writes ``observed: null``.
    """
    now = report.evaluated_at_utc
    return {
        "endpoint": report.target.endpoint,
        "target": target_json(report.target),
        "evaluated_at_utc": utc_text(now),
        "status": "failed" if report.is_failed else "observed",
        "verdict": verdict_text(report),
        "hostname_matches": report.hostname_matches,
        "observation": observation_json(report.observation) if report.observation else None,
        "failure": failure_json(report.failure) if report.failure else None,
        "certificates": certificates_json(report.certificates, now=now),
        "chain": chain_json(report.chain) if report.chain else None,
        "findings": [finding_json(f) for f in report.findings],
        "revocation": (
            revocation_json(report.revocation) if report.revocation is not None else None
        ),
        "deep": jsonable(report.deep) if report.deep is not None else None,
        "observed": (
            observation_to_dict(report.observed, crls=crls)
            if crls is not None and report.observed is not None
            else None
        ),
    }


def target_error_json(error: TargetError) -> JsonObject:
    """A target that could not be parsed (``TargetErrorModel``)."""
    return {
        "source": error.source,
        "position": error.position,
        "text": error.text,
        "reason": error.reason,
    }


def summary_json(tally: Tally) -> JsonObject:
    """Counts over the whole run and the exit code they give (``SummaryModel``)."""
    by = {severity.value: count for severity, count in tally.by_verdict.items()}
    return {
        "endpoints": tally.endpoints,
        "observed": tally.endpoints - tally.failed,
        "failed": tally.failed,
        "ok": by["ok"],
        "info": by["info"],
        "warning": by["warning"],
        "critical": by["critical"],
        "target_errors": len(tally.target_errors),
        "exit_code": int(tally.exit_code),
    }


def interruption_json(tally: Tally) -> JsonObject | None:
    """How the run was stopped (``InterruptionModel``), ``None`` when it ran to the end."""
    if tally.interrupted_by is None:
        return None
    return {
        "signal": tally.interrupted_by.name,
        "not_scanned": tally.not_scanned,
        "input_read_to_end": tally.input_read_to_end,
    }


def generator_json(version: str) -> JsonObject:
    """The program that wrote the document (``GeneratorModel``)."""
    return {"name": "certvigil", "version": version}


class JsonDocumentWriter:
    """Writes a ``ScanDocument`` to a stream one endpoint at a time.

    Call ``begin`` once, ``write`` per report, and ``finish`` once. Only the head,
    the current endpoint and the tail are ever held in memory.
    """

    def __init__(
        self, stream: TextIO, *, command: str, version: str, include_observation: bool = False
    ) -> None:
        """Prepare to write to ``stream``; nothing is written until ``begin``.

        Args:
            stream: Where the document goes (stdout or an ``--output`` file).
            command: The sub-command that produced the document (``"scan"``, ``"cert"``).
            version: certvigil's version.
            include_observation: Write each endpoint's observation (``observed``) and,
                at the end, every CRL they used, once (``crls``).
        """
        # The CRLs seen so far, by SHA-256: a handful per scan, however many endpoints.
        self._crls: dict[str, bytes] | None = {} if include_observation else None
        self._stream = stream
        self._command = command
        self._version = version
        self._count = 0

    def begin(self, *, started_at_utc: datetime) -> None:
        """Write everything up to the opening of the ``endpoints`` array."""
        self._stream.write(
            f'{{"schema_version": {SCHEMA_VERSION}, '
            f'"generator": {dumps(generator_json(self._version))}, '
            f'"command": {dumps(self._command)}, '
            f'"started_at_utc": {dumps(utc_text(started_at_utc))}, "endpoints": ['
        )

    def write(self, report: EndpointReport) -> None:
        """Write one endpoint."""
        separator = ",\n" if self._count else "\n"
        self._stream.write(separator + dumps(endpoint_json(report, crls=self._crls)))
        self._count += 1
        self._stream.flush()

    def finish(self, tally: Tally, *, finished_at_utc: datetime) -> None:
        """Close the array and write target errors, interruption, summary and finish time."""
        errors = ",\n".join(dumps(target_error_json(error)) for error in tally.target_errors)
        crls = None
        if self._crls is not None:
            crls = {
                d: base64.b64encode(der).decode("ascii") for d, der in sorted(self._crls.items())
            }
        self._stream.write(
            ("\n" if self._count else "") + f'], "target_errors": [{errors}], '
            f'"crls": {dumps(crls)}, '
            f'"interrupted": {dumps(interruption_json(tally))}, '
            f'"summary": {dumps(summary_json(tally))}, '
            f'"finished_at_utc": {dumps(utc_text(finished_at_utc))}}}\n'
        )
        self._stream.flush()
