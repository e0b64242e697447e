"""The ``--json`` document: pydantic models built from the frozen reports, written as a stream.

The document is one JSON object (schema in ``docs/json-schema.md``)::

    {"schema_version": 1, "generator": {...}, "command": "scan",
     "started_at_utc": "...", "endpoints": [ {...}, {...} ],
     "target_errors": [...], "summary": {...}, "finished_at_utc": "..."}

``JsonDocumentWriter`` writes the head, then each endpoint as soon as its report
arrives, then the tail, so memory does not grow with the number of endpoints. The
``ScanDocument`` model describes the whole document and validates it when read back.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict

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
from certvigil.observed.handshake import ProbeFailure, TlsObservation
from certvigil.output.plain_json import jsonable
from certvigil.output.summary import Tally, days_remaining
from certvigil.target import Target

SCHEMA_VERSION = 1
"""Raised only when a field changes meaning or disappears; additions keep the version."""


class OutputModel(BaseModel):
    """Base of every output model: frozen, and unknown fields are refused when read back."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def verdict_text(report: EndpointReport) -> Literal["ok", "info", "warning", "critical", "unknown"]:
    """The worst finding's severity, or ``"unknown"`` when the endpoint could not be observed."""
    if report.is_failed:
        return "unknown"
    return report.verdict.value


class TargetModel(OutputModel):
    """The endpoint probed."""

    host: str
    port: int
    sni: str | None
    server_name: str | None
    expected_name: str
    starttls: str | None

    @classmethod
    def build(cls, target: Target) -> TargetModel:
        """From a Target."""
        return cls(
            host=target.host,
            port=target.port,
            sni=target.sni,
            server_name=target.server_name,
            expected_name=target.expected_name,
            starttls=target.starttls.value if target.starttls is not None else None,
        )


class ObservationModel(OutputModel):
    """The successful handshake."""

    peer_address: str
    observed_at_utc: datetime
    protocol: str
    cipher: str
    alpn: str | None
    connect_s: float
    handshake_s: float
    chain_length: int
    ocsp_staple_present: bool

    @classmethod
    def build(cls, observation: TlsObservation) -> ObservationModel:
        """From a TlsObservation (the chain itself is in ``certificates``)."""
        return cls(
            peer_address=observation.peer_address,
            observed_at_utc=observation.observed_at_utc,
            protocol=observation.protocol,
            cipher=observation.cipher,
            alpn=observation.alpn,
            connect_s=observation.connect_s,
            handshake_s=observation.handshake_s,
            chain_length=len(observation.chain_der),
            ocsp_staple_present=observation.ocsp_staple_der is not None,
        )


class FailureModel(OutputModel):
    """Why the endpoint could not be observed."""

    kind: str
    detail: str
    observed_at_utc: datetime
    peer_address: str | None
    tls_alert: str | None

    @classmethod
    def build(cls, failure: ProbeFailure) -> FailureModel:
        """From a ProbeFailure."""
        return cls(
            kind=failure.kind.value,
            detail=failure.detail,
            observed_at_utc=failure.observed_at_utc,
            peer_address=failure.peer_address,
            tls_alert=failure.tls_alert,
        )


