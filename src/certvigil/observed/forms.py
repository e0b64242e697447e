"""How the observation records map to their JSON form: tags, field types, the CRL link.

Shared by the encoder (``certvigil.observed.encode``), the fast reader
(``certvigil.observed.fast_read``) and the careful reader (``certvigil.observed.codec``),
so the three agree on one description of the document.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from certvigil.observed.handshake import ProbeFailure, TlsObservation
from certvigil.observed.tls_config import TlsConfigObservation

__all__ = [
    "BY_TAG",
    "CRL_FIELD",
    "OBSERVATION_FORMAT",
    "TAGS",
    "FieldForm",
    "fields_of",
    "union_members",
]

OBSERVATION_FORMAT = "certvigil.observation/1"
"""The ``format`` of the documents this module writes and the only one it reads."""

TAGS: dict[type[Any], str] = {
    TlsObservation: "tls",
    ProbeFailure: "failure",
    TlsConfigObservation: "tls_config",
}
"""The ``"type"`` a record carries where a field can hold one of several records."""

BY_TAG: dict[str, type[Any]] = {tag: cls for cls, tag in TAGS.items()}

CRL_FIELD = "response_sha256"
"""The key of a ``RevocationFetch`` naming its CRL in the document's ``crls`` map."""

FieldForm = tuple[str, Any, bool]
"""One dataclass field: its name, its resolved type, whether it has a default."""

_FIELDS: dict[type[Any], tuple[FieldForm, ...]] = {}


def fields_of(cls: type[Any]) -> tuple[FieldForm, ...]:
    """Each field of dataclass ``cls`` in declaration order (the document's key order)."""
    known = _FIELDS.get(cls)
    if known is not None:
        return known
    resolved = typing.get_type_hints(cls)
    known = _FIELDS[cls] = tuple(
        (
            f.name,
            resolved[f.name],
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )
    return known


def union_members(hint: Any) -> tuple[Any, ...] | None:
    """The members of a union type (``X | None`` included), ``None`` for any other type."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return None
