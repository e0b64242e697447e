"""The streamed JSON document parses, validates against its schema and carries every fact."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime

from pydantic import BaseModel

from certvigil.analysis.model import CertificateFacts, ChainReport, EndpointReport, Finding
from certvigil.analysis.revocation_model import (
    CertificateRevocation,
    MethodResult,
    RevocationReport,
    RevocationStatus,
    StapleReport,
)
from certvigil.errors import TargetError
from certvigil.observed.handshake import ProbeFailure, TlsObservation
from certvigil.observed.revocation import RevocationMethod
from certvigil.output.json_doc import (
    SCHEMA_VERSION,
    JsonDocumentWriter,
    endpoint_json,
    utc_text,
)
from certvigil.output.json_schema import (
    CertificateModel,
    CertificateRevocationModel,
    ChainModel,
    EndpointModel,
    FailureModel,
    FindingModel,
    MethodResultModel,
    ObservationModel,
    RevocationModel,
    ScanDocument,
    StapleModel,
)
from certvigil.output.summary import Tally
from tests.output.reports import NOW, expired, expiring, good, refused

STARTED = datetime(2026, 3, 1, 11, 59, tzinfo=UTC)


def write_document(reports: list[EndpointReport], errors: list[TargetError]) -> str:
    """The document the writer produces for these reports and errors."""
    stream = io.StringIO()
    writer = JsonDocumentWriter(stream, command="scan", version="9.9.9")
    tally = Tally()
    writer.begin(started_at_utc=STARTED)
    for report in reports:
        writer.write(report)
        tally.add(report)
    for error in errors:
        tally.add_target_error(error)
    writer.finish(tally, finished_at_utc=NOW)
    return stream.getvalue()


def test_streamed_document_is_one_valid_json_object() -> None:
    """Head, endpoints and tail written piece by piece form one document the model accepts."""
    text = write_document(
        [good(), expiring(), expired(), refused()],
        [TargetError("exa mple", "contains white space", source="t.txt", position=3)],
    )
    document = ScanDocument.model_validate_json(text)
    assert document.schema_version == SCHEMA_VERSION
    assert document.generator.version == "9.9.9"
    assert [e.endpoint for e in document.endpoints] == [
        "good.test:443",
        "soon.test:8443",
        "old.test:25",
        "127.0.0.1:9",
    ]
    assert document.summary.exit_code == 2
    assert (document.summary.ok, document.summary.warning, document.summary.critical) == (1, 1, 1)
    assert document.summary.failed == 1
    assert document.target_errors[0].position == 3
    assert document.target_errors[0].source == "t.txt"
    assert document.started_at_utc == STARTED


def test_empty_document_is_valid() -> None:
    """With no endpoint and no error the document still parses."""
    document = json.loads(write_document([], []))
    assert document["endpoints"] == []
    assert document["summary"]["endpoints"] == 0


def test_endpoint_fields_carry_the_report() -> None:
    """An endpoint's JSON has its target, leaf facts, days left, chain and findings."""
    data = json.loads(write_document([expired()], []))["endpoints"][0]
    assert data["target"] == {
        "host": "old.test",
        "port": 25,
        "sni": None,
        "server_name": "old.test",
        "expected_name": "old.test",
        "starttls": "smtp",
    }
    assert data["status"] == "observed"
    assert data["verdict"] == "critical"
    leaf = data["certificates"][0]
    assert leaf["days_remaining"] == -1  # expired 1.5 days ago, truncated toward zero
    assert leaf["not_after_utc"].endswith("Z")
    assert leaf["san_dns"] == ["old.test", "www.old.test"]
    assert data["chain"]["is_trusted"] is False
    assert data["observation"]["chain_length"] == 2
    assert [f["code"] for f in data["findings"]] == ["expired", "untrusted"]
    assert data["failure"] is None


def test_failed_endpoint_has_failure_and_no_certificates() -> None:
    """A failed probe serialises its kind and detail, with null observation and chain."""
    data = json.loads(write_document([refused()], []))["endpoints"][0]
    assert data["status"] == "failed"
    assert data["verdict"] == "unknown"
    assert data["failure"]["kind"] == "connection_refused"
    assert data["observation"] is None
    assert data["chain"] is None
    assert data["certificates"] == []


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_models_cover_every_dataclass_field() -> None:
    """Each fact in the frozen results has a field in the JSON models (none is dropped)."""
    pairs: list[tuple[type, type[BaseModel], set[str]]] = [
        (CertificateFacts, CertificateModel, set()),
        (ChainReport, ChainModel, set()),
        (Finding, FindingModel, set()),
        (ProbeFailure, FailureModel, {"target"}),
        (TlsObservation, ObservationModel, {"target", "chain_der", "ocsp_staple_der"}),
        (EndpointReport, EndpointModel, set()),
        (RevocationReport, RevocationModel, set()),
        (CertificateRevocation, CertificateRevocationModel, set()),
        (MethodResult, MethodResultModel, set()),
        (StapleReport, StapleModel, set()),
    ]
    for source, model, represented_otherwise in pairs:
        missing = _field_names(source) - set(model.model_fields) - represented_otherwise
        assert missing == set(), f"{model.__name__} lacks {sorted(missing)}"