class CertificateModel(OutputModel):
    """Every fact about one certificate, plus its days remaining at evaluation time."""

    index: int
    subject: str
    subject_cn: str | None
    issuer: str
    issuer_cn: str | None
    serial_hex: str
    not_before_utc: datetime
    not_after_utc: datetime
    days_remaining: int
    validity_days: int
    sha256_hex: str
    sha1_hex: str
    san_dns: tuple[str, ...]
    san_ip: tuple[str, ...]
    san_email: tuple[str, ...]
    san_uri: tuple[str, ...]
    key_type: str
    key_bits: int
    key_curve: str | None
    signature_algorithm: str
    signature_hash: str | None
    is_self_signed: bool
    is_ca: bool
    path_length: int | None
    is_precertificate: bool
    ocsp_urls: tuple[str, ...]
    ca_issuer_urls: tuple[str, ...]
    crl_urls: tuple[str, ...]
    sct_count: int
    must_staple: bool
    policy_oids: tuple[str, ...]
    validation_level: str
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]
    subject_key_id_hex: str | None
    authority_key_id_hex: str | None
    version: int
    parse_problems: tuple[str, ...]

    @classmethod
    def build(cls, facts: CertificateFacts, *, index: int, now: datetime) -> CertificateModel:
        """From CertificateFacts at chain position ``index``, evaluated at ``now``."""
        return cls(
            index=index,
            subject=facts.subject,
            subject_cn=facts.subject_cn,
            issuer=facts.issuer,
            issuer_cn=facts.issuer_cn,
            serial_hex=facts.serial_hex,
            not_before_utc=facts.not_before_utc,
            not_after_utc=facts.not_after_utc,
            days_remaining=days_remaining(facts.not_after_utc, now=now),
            validity_days=facts.validity_days,
            sha256_hex=facts.sha256_hex,
            sha1_hex=facts.sha1_hex,
            san_dns=facts.san_dns,
            san_ip=facts.san_ip,
            san_email=facts.san_email,
            san_uri=facts.san_uri,
            key_type=facts.key_type.value,
            key_bits=facts.key_bits,
            key_curve=facts.key_curve,
            signature_algorithm=facts.signature_algorithm,
            signature_hash=facts.signature_hash,
            is_self_signed=facts.is_self_signed,
            is_ca=facts.is_ca,
            path_length=facts.path_length,
            is_precertificate=facts.is_precertificate,
            ocsp_urls=facts.ocsp_urls,
            ca_issuer_urls=facts.ca_issuer_urls,
            crl_urls=facts.crl_urls,
            sct_count=facts.sct_count,
            must_staple=facts.must_staple,
            policy_oids=facts.policy_oids,
            validation_level=facts.validation_level.value,
            key_usage=facts.key_usage,
            extended_key_usage=facts.extended_key_usage,
            subject_key_id_hex=facts.subject_key_id_hex,
            authority_key_id_hex=facts.authority_key_id_hex,
            version=facts.version,
            parse_problems=facts.parse_problems,
        )


class ChainModel(OutputModel):
    """The verdict on the served chain."""

    is_trusted: bool
    verified_path_sha256: tuple[str, ...]
    error: str | None
    is_complete: bool
    fetched_issuers_sha256: tuple[str, ...]
    would_verify_with_fetched: bool
    is_ordered: bool
    unneeded_sha256: tuple[str, ...]
    anchor_subject: str | None
    missing_issuer: str | None
    missing_issuer_urls: tuple[str, ...]

    @classmethod
    def build(cls, chain: ChainReport) -> ChainModel:
        """From a ChainReport."""
        return cls(
            is_trusted=chain.is_trusted,
            verified_path_sha256=chain.verified_path_sha256,
            error=chain.error,
            is_complete=chain.is_complete,
            fetched_issuers_sha256=chain.fetched_issuers_sha256,
            would_verify_with_fetched=chain.would_verify_with_fetched,
            is_ordered=chain.is_ordered,
            unneeded_sha256=chain.unneeded_sha256,
            anchor_subject=chain.anchor_subject,
            missing_issuer=chain.missing_issuer,
            missing_issuer_urls=chain.missing_issuer_urls,
        )


class FindingModel(OutputModel):
    """One finding."""

    code: str
    severity: Literal["ok", "info", "warning", "critical"]
    message: str
    cert_index: int | None

    @classmethod
    def build(cls, finding: Finding) -> FindingModel:
        """From a Finding."""
        return cls(
            code=finding.code,
            severity=finding.severity.value,
            message=finding.message,
            cert_index=finding.cert_index,
        )


class MethodResultModel(OutputModel):
    """What one revocation method said about one certificate."""

    method: str
    status: str
    url: str | None
    detail: str
    revoked_at_utc: datetime | None
    revocation_reason: str | None
    this_update_utc: datetime | None
    next_update_utc: datetime | None
    signed_by: str | None

    @classmethod
    def build(cls, result: MethodResult) -> MethodResultModel:
        """From a MethodResult."""
        return cls(
            method=result.method.value,
            status=result.status.value,
            url=result.url,
            detail=result.detail,
            revoked_at_utc=result.revoked_at_utc,
            revocation_reason=result.revocation_reason,
            this_update_utc=result.this_update_utc,
            next_update_utc=result.next_update_utc,
            signed_by=result.signed_by,
        )


