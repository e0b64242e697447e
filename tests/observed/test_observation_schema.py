"""The published observation schema mirrors the observation dataclasses field for field."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

from certvigil.observed.codec import OBSERVATION_FORMAT
from certvigil.observed.endpoint import EndpointObservation
from certvigil.output.json_schema import json_schema_texts
from certvigil.output.observation_schema import MIRRORS, ObservationDocument

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "schema" / "observation.schema.json"
# Fields the JSON form adds: the record's type tag and a CRL's digest reference.
ADDED = {"type", "response_sha256"}


def _reachable(cls: type[Any]) -> set[type[Any]]:
    """Every dataclass an observation can hold, found through the type hints."""
    found: set[type[Any]] = set()
    todo = [cls]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.add(current)
        for hint in typing.get_type_hints(current).values():
            stack = [hint]
            while stack:
                each = stack.pop()
                stack += typing.get_args(each)
                if dataclasses.is_dataclass(each) and isinstance(each, type):
                    todo.append(each)
    return found


def test_every_observation_record_has_a_schema_model() -> None:
    """Each dataclass reachable from EndpointObservation is mirrored by a model."""
    names = {cls.__name__ for cls in _reachable(EndpointObservation)}

    assert names == set(MIRRORS)


def test_each_model_has_exactly_its_dataclass_fields() -> None:
    """No field is missing from the schema and none is invented (beyond the tags)."""
    for cls in _reachable(EndpointObservation):
        fields = {f.name for f in dataclasses.fields(cls)}
        model_fields = set(MIRRORS[cls.__name__].model_fields) - ADDED

        assert model_fields == fields, cls.__name__


def test_the_document_format_is_the_codecs() -> None:
    """The schema's format constant is the one the codec writes."""
    annotation = ObservationDocument.model_fields["format"].annotation

    assert typing.get_args(annotation) == (OBSERVATION_FORMAT,)


def test_the_committed_schema_file_is_current() -> None:
    """docs/schema/observation.schema.json is what the models give now; after a change run
    ``python -m certvigil.output.json_schema docs/schema`` and commit the result."""
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))

    assert committed == json.loads(json_schema_texts()["observation.schema.json"])
