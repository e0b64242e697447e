"""Hypothesis strategies from the JSON Schemas an OpenAPI document publishes.

Covers what FastAPI's documents use: ``type`` (object, array, string, integer, number,
boolean, null), ``anyOf``, ``enum``/``const``, string length and ``pattern``, number
bounds, array sizes, ``required`` and ``additionalProperties``. Values also stray
outside the schema now and then (another type, an extra key), since a server must
refuse those cleanly too.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

_ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def from_schema(schema: dict[str, Any], *, stray: bool = True) -> st.SearchStrategy[Any]:
    """Values for ``schema`` (mostly valid ones; invalid ones too when ``stray``)."""
    valid = _valid(schema)
    return st.one_of(valid, valid, valid, _ANY_JSON) if stray else valid


def _valid(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([_valid(s) for s in schema[key]])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _valid(schema["allOf"][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([_valid({**schema, "type": k}) for k in kind])
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**63)))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 2**63))
        return st.integers(min_value=int(low), max_value=int(high))
    if kind == "number":
        return st.floats(
            min_value=schema.get("minimum"),
            max_value=schema.get("maximum"),
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "string":
        min_size = int(schema.get("minLength", 0))
        if "pattern" in schema:
            max_size = min(int(schema.get("maxLength", 300)), 300)
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: min_size <= len(s) <= max_size
            )
        max_size = min(int(schema.get("maxLength", 40)), 300)
        return st.text(min_size=min_size, max_size=max(min_size, max_size))
    if kind == "array":
        items = schema.get("items", {})
        return st.lists(
            _valid(items) if items else _ANY_JSON,
            min_size=int(schema.get("minItems", 0)),
            max_size=min(int(schema.get("maxItems", 5)), 5),
        )
    if kind == "object" or "properties" in schema:
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: _valid(v) for k, v in properties.items() if k in required},
            optional={k: _valid(v) for k, v in properties.items() if k not in required},
        )
    return _ANY_JSON