class CertificateRevocationModel(OutputModel):
    """The combined revocation verdict on one served certificate."""

    cert_index: int
    subject: str
    serial_hex: str
    status: str
    decided_by: str | None
    revoked_at_utc: datetime | None
    revocation_reason: str | None
    methods: tuple[MethodResultModel, ...]

    @classmethod
    def build(cls, verdict: CertificateRevocation) -> CertificateRevocationModel:
        """From a CertificateRevocation."""
        return cls(
            cert_index=verdict.cert_index,
            subject=verdict.subject,
            serial_hex=verdict.serial_hex,
            status=verdict.status.value,
            decided_by=verdict.decided_by.value if verdict.decided_by is not None else None,
            revoked_at_utc=verdict.revoked_at_utc,
            revocation_reason=verdict.revocation_reason,
            methods=tuple(MethodResultModel.build(m) for m in verdict.methods),
        )


class StapleModel(OutputModel):
    """The verdict on the stapled OCSP response."""

    was_requested: bool
    is_present: bool
    status: str | None
    is_for_leaf: bool | None
    must_staple: bool
    detail: str

    @classmethod
    def build(cls, staple: StapleReport) -> StapleModel:
        """From a StapleReport."""
        return cls(
            was_requested=staple.was_requested,
            is_present=staple.is_present,
            status=staple.status.value if staple.status is not None else None,
            is_for_leaf=staple.is_for_leaf,
            must_staple=staple.must_staple,
            detail=staple.detail,
        )


class RevocationModel(OutputModel):
    """The revocation judgement on the served chain."""

    evaluated_at_utc: datetime
    is_revoked: bool
    leaf_status: str | None
    certificates: tuple[CertificateRevocationModel, ...]
    staple: StapleModel | None

    @classmethod
    def build(cls, report: RevocationReport) -> RevocationModel:
        """From a RevocationReport."""
        leaf_status = report.leaf_status
        return cls(
            evaluated_at_utc=report.evaluated_at_utc,
            is_revoked=report.is_revoked,
            leaf_status=leaf_status.value if leaf_status is not None else None,
            certificates=tuple(CertificateRevocationModel.build(c) for c in report.certificates),
            staple=StapleModel.build(report.staple) if report.staple is not None else None,
        )


class EndpointModel(OutputModel):
    """The report on one endpoint."""

    endpoint: str
    target: TargetModel
    evaluated_at_utc: datetime
    status: Literal["observed", "failed"]
    verdict: Literal["ok", "info", "warning", "critical", "unknown"]
    hostname_matches: bool | None
    observation: ObservationModel | None
    failure: FailureModel | None
    certificates: tuple[CertificateModel, ...]
    chain: ChainModel | None
    findings: tuple[FindingModel, ...]
    revocation: RevocationModel | None = None
    deep: dict[str, Any] | None = None
    """``scan --deep``: observation, findings, grade and Mozilla profiles (docs/grading.md)."""

    @classmethod
    def build(cls, report: EndpointReport) -> EndpointModel:
        """From an EndpointReport."""
        now = report.evaluated_at_utc
        return cls(
            endpoint=report.target.endpoint,
            target=TargetModel.build(report.target),
            evaluated_at_utc=now,
            status="failed" if report.is_failed else "observed",
            verdict=verdict_text(report),
            hostname_matches=report.hostname_matches,
            observation=(
                ObservationModel.build(report.observation) if report.observation else None
            ),
            failure=FailureModel.build(report.failure) if report.failure else None,
            certificates=tuple(
                CertificateModel.build(facts, index=index, now=now)
                for index, facts in enumerate(report.certificates)
            ),
            chain=ChainModel.build(report.chain) if report.chain else None,
            findings=tuple(FindingModel.build(f) for f in report.findings),
            revocation=(
                RevocationModel.build(report.revocation) if report.revocation is not None else None
            ),
            deep=jsonable(report.deep) if report.deep is not None else None,
        )


