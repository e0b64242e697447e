"""ECS documents: every field exists in ECS 9.4 (or under certvigil.*) with its type, and in
the index template's mappings; ids are stable; contrib/ holds the template the code builds."""

from __future__ import annotations

import csv
import ipaddress
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.analysis.model import Finding, Severity
from certvigil.cli.snapshot_source import store_snapshots
from certvigil.integrations.ecs import (
    bulk_lines,
    certificate_documents,
    documents_for,
    index_for,
    observation_document,
)
from certvigil.integrations.es_template import ilm_policy, index_template
from certvigil.integrations.snapshot import snapshots_from_scan_document
from certvigil.store import Store
from certvigil.targets.target import StartTLS, Target
from tests.store.factories import NOW, facts, failed_report, ok_report

ROOT = Path(__file__).parent.parent.parent
ECS_FIELDS = Path(__file__).parent.parent / "data" / "ecs" / "fields.csv"


def _ecs_types() -> dict[str, str]:
    with ECS_FIELDS.open(newline="", encoding="utf-8") as stream:
        return {row["Field"]: row["Type"] for row in csv.DictReader(stream)}


ECS = _ecs_types()


def _mapping_types(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    found: dict[str, str] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            found.update(_mapping_types(spec["properties"], path + "."))
        else:
            found[path] = spec["type"]
    return found


MAPPED = _mapping_types(index_template()["template"]["mappings"]["properties"])


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """(dotted path, scalar) for every value; arrays share their field's path."""
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            out.extend(_leaves(item, f"{path}.{key}" if path else key))
        return out
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item, path)]
    return [(path, value)]


def _fits(kind: str, value: Any) -> bool:
    if kind in ("keyword", "wildcard", "match_only_text", "text", "constant_keyword"):
        return isinstance(value, str)
    if kind == "long":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "date":
        if not isinstance(value, str) or not value.endswith("Z"):
            return False
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True
    if kind == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
        return True
    raise AssertionError(f"type {kind} not handled by the test")


def violations(document: dict[str, Any]) -> list[str]:
    """Fields not in ECS (outside certvigil.*), of the wrong type, or not mapped."""
    problems = []
    for path, value in _leaves(document):
        if value is None:
            problems.append(f"{path}: null")
            continue
        if not path.startswith("certvigil."):
            kind = ECS.get(path)
            if kind is None:
                problems.append(f"{path}: not an ECS field")
                continue
            if not _fits(kind, value):
                problems.append(f"{path}: {value!r} is not an ECS {kind}")
        mapped = MAPPED.get(path)
        if mapped is None:
            problems.append(f"{path}: not in the index template")
        elif not _fits(mapped, value):
            problems.append(f"{path}: {value!r} is not a {mapped} as mapped")
    return problems


def _stored_snapshots(store: Store):
    return list(store_snapshots(store, since_utc=NOW - timedelta(days=1)))


def _fleet(store: Store) -> None:
    expired = facts("old.example.com", not_after_utc=NOW - timedelta(days=3))
    store.record_report(
        ok_report(
            Target(host="www.example.com", port=443),
            (facts("www.example.com", not_after_utc=NOW + timedelta(days=40)),),
        ),
        tags=["prod", "web"],
    )
    store.record_report(
        ok_report(
            Target(host="old.example.com", port=8443, sni="legacy.example.com"),
            (expired,),
            protocol="TLSv1.2",
            is_trusted=False,
            findings=(Finding(code="expired", severity=Severity.CRITICAL, message="expired"),),
        )
    )
    store.record_report(
        ok_report(
            Target(host="mail.example.com", port=25, starttls=StartTLS.SMTP),
            (facts("mail.example.com", not_after_utc=NOW + timedelta(days=5)),),
        )
    )
    store.record_report(failed_report(Target(host="10.1.2.3", port=443)))


def test_every_field_of_stored_observations_is_ecs_typed_and_mapped(store: Store) -> None:
    """Observation and certificate documents from the store carry only ECS fields of
    the right type (or certvigil.* ones), all of them in the template's mappings."""
    _fleet(store)
    documents = documents_for(_stored_snapshots(store))

    assert len(documents) == 4 + 3
    for document in documents:
        assert violations(document) == [], document["event"]["id"]


