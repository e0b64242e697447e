"""The JSON documents' schema: pydantic models of every object ``--json`` writes.

``docs/json-schema.md`` describes these fields in words. The writers
(``certvigil.output.json_doc`` for ``scan`` and ``demo``, ``certvigil.output.files``
for ``cert``) build plain JSON values straight from the frozen reports, without pydantic
on the path of every endpoint; these models are the contract those values are held to.
Reading a document back with ``ScanDocument.model_validate_json`` (or ``CertDocument``)
checks it: every field is required and an unknown field is refused, so a writer that
dropped or invented a field fails validation.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from certvigil.output.observation_schema import Base64, ObservationDocument, Sha256Hex

__all__ = [
    "SCHEMA_FILES",
    "CertDocument",
    "CertificateModel",
    "CertificateRevocationModel",
    "ChainModel",
    "EndpointModel",
    "FailureModel",
    "FileModel",
    "FindingModel",
    "GeneratorModel",
    "InterruptionModel",
    "MethodResultModel",
    "ObservationModel",
    "OutputModel",
    "RevocationModel",
    "ScanDocument",
    "StapleModel",
    "SummaryModel",
    "TargetErrorModel",
    "TargetModel",
    "json_schema_texts",
    "write_json_schemas",
]


class OutputModel(BaseModel):
    """Base of every output model: frozen, and unknown fields are refused when read back."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TargetModel(OutputModel):
    """The endpoint probed."""

    host: str
    port: int
    sni: str | None
    server_name: str | None
    expected_name: str
    starttls: str | None


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


class FailureModel(OutputModel):
    """Why the endpoint could not be observed."""

    kind: str
    detail: str
    observed_at_utc: datetime
    peer_address: str | None
    tls_alert: str | None


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
    error_detail: str | None
    trusted_ignoring_validity: bool
    untrusted_causes: tuple[str, ...]


class FindingModel(OutputModel):
    """One finding."""

    code: str
    severity: Literal["ok", "info", "warning", "critical"]
    message: str
    cert_index: int | None


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


class StapleModel(OutputModel):
    """The verdict on the stapled OCSP response."""

    was_requested: bool
    is_present: bool
    status: str | None
    is_for_leaf: bool | None
    must_staple: bool
    detail: str


class RevocationModel(OutputModel):
    """The revocation judgement on the served chain."""

    evaluated_at_utc: datetime
    is_revoked: bool
    leaf_status: str | None
    certificates: tuple[CertificateRevocationModel, ...]
    staple: StapleModel | None


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
    observed: ObservationDocument | None = None
    """``scan --json --include-observation``: everything the probes saw, as an observation
    document whose CRLs are in the scan document's ``crls`` (docs/json-schema.md)."""


class TargetErrorModel(OutputModel):
    """A target that could not be parsed."""

    source: str
    position: int
    text: str
    reason: str


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


class InterruptionModel(OutputModel):
    """Why a scan stopped before its end, and what it left out."""

    signal: Literal["SIGINT", "SIGTERM"]
    not_scanned: int
    input_read_to_end: bool


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
    crls: dict[Sha256Hex, Base64] | None = None
    """``--include-observation``: every CRL the observations used, once, by SHA-256."""
    interrupted: InterruptionModel | None
    summary: SummaryModel
    finished_at_utc: datetime


class FileModel(OutputModel):
    """One analysed file in the ``cert`` JSON document."""

    source: str
    evaluated_at_utc: datetime
    expected_name: str | None
    verdict: Literal["ok", "info", "warning", "critical"]
    hostname_matches: bool | None
    certificates: tuple[CertificateModel, ...]
    chain: ChainModel | None
    findings: tuple[FindingModel, ...]


class CertDocument(OutputModel):
    """The whole ``certvigil cert --json`` document."""

    schema_version: int
    generator: GeneratorModel
    command: Literal["cert"]
    started_at_utc: datetime
    files: tuple[FileModel, ...]
    target_errors: tuple[TargetErrorModel, ...]
    summary: SummaryModel
    finished_at_utc: datetime


SCHEMA_FILES = {
    "scan.schema.json": "ScanDocument",
    "cert.schema.json": "CertDocument",
    "observation.schema.json": "ObservationDocument",
}
"""The JSON Schema files in ``docs/schema/`` and the model each one describes."""


def json_schema_texts() -> dict[str, str]:
    """Each schema file's name and its text (JSON Schema draft 2020-12, from the models)."""
    models: dict[str, type[BaseModel]] = {
        "ScanDocument": ScanDocument,
        "CertDocument": CertDocument,
        "ObservationDocument": ObservationDocument,
    }
    return {
        name: json.dumps(models[model].model_json_schema(), indent=2, sort_keys=True) + "\n"
        for name, model in SCHEMA_FILES.items()
    }


def write_json_schemas(directory: Path) -> list[Path]:
    """Write the schema files into ``directory`` (``docs/schema``); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in json_schema_texts().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/schema")
    for path in write_json_schemas(target):
        print(path)