class TargetErrorModel(OutputModel):
    """A target that could not be parsed."""

    source: str
    position: int
    text: str
    reason: str

    @classmethod
    def build(cls, error: TargetError) -> TargetErrorModel:
        """From a TargetError."""
        return cls(
            source=error.source, position=error.position, text=error.text, reason=error.reason
        )


class SummaryModel(OutputModel):
    """Counts over the whole run and the exit code they give."""

    endpoints: int
    observed: int
    failed: int
    ok: int
    info: int
    warning: int
    critical: int
    target_errors: int
    exit_code: int

    @classmethod
    def build(cls, tally: Tally) -> SummaryModel:
        """From a finished Tally."""
        by = {severity.value: count for severity, count in tally.by_verdict.items()}
        return cls(
            endpoints=tally.endpoints,
            observed=tally.endpoints - tally.failed,
            failed=tally.failed,
            ok=by["ok"],
            info=by["info"],
            warning=by["warning"],
            critical=by["critical"],
            target_errors=len(tally.target_errors),
            exit_code=int(tally.exit_code),
        )


class GeneratorModel(OutputModel):
    """The program that wrote the document."""

    name: Literal["certvigil"] = "certvigil"
    version: str


class ScanDocument(OutputModel):
    """The whole ``--json`` document (what ``JsonDocumentWriter`` writes, piece by piece)."""

    schema_version: int
    generator: GeneratorModel
    command: str
    started_at_utc: datetime
    endpoints: tuple[EndpointModel, ...]
    target_errors: tuple[TargetErrorModel, ...]
    summary: SummaryModel
    finished_at_utc: datetime


class JsonDocumentWriter:
    """Writes a ``ScanDocument`` to a stream one endpoint at a time.

    Call ``begin`` once, ``write`` per report, and ``finish`` once. Only the head,
    the current endpoint and the tail are ever held in memory.
    """

    def __init__(self, stream: TextIO, *, command: str, version: str) -> None:
        """Prepare to write to ``stream``; nothing is written until ``begin``.

        Args:
            stream: Where the document goes (stdout or an ``--output`` file).
            command: The sub-command that produced the document (``"scan"``, ``"cert"``).
            version: certvigil's version.
        """
        self._stream = stream
        self._command = command
        self._version = version
        self._count = 0

    def begin(self, *, started_at_utc: datetime) -> None:
        """Write everything up to the opening of the ``endpoints`` array."""
        generator = GeneratorModel(version=self._version).model_dump_json()
        started = _json_datetime(started_at_utc)
        self._stream.write(
            f'{{"schema_version": {SCHEMA_VERSION}, "generator": {generator}, '
            f'"command": {json.dumps(self._command)}, "started_at_utc": {started}, "endpoints": ['
        )

    def write(self, report: EndpointReport) -> None:
        """Write one endpoint."""
        separator = ",\n" if self._count else "\n"
        self._stream.write(separator + EndpointModel.build(report).model_dump_json())
        self._count += 1
        self._stream.flush()

    def finish(self, tally: Tally, *, finished_at_utc: datetime) -> None:
        """Close the array and write target errors, summary and finish time."""
        errors = ",\n".join(
            TargetErrorModel.build(error).model_dump_json() for error in tally.target_errors
        )
        summary = SummaryModel.build(tally).model_dump_json()
        finished = _json_datetime(finished_at_utc)
        self._stream.write(
            ("\n" if self._count else "")
            + f'], "target_errors": [{errors}], "summary": {summary}, '
            f'"finished_at_utc": {finished}}}\n'
        )
        self._stream.flush()


class _Instant(OutputModel):
    at: datetime


def _json_datetime(value: datetime) -> str:
    # pydantic's own rendering, so that every timestamp in the document looks alike.
    text = _Instant(at=value).model_dump_json()
    return text[len('{"at":') : -1]
