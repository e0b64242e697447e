"""contrib/kibana: the saved objects parse, their references resolve, and every field they
use is in the index template's mappings (so the charts are not empty by a typo)."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

from certvigil.integrations.ecs import index_for
from tests.integrations.test_ecs import MAPPED

NDJSON = (
    Path(__file__).parent.parent.parent / "contrib" / "kibana" / "certvigil-saved-objects.ndjson"
)


def _objects() -> list[dict[str, Any]]:
    lines = NDJSON.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _kql_fields(query: str) -> set[str]:
    return set(re.findall(r"([A-Za-z@][\w.]*)\s*:", query))


def _fields_used(obj: dict[str, Any]) -> set[str]:
    attributes = obj["attributes"]
    used: set[str] = set()
    meta = attributes.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
    if meta:
        used |= _kql_fields(json.loads(meta).get("query", {}).get("query", ""))
    if "visState" in attributes:
        for agg in json.loads(attributes["visState"])["aggs"]:
            if "field" in agg["params"]:
                used.add(agg["params"]["field"])
    used |= set(attributes.get("columns", ()))
    used |= {field for field, _ in attributes.get("sort", ())}
    if "timeFieldName" in attributes:
        used.add(attributes["timeFieldName"])
    return used


def test_objects_parse_and_references_resolve() -> None:
    """Each line is a saved object; every reference names an object in the file."""
    objects = _objects()
    known = {(o["type"], o["id"]) for o in objects}

    assert {o["type"] for o in objects} == {"index-pattern", "visualization", "search", "dashboard"}
    for obj in objects:
        for reference in obj["references"]:
            assert (reference["type"], reference["id"]) in known, reference
        meta = obj["attributes"].get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
        if meta and "indexRefName" in json.loads(meta):
            names = {r["name"] for r in obj["references"]}
            assert json.loads(meta)["indexRefName"] in names


def test_dashboard_panels_name_their_references() -> None:
    """Each dashboard panel's panelRefName is one of the dashboard's references."""
    (dashboard,) = [o for o in _objects() if o["type"] == "dashboard"]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    names = {r["name"] for r in dashboard["references"]}

    assert len(panels) == 3
    assert {p["panelRefName"] for p in panels} == names


def test_every_field_used_is_mapped() -> None:
    """Charts, the problems search and the data view use only fields the template maps."""
    used = set().union(*(_fields_used(o) for o in _objects()))
    assert "tls.server.x509.not_after" in used
    assert "certvigil.grade" in used
    assert sorted(used - set(MAPPED)) == []


def test_the_field_check_can_fail() -> None:
    """A chart over a misspelt field is caught."""
    chart = {
        "attributes": {
            "visState": json.dumps({"aggs": [{"params": {"field": "tls.server.x509.notafter"}}]})
        }
    }
    assert _fields_used(chart) - set(MAPPED) == {"tls.server.x509.notafter"}


def test_data_view_matches_the_indices_documents_go_to() -> None:
    """The data view's pattern covers both monthly indices."""
    (view,) = [o for o in _objects() if o["type"] == "index-pattern"]
    pattern = view["attributes"]["title"]
    for dataset in ("certvigil.observation", "certvigil.certificate"):
        index = index_for({"event": {"dataset": dataset}, "@timestamp": "2026-06-01T00:00:00Z"})
        assert fnmatch.fnmatch(index, pattern)
