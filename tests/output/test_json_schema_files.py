"""The JSON Schema files in docs/schema/ are the models' schemas as they are now."""

from __future__ import annotations

import json
from pathlib import Path

from certvigil.output.json_schema import SCHEMA_FILES, json_schema_texts

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"


def test_committed_schema_files_match_the_models() -> None:
    """Each file equals what the models give; after a change to the output models run
    ``python -m certvigil.output.json_schema docs/schema`` and commit the result."""
    for name, text in json_schema_texts().items():
        committed = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
        assert committed == json.loads(text), f"docs/schema/{name} is out of date"


def test_schemas_refuse_unknown_fields_and_require_every_field() -> None:
    """The published scan schema is strict like the models: no extra fields, and the
    endpoint object requires its facts (a consumer can rely on each being present)."""
    scan = json.loads(json_schema_texts()["scan.schema.json"])
    assert set(SCHEMA_FILES) == {
        "scan.schema.json",
        "cert.schema.json",
        "observation.schema.json",
    }
    assert scan["additionalProperties"] is False
    endpoint = scan["$defs"]["EndpointModel"]
    assert endpoint["additionalProperties"] is False
    assert {"endpoint", "target", "certificates", "chain", "findings"} <= set(endpoint["required"])