def test_stored_observation_fields_say_what_was_seen(store: Store) -> None:
    """The documents carry the endpoint, protocol, leaf and judgement as ECS expects them."""
    _fleet(store)
    by_endpoint = {
        d["certvigil"]["endpoint"]: d for d in map(observation_document, _stored_snapshots(store))
    }

    old = by_endpoint["old.example.com:8443/legacy.example.com"]
    assert old["tls"]["version"] == "1.2"
    assert old["tls"]["version_protocol"] == "tls"
    assert old["url"]["domain"] == "old.example.com"
    assert old["server"] == {
        "address": "old.example.com",
        "domain": "old.example.com",
        "ip": "127.0.0.1",
        "port": 8443,
    }
    assert old["certvigil"]["days_left"] == -3
    assert old["certvigil"]["trusted"] is False
    assert old["certvigil"]["finding_codes"] == ["expired"]
    x509 = old["tls"]["server"]["x509"]
    assert x509["subject"]["common_name"] == ["old.example.com"]
    assert x509["public_key_algorithm"] == "EC"
    assert x509["public_key_size"] == 256
    assert x509["not_after"] == "2026-05-29T12:00:00.000Z"
    failed = by_endpoint["10.1.2.3:443"]
    assert failed["event"]["outcome"] == "failure"
    assert failed["event"]["reason"] == "connection_refused"
    assert "url" not in failed
    assert "server" in failed and failed["server"]["ip"] == "127.0.0.1"
    assert by_endpoint["www.example.com:443"]["tags"] == ["prod", "web"]
    assert by_endpoint["mail.example.com:25+smtp"]["certvigil"]["starttls"] == "smtp"


def test_ids_and_indices_are_the_same_on_every_export(store: Store) -> None:
    """Exporting twice gives the same id and index for each document (loading is idempotent)."""
    _fleet(store)
    first = list(bulk_lines(documents_for(_stored_snapshots(store))))
    second = list(bulk_lines(documents_for(_stored_snapshots(store))))

    assert first == second
    actions = [json.loads(line) for line in first[::2]]
    ids = [a["index"]["_id"] for a in actions]
    assert len(set(ids)) == len(ids)
    assert {a["index"]["_index"] for a in actions} == {
        "certvigil-observations-2026.06",
        "certvigil-certificates-2026.06",
    }


def test_one_certificate_document_per_leaf_listing_its_endpoints() -> None:
    """A leaf served at two endpoints is one document naming both, as of its latest sighting."""
    leaf = facts("shared.example.com", not_after_utc=NOW + timedelta(days=10))
    a = ok_report(Target(host="a.example.com", port=443), (leaf,))
    b = ok_report(Target(host="b.example.com", port=443), (leaf,), at=NOW + timedelta(days=2))
    document = {"schema_version": 1, "endpoints": [_scan_json(a), _scan_json(b)]}

    (certificate,) = certificate_documents(snapshots_from_scan_document(document))

    assert certificate["certvigil"]["endpoints"] == ["a.example.com:443", "b.example.com:443"]
    assert certificate["certvigil"]["days_left"] == 8
    assert certificate["event"]["id"] == f"cert-{leaf.sha256_hex}"
    assert index_for(certificate) == "certvigil-certificates-2026.06"
    assert violations(certificate) == []


def _scan_json(report) -> dict[str, Any]:
    from certvigil.output.json_doc import endpoint_json

    return json.loads(json.dumps(endpoint_json(report)))


@given(st.text(max_size=80))
@example('"><script>alert(1)</script>\n\x1b[31m')
@example("\u202egnp.exe")
def test_any_subject_text_stays_a_valid_document(text: str) -> None:
    """Whatever a certificate's names hold, the document is valid ECS and one NDJSON line."""
    leaf = facts("x.example.com", not_after_utc=NOW + timedelta(days=1))
    hostile = type(leaf)(
        **{
            **{name: getattr(leaf, name) for name in leaf.__dataclass_fields__},
            "subject": text,
            "subject_cn": text,
            "issuer": text,
            "san_dns": (text,),
        }
    )
    report = ok_report(Target(host="x.example.com", port=443), (hostile,))
    (snapshot,) = snapshots_from_scan_document(
        {"schema_version": 1, "endpoints": [_scan_json(report)]}
    )

    documents = documents_for([snapshot])
    lines = list(bulk_lines(documents))

    assert all(violations(d) == [] for d in documents)
    assert all(line.endswith("\n") and line.count("\n") == 1 and line.isascii() for line in lines)
    assert json.loads(lines[1])["tls"]["server"]["x509"]["subject"]["distinguished_name"] == text


def test_the_checker_refuses_wrong_types_and_unknown_fields() -> None:
    """The ECS check can fail: a size as text, an unknown tls field, a bad ip are named."""
    document = {
        "tls": {"server": {"x509": {"public_key_size": "256"}}, "colour": "blue"},
        "server": {"ip": "not-an-ip"},
        "@timestamp": "2026-06-01 12:00",
    }
    found = violations(document)

    assert "tls.server.x509.public_key_size: '256' is not an ECS long" in found
    assert "tls.colour: not an ECS field" in found
    assert "server.ip: 'not-an-ip' is not an ECS ip" in found
    assert "@timestamp: '2026-06-01 12:00' is not an ECS date" in found


