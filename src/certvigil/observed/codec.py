"""The versioned JSON form of an ``EndpointObservation``; exact round trip, strict reading.

A document is one JSON object::

    {"format": "certvigil.observation/1",
     "observation": {...the EndpointObservation's fields...},
     "crls": {"<sha256 hex>": "<base64 DER>", ...}}

Field names are the dataclasses' own (``certvigil.observed``); bytes are base64
(standard alphabet, padded), times ISO 8601 with their UTC offset, enumerations their
string values, tuples lists. Where a field can hold one of two records, the record
carries ``"type"``: ``"tls"`` (a ``TlsObservation``), ``"failure"`` (a
``ProbeFailure``) or ``"tls_config"`` (a ``TlsConfigObservation``). A CRL is not written
inline: its fetch carries ``response_sha256`` and the bytes sit once in ``crls``, or,
when the caller passes its own ``crls`` map (the store's table of CRLs, an agent's
batch), only there. OCSP responses, being small and per certificate, stay inline.

Reading refuses what it does not know: an unknown format, a missing or unknown field, a
value of the wrong type. The error (``ObservationFormatError``) names the field by its
path, ``observation.handshake.chain_der[1]``. The JSON Schema of the document is
``docs/schema/observation.schema.json`` (``certvigil.output.observation_schema``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Callable, Mapping, MutableMapping
from datetime import datetime
from enum import Enum
from typing import Any

from certvigil.errors import ObservationFormatError
from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.handshake import ProbeFailure, TlsObservation
from certvigil.observed.revocation import RevocationFetch, RevocationMethod
from certvigil.observed.tls_config import TlsConfigObservation

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "OBSERVATION_FORMAT",
    "observation_from_dict",
    "observation_from_json",
    "observation_to_dict",
    "observation_to_json",
]

OBSERVATION_FORMAT = "certvigil.observation/1"
"""The ``format`` of the documents this module writes and the only one it reads."""

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
"""Largest document read: a few large CRLs inline fit well within it."""

_TAGS: dict[type[Any], str] = {
    TlsObservation: "tls",
    ProbeFailure: "failure",
    TlsConfigObservation: "tls_config",
}
_BY_TAG = {tag: cls for cls, tag in _TAGS.items()}
_CRL_FIELD = "response_sha256"


def observation_to_dict(
    observation: EndpointObservation, *, crls: MutableMapping[str, bytes] | None = None
) -> dict[str, Any]:
    """The document for ``observation`` as plain JSON values.

    Args:
        observation: The observation.
        crls: A map from SHA-256 (hex) to CRL bytes shared by many documents: CRLs go
            there and the document's own ``crls`` stays empty. ``None`` keeps them in
            the document.

    Returns:
        ``{"format", "observation", "crls"}``, ready for ``json.dumps``.

    Raises:
        ValueError: A time is naive or a number is not finite (no such observation
            comes from a probe).
    """
    own: dict[str, bytes] = {}
    body = _encode(observation, EndpointObservation, own if crls is None else crls)
    return {
        "format": OBSERVATION_FORMAT,
        "observation": body,
        "crls": {digest: _b64(der) for digest, der in sorted(own.items())},
    }


def observation_to_json(
    observation: EndpointObservation, *, crls: MutableMapping[str, bytes] | None = None
) -> str:
    """:func:`observation_to_dict` as compact JSON text (ASCII only)."""
    return json.dumps(
        observation_to_dict(observation, crls=crls), separators=(",", ":"), allow_nan=False
    )


def observation_from_json(
    text: str | bytes,
    *,
    crls: Mapping[str, bytes] | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> EndpointObservation:
    """Read a document written by :func:`observation_to_json`.

    Args:
        text: The JSON text.
        crls: CRL bytes by SHA-256 (hex) for documents written with a shared map.
        max_bytes: Largest document accepted.

    Returns:
        The observation, equal to the one written.

    Raises:
        ObservationFormatError: The text is too large, not JSON, or not an
            observation document; the message names the field.
    """
    if len(text) > max_bytes:
        raise ObservationFormatError("", f"document larger than {max_bytes} bytes")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ObservationFormatError("", f"not JSON: {exc}") from None
    return observation_from_dict(document, crls=crls)


def observation_from_dict(
    document: object, *, crls: Mapping[str, bytes] | None = None
) -> EndpointObservation:
    """Read a document given as parsed JSON values; see :func:`observation_from_json`."""
    if not isinstance(document, dict):
        raise ObservationFormatError("", "not a JSON object")
    fmt = document.get("format")
    if fmt != OBSERVATION_FORMAT:
        raise ObservationFormatError(
            "format", f"{_show(fmt)} is not a known format (expected {OBSERVATION_FORMAT})"
        )
    unknown = set(document) - {"format", "observation", "crls"}
    if unknown:
        raise ObservationFormatError(min(unknown), "unknown field")
    own = document.get("crls", {})
    if not isinstance(own, dict):
        raise ObservationFormatError("crls", "not a JSON object")
    table: dict[str, bytes] = dict(crls or {})
    for digest, value in own.items():
        der = _decode(value, bytes, f"crls.{digest}", table)
        if hashlib.sha256(der).hexdigest() != digest:
            raise ObservationFormatError(f"crls.{digest}", "the bytes do not have this SHA-256")
        table[digest] = der
    if "observation" not in document:
        raise ObservationFormatError("observation", "missing")
    decoded = _decode(document["observation"], EndpointObservation, "observation", table)
    return typing.cast(EndpointObservation, decoded)


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def _show(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else "a value"
    return text if len(text) <= 40 else text[:37] + '..."'


_HINTS: dict[type[Any], tuple[tuple[str, Any, bool], ...]] = {}


def _hints(cls: type[Any]) -> tuple[tuple[str, Any, bool], ...]:
    """Each field of dataclass ``cls``: name, resolved type, whether it has a default."""
    known = _HINTS.get(cls)
    if known is not None:
        return known
    resolved = typing.get_type_hints(cls)
    known = _HINTS[cls] = tuple(
        (
            f.name,
            resolved[f.name],
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )
    return known


def _union_members(hint: Any) -> tuple[Any, ...] | None:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return None


def _encode(value: Any, hint: Any, crls: MutableMapping[str, bytes]) -> Any:
    return _encoder(hint)(value, crls)


_Encoder = Callable[[Any, MutableMapping[str, bytes]], Any]
_ENCODERS: dict[Any, _Encoder] = {}


def _encoder(hint: Any) -> _Encoder:
    """The encoding function for values of type ``hint``, built once per type.

    The store encodes every observation it records: working out a type's form once,
    rather than asking ``typing`` about each value, makes encoding several times
    faster.
    """
    known = _ENCODERS.get(hint)
    if known is None:
        known = _ENCODERS[hint] = _build_encoder(hint)
    return known


def _build_encoder(hint: Any) -> _Encoder:
    members = _union_members(hint)
    if members is not None:
        classes = [m for m in members if m is not type(None)]
        if len(classes) == 1:
            only = _encoder(classes[0])
            return lambda value, crls: None if value is None else only(value, crls)

        def tagged(value: Any, crls: MutableMapping[str, bytes]) -> Any:
            if value is None:
                return None
            cls = type(value)
            return {"type": _TAGS[cls], **_encoder(cls)(value, crls)}

        return tagged
    if hint is bytes:
        return lambda value, _crls: _b64(value)
    if hint is datetime:
        return _encode_time
    if hint is float:
        return _encode_float
    if hint in (bool, int, str):
        return lambda value, _crls: value
    if isinstance(hint, type) and issubclass(hint, Enum):
        return lambda value, _crls: value.value
    if typing.get_origin(hint) is tuple:
        item = _encoder(typing.get_args(hint)[0])
        return lambda value, crls: [item(v, crls) for v in value]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if hint is RevocationFetch:
            return _encode_fetch
        fields = [(name, _encoder(h)) for name, h, _ in _hints(hint)]
        return lambda value, crls: {name: enc(getattr(value, name), crls) for name, enc in fields}

    def unknown(_value: Any, _crls: MutableMapping[str, bytes]) -> Any:
        raise TypeError(f"no JSON form for {hint!r}")  # a model field of a new kind

    return unknown


def _encode_time(value: datetime, _crls: MutableMapping[str, bytes]) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive time {value.isoformat()} in an observation")
    return value.isoformat()


def _encode_float(value: float, _crls: MutableMapping[str, bytes]) -> float:
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {value} in an observation")
    return float(value)


def _encode_fetch(value: RevocationFetch, crls: MutableMapping[str, bytes]) -> dict[str, Any]:
    is_crl = value.method is RevocationMethod.CRL and value.response_der is not None
    out: dict[str, Any] = {}
    for name, h, _ in _hints(RevocationFetch):
        # A CRL's bytes go to ``crls`` only: encoding them here would be thrown away.
        out[name] = (
            None if is_crl and name == "response_der" else _encode(getattr(value, name), h, crls)
        )
    out[_CRL_FIELD] = None
    if is_crl and value.response_der is not None:
        digest = crl_digest(value.response_der)
        crls.setdefault(digest, value.response_der)
        out[_CRL_FIELD] = digest
    return out


_DIGESTS: dict[int, tuple[bytes, str]] = {}
_DIGESTS_KEPT = 32


def crl_digest(der: bytes) -> str:
    """The SHA-256 (hex) of a CRL, remembered for the last few CRL objects.

    One downloaded CRL (the same ``bytes`` object, from the scan's or the daemon's
    cache) is referred to by every observation under its issuer; hashing a large CRL
    once per observation would cost more than the rest of the encoding.
    """
    known = _DIGESTS.get(id(der))
    if known is not None and known[0] is der:
        return known[1]
    digest = hashlib.sha256(der).hexdigest()
    if len(_DIGESTS) >= _DIGESTS_KEPT:
        _DIGESTS.pop(next(iter(_DIGESTS)))
    _DIGESTS[id(der)] = (der, digest)
    return digest


def _decode(value: Any, hint: Any, path: str, crls: Mapping[str, bytes]) -> Any:
    members = _union_members(hint)
    if members is not None:
        if value is None:
            if type(None) in members:
                return None
            raise ObservationFormatError(path, "must not be null")
        classes = [m for m in members if m is not type(None)]
        if len(classes) == 1:
            return _decode(value, classes[0], path, crls)
        if not isinstance(value, dict):
            raise ObservationFormatError(path, "not a JSON object")
        tag = value.get("type")
        cls = _BY_TAG.get(tag) if isinstance(tag, str) else None
        if cls is None or cls not in classes:
            allowed = ", ".join(_TAGS[c] for c in classes)
            raise ObservationFormatError(f"{path}.type", f"{_show(tag)} is not one of {allowed}")
        return _decode({k: v for k, v in value.items() if k != "type"}, cls, path, crls)
    if hint is bytes:
        if not isinstance(value, str):
            raise ObservationFormatError(path, "not a base64 string")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ObservationFormatError(path, "not valid base64") from None
    if hint is datetime:
        if not isinstance(value, str):
            raise ObservationFormatError(path, "not an ISO 8601 time string")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ObservationFormatError(path, f"{_show(value)} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise ObservationFormatError(path, "the time has no UTC offset")
        return moment
    if hint is bool:
        if not isinstance(value, bool):
            raise ObservationFormatError(path, "not true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ObservationFormatError(path, "not an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ObservationFormatError(path, "not a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ObservationFormatError(path, "not a string")
        return value
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(str(m.value) for m in hint)
            raise ObservationFormatError(path, f"{_show(value)} is not one of {choices}") from None
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise ObservationFormatError(path, "not a JSON array")
        item = typing.get_args(hint)[0]
        return tuple(_decode(v, item, f"{path}[{i}]", crls) for i, v in enumerate(value))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_record(value, hint, path, crls)
    raise TypeError(f"no JSON form for {hint!r}")  # a model field of a new kind


def _decode_record(value: Any, cls: type[Any], path: str, crls: Mapping[str, bytes]) -> Any:
    if not isinstance(value, dict):
        raise ObservationFormatError(path, "not a JSON object")
    fields = _hints(cls)
    known = {name for name, _, _ in fields}
    if cls is RevocationFetch:
        known.add(_CRL_FIELD)
    unknown = set(value) - known
    if unknown:
        raise ObservationFormatError(f"{path}.{min(unknown)}", "unknown field")
    arguments: dict[str, Any] = {}
    for name, hint, has_default in fields:
        if name not in value:
            if has_default:
                continue
            raise ObservationFormatError(f"{path}.{name}", "missing")
        arguments[name] = _decode(value[name], hint, f"{path}.{name}", crls)
    if cls is RevocationFetch and value.get(_CRL_FIELD) is not None:
        digest = value[_CRL_FIELD]
        if not isinstance(digest, str) or digest not in crls:
            shown = f'"{digest}"' if isinstance(digest, str) and len(digest) <= 64 else "it"
            raise ObservationFormatError(
                f"{path}.{_CRL_FIELD}", f"{shown} names no CRL in the document or store"
            )
        if arguments.get("response_der") is not None:
            raise ObservationFormatError(f"{path}.{_CRL_FIELD}", "given together with response_der")
        arguments["response_der"] = crls[digest]
    try:
        return cls(**arguments)
    except (ValueError, TypeError) as exc:
        raise ObservationFormatError(path, str(exc)) from None
