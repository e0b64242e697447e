"""How the observation records map to their JSON form: tags, field types, the CRL and
certificate links.

Shared by the encoder (``certvigil.observed.encode``), the fast reader
(``certvigil.observed.fast_read``) and the careful reader (``certvigil.observed.codec``),
so the three agree on one description of the document.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, NamedTuple

from certvigil.observed.handshake import ProbeFailure, TlsObservation
from certvigil.observed.issuers import IssuerFetch
from certvigil.observed.revocation import CertificateRevocationObservation
from certvigil.observed.tls_config import TlsConfigObservation

__all__ = [
    "BY_TAG",
    "CERTIFICATE_FIELDS",
    "CRL_FIELD",
    "OBSERVATION_FORMAT",
    "REFERENCE_KEY",
    "TAGS",
    "CertificateDer",
    "FieldForm",
    "Tables",
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

REFERENCE_KEY = "sha256"
"""The key of a certificate written by reference: ``{"sha256": "<hex>"}``."""

CERTIFICATE_FIELDS: dict[type[Any], frozenset[str]] = {
    TlsObservation: frozenset({"chain_der"}),
    CertificateRevocationObservation: frozenset({"certificate_der", "issuer_der"}),
    IssuerFetch: frozenset({"certificates_der"}),
}
"""The fields holding certificates (DER), by record type."""


class CertificateDer:
    """The type :func:`fields_of` gives a certificate where the model says ``bytes``.

    A certificate is written as base64 like any bytes, or, when the writer's caller
    keeps it itself (the store, whose ``certificates`` table holds every served
    certificate once), as ``{"sha256": "<hex>"}``, read back from the caller's map.
    Never instantiated: a marker the encoder and both readers dispatch on.
    """


class Tables(NamedTuple):
    """What a reader resolves a document's references from, by SHA-256 (hex)."""

    crls: Mapping[str, bytes]
    """CRLs: the document's own and the reader's caller's."""
    certificates: Mapping[str, bytes]
    """Certificates the reader's caller keeps (written by reference)."""


FieldForm = tuple[str, Any, bool]
"""One dataclass field: its name, its type in the document (``bytes`` of a
certificate as :class:`CertificateDer`), whether it has a default."""

_FIELDS: dict[type[Any], tuple[FieldForm, ...]] = {}


def fields_of(cls: type[Any]) -> tuple[FieldForm, ...]:
    """Each field of dataclass ``cls`` in declaration order (the document's key order)."""
    known = _FIELDS.get(cls)
    if known is not None:
        return known
    resolved = typing.get_type_hints(cls)
    certificates = CERTIFICATE_FIELDS.get(cls, frozenset())
    known = _FIELDS[cls] = tuple(
        (
            f.name,
            _as_certificate(resolved[f.name]) if f.name in certificates else resolved[f.name],
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )
    return known


def _as_certificate(hint: Any) -> Any:
    """``hint`` with ``bytes`` read as :class:`CertificateDer` (also in a tuple or an
    optional value)."""
    if hint is bytes:
        return CertificateDer
    if hint is type(None):
        return hint
    if typing.get_origin(hint) is tuple:
        item, *rest = typing.get_args(hint)
        return tuple[_as_certificate(item), *rest]  # type: ignore[misc]
    members = union_members(hint)
    if members is not None:
        return typing.Union[tuple(_as_certificate(m) for m in members)]  # noqa: UP007
    raise TypeError(f"a certificate field of type {hint!r}")  # a model change to follow


def union_members(hint: Any) -> tuple[Any, ...] | None:
    """The members of a union type (``X | None`` included), ``None`` for any other type."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return None