def test_template_types_agree_with_ecs() -> None:
    """Each ECS field in the template is mapped with ECS's own type."""
    wrong = {
        path: (kind, ECS[path])
        for path, kind in MAPPED.items()
        if not path.startswith("certvigil.") and ECS.get(path) != kind
    }
    assert wrong == {}


def test_contrib_files_are_what_the_code_installs() -> None:
    """contrib/elasticsearch holds exactly the template and policy `ship` installs."""
    folder = ROOT / "contrib" / "elasticsearch"
    template = json.loads((folder / "certvigil-index-template.json").read_text())
    policy = json.loads((folder / "certvigil-ilm-policy.json").read_text())

    assert template == index_template()
    assert policy == ilm_policy()
    assert template["template"]["settings"]["index.lifecycle.name"] == "certvigil"


def test_a_scan_document_with_a_wrong_value_is_named() -> None:
    """A scan document's bad field is reported with the endpoint and the field."""
    report = ok_report(
        Target(host="x.example.com", port=443),
        (facts("x.example.com", not_after_utc=NOW + timedelta(days=1)),),
    )
    entry = _scan_json(report)
    entry["certificates"][0]["not_after_utc"] = "tomorrow"

    with pytest.raises(ValueError, match=r"endpoints\[0\]\.certificates\[0\]\.not_after_utc"):
        snapshots_from_scan_document({"schema_version": 1, "endpoints": [entry]})


def test_utc_times_in_another_zone_are_written_in_utc() -> None:
    """A time with an offset is written as the same instant in UTC with Z."""
    from certvigil.integrations.ecs import utc_text

    later = datetime(2026, 6, 1, 14, 0, tzinfo=UTC).astimezone()
    assert utc_text(later) == "2026-06-01T14:00:00.000Z"


ALLOWED = json.loads((ECS_FIELDS.parent / "event_allowed_values.json").read_text())


def event_value_problems(document: dict[str, Any]) -> list[str]:
    """``event.*`` values ECS does not allow, or a type its category does not expect."""
    event = document["event"]
    problems = [
        f"event.{name}: {value!r}"
        for name in ("kind", "outcome", "category", "type")
        for value in (event.get(name) if isinstance(event.get(name), list) else [event.get(name)])
        if value is not None and value not in ALLOWED[f"event.{name}"]["allowed_values"]
    ]
    expected = ALLOWED["event.category"]["expected_event_types"]
    for category in event.get("category", []):
        for kind in event.get("type", []):
            if kind not in expected.get(category, []):
                problems.append(f"event.type {kind!r} not expected with category {category!r}")
    return problems


def test_event_values_are_ones_ecs_allows(store: Store) -> None:
    """event.kind, category, type and outcome take ECS's allowed values, in a valid pairing."""
    _fleet(store)
    documents = documents_for(_stored_snapshots(store))

    assert {d["event"]["outcome"] for d in documents if "outcome" in d["event"]} == {
        "success",
        "failure",
    }
    assert [event_value_problems(d) for d in documents] == [[]] * len(documents)
    assert event_value_problems(
        {"event": {"kind": "status", "category": ["network"], "type": ["creation"]}}
    ) == ["event.kind: 'status'", "event.type 'creation' not expected with category 'network'"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


def _valid_entry() -> dict[str, Any]:
    report = ok_report(
        Target(host="x.example.com", port=443),
        (facts("x.example.com", not_after_utc=NOW + timedelta(days=1)),),
        findings=(Finding(code="c", severity=Severity.WARNING, message="m", cert_index=0),),
    )
    return _scan_json(report)


@given(st.sampled_from(sorted(_valid_entry())), _JSON)
@example("target", {"host": "x", "port": True})
@example("certificates", [{"sha256_hex": "zz"}])
def test_a_scan_document_with_any_value_anywhere_is_read_or_refused_by_name(
    key: str, value: Any
) -> None:
    """Replacing any field of an endpoint with any JSON value gives a snapshot or a
    ValueError naming endpoints[0]; never another exception."""
    entry = _valid_entry()
    entry[key] = value
    try:
        snapshots_from_scan_document({"schema_version": 1, "endpoints": [entry]})
    except ValueError as exc:
        assert str(exc).startswith("endpoints[0]")


@given(st.sampled_from(sorted(_valid_entry()["certificates"][0])), _JSON)
@example("not_after_utc", "2026-01-01T00:00:00")
@example("key_bits", 1 << 40)
def test_any_value_in_the_leaf_is_read_or_refused_by_name(key: str, value: Any) -> None:
    """The same for every field of the leaf certificate's object."""
    entry = _valid_entry()
    entry["certificates"][0][key] = value
    try:
        snapshots_from_scan_document({"schema_version": 1, "endpoints": [entry]})
    except ValueError as exc:
        assert str(exc).startswith("endpoints[0]")