def test_revocation_verdict_is_serialised() -> None:
    """A report that carries a revocation verdict shows it per certificate and method."""
    revoked_at = datetime(2026, 2, 1, tzinfo=UTC)
    report = dataclasses.replace(
        good(),
        revocation=RevocationReport(
            evaluated_at_utc=NOW,
            certificates=(
                CertificateRevocation(
                    cert_index=0,
                    subject="CN=good.test",
                    serial_hex="0a1b",
                    status=RevocationStatus.REVOKED,
                    decided_by=RevocationMethod.CRL,
                    revoked_at_utc=revoked_at,
                    revocation_reason="key_compromise",
                    methods=(
                        MethodResult(
                            method=RevocationMethod.CRL,
                            status=RevocationStatus.REVOKED,
                            url="http://127.0.0.1:1/ca.crl",
                            revoked_at_utc=revoked_at,
                        ),
                    ),
                ),
            ),
            staple=StapleReport(was_requested=True, is_present=False),
        ),
    )
    data = json.loads(write_document([report], []))["endpoints"][0]["revocation"]
    assert data["is_revoked"] is True
    assert data["leaf_status"] == "revoked"
    assert data["certificates"][0]["decided_by"] == "crl"
    assert data["certificates"][0]["methods"][0]["url"] == "http://127.0.0.1:1/ca.crl"
    assert data["certificates"][0]["revoked_at_utc"] == "2026-02-01T00:00:00Z"
    assert data["staple"] == {
        "was_requested": True,
        "is_present": False,
        "status": None,
        "is_for_leaf": None,
        "must_staple": False,
        "detail": "",
    }
    assert json.loads(write_document([good()], []))["endpoints"][0]["revocation"] is None


def _keys_match_models(value: object, model: type[BaseModel]) -> list[str]:
    """Paths where the written keys differ from the model's fields (recursively)."""
    if not isinstance(value, dict):
        return ["(not an object)"]
    problems = []
    if set(value) != set(model.model_fields):
        problems.append(f"{model.__name__}: {sorted(set(value) ^ set(model.model_fields))}")
    for name, field in model.model_fields.items():
        inner = value.get(name)
        nested = [
            arg
            for arg in (field.annotation, *getattr(field.annotation, "__args__", ()))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        for arg in getattr(field.annotation, "__args__", ()):
            nested += [
                a
                for a in getattr(arg, "__args__", ())
                if isinstance(a, type) and issubclass(a, BaseModel)
            ]
        if not nested or inner is None:
            continue
        for item in inner if isinstance(inner, list) else [inner]:
            problems += _keys_match_models(item, nested[0])
    return problems


def test_written_endpoints_carry_exactly_the_schema_fields() -> None:
    """Each written endpoint has every field of its model, nested ones too, and no other."""
    reports = [good(), expiring(), expired(), refused()]
    for report in reports:
        written = json.loads(json.dumps(endpoint_json(report)))
        assert _keys_match_models(written, EndpointModel) == []
        assert EndpointModel.model_validate(written).endpoint == report.target.endpoint


def test_times_are_utc_with_a_z_suffix() -> None:
    """Times read ``...Z``, with microseconds only when there are some."""
    assert utc_text(datetime(2026, 11, 27, 10, 6, 30, tzinfo=UTC)) == "2026-11-27T10:06:30Z"
    assert (
        utc_text(datetime(2026, 11, 27, 10, 6, 30, 120, tzinfo=UTC))
        == "2026-11-27T10:06:30.000120Z"
    )


def test_non_ascii_text_is_written_as_is() -> None:
    """A U-label in a subject reaches the document as UTF-8 characters, still valid JSON."""
    report = good()
    leaf = dataclasses.replace(report.certificates[0], subject="CN=bücher.example")
    report = dataclasses.replace(report, certificates=(leaf, *report.certificates[1:]))
    text = write_document([report], [])
    assert "CN=bücher.example" in text
    document = ScanDocument.model_validate_json(text)
    assert document.endpoints[0].certificates[0].subject == "CN=bücher.example"
