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
batch), only there. OCSP responses, being small and per certificate, stay inline. A
certificate (a served chain's, a revocation check's, an AIA fetch's) is base64 like any
bytes, or, in a document whose writer's caller keeps the certificate itself (the store,
whose ``certificates`` table holds each served certificate once),
``{"sha256": "<hex>"}``, which only a reader given that caller's certificates resolves.

Reading refuses what it does not know: an unknown format, a missing or unknown field, a
value of the wrong type. The error (``ObservationFormatError``) names the field by its
path, ``observation.handshake.chain_der[1]``. The JSON Schema of the document is
``docs/schema/observation.schema.json`` (``certvigil.output.observation_schema``).

Writing is ``certvigil.observed.encode`` (one encoding function per record type).
Reading goes first through ``certvigil.observed.fast_read``, which takes well-formed
documents only and returns what the careful reader here would; whatever it declines is
read again by the careful reader, so acceptance and every error message are the
careful reader's.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import math
import typing
from collections.abc import Mapping, MutableMapping
from datetime import datetime
from enum import Enum
from typing import Any

import orjson

from certvigil.errors import ObservationFormatError
from certvigil.observed import fast_read
from certvigil.observed.encode import b64, crl_digest, encode_observation
from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.forms import (
    BY_TAG,
    CRL_FIELD,
    OBSERVATION_FORMAT,
    REFERENCE_KEY,
    TAGS,
    CertificateDer,
    Tables,
    fields_of,
    union_members,
)
from certvigil.observed.revocation import RevocationFetch

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "OBSERVATION_FORMAT",
    "crl_digest",
    "observation_from_dict",
    "observation_from_json",
    "observation_to_dict",
    "observation_to_json",
]

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
"""Largest document read: a few large CRLs inline fit well within it."""

_NONE = Tables({}, {})


def observation_to_dict(
    observation: EndpointObservation,
    *,
    crls: MutableMapping[str, bytes] | None = None,
    certificate_digests: Mapping[bytes, str] | None = None,
) -> dict[str, Any]:
    """The document for ``observation`` as plain JSON values.

    Args:
        observation: The observation.
        crls: A map from SHA-256 (hex) to CRL bytes shared by many documents: CRLs go
            there and the document's own ``crls`` stays empty. ``None`` keeps them in
            the document.
        certificate_digests: The SHA-256 (hex) of certificates the caller keeps
            itself, by their bytes: each of these is written as ``{"sha256": "<hex>"}``
            and read back only with the caller's ``certificates``. ``None`` writes
            every certificate's bytes.

    Returns:
        ``{"format", "observation", "crls"}``, ready for ``json.dumps``.

    Raises:
        ValueError: A time is naive or a number is not finite (no such observation
            comes from a probe).
    """
    own: dict[str, bytes] = {}
    body = encode_observation(observation, own if crls is None else crls, certificate_digests)
    return {
        "format": OBSERVATION_FORMAT,
        "observation": body,
        "crls": {digest: b64(der) for digest, der in sorted(own.items())},
    }


def observation_to_json(
    observation: EndpointObservation,
    *,
    crls: MutableMapping[str, bytes] | None = None,
    certificate_digests: Mapping[bytes, str] | None = None,
) -> str:
    """:func:`observation_to_dict` as compact JSON text (ASCII only)."""
    document = observation_to_dict(observation, crls=crls, certificate_digests=certificate_digests)
    return json.dumps(document, separators=(",", ":"), allow_nan=False)


def observation_from_json(
    text: str | bytes,
    *,
    crls: Mapping[str, bytes] | None = None,
    certificates: Mapping[str, bytes] | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> EndpointObservation:
    """Read a document written by :func:`observation_to_json`.

    Args:
        text: The JSON text.
        crls: CRL bytes by SHA-256 (hex) for documents written with a shared map.
        certificates: Certificate bytes by SHA-256 (hex) for documents written with
            ``certificate_digests``: where a certificate written by reference is found.
        max_bytes: Largest document accepted.

    Returns:
        The observation, equal to the one written.

    Raises:
        ObservationFormatError: The text is too large, not JSON, or not an
            observation document; the message names the field.
    """
    if len(text) > max_bytes:
        raise ObservationFormatError("", f"document larger than {max_bytes} bytes")
    # orjson parses several times faster than json, but not quite the same language:
    # it refuses NaN, Infinity, numbers beyond a double's range and lone surrogates,
    # which json takes, and turns integers beyond 64 bits into floats. The fast reader
    # takes no float where the careful reader would want an integer, so a document
    # orjson misread is declined there; json.loads and the careful reader then decide,
    # and the text is read exactly as before.
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    else:
        try:
            return fast_read.read_document(parsed, crls, certificates)
        except fast_read.Declined:
            pass
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ObservationFormatError("", f"not JSON: {exc}") from None
    return _read_carefully(document, crls, certificates)


def observation_from_dict(
    document: object,
    *,
    crls: Mapping[str, bytes] | None = None,
    certificates: Mapping[str, bytes] | None = None,
) -> EndpointObservation:
    """Read a document given as parsed JSON values; see :func:`observation_from_json`."""
    try:
        return fast_read.read_document(document, crls, certificates)
    except fast_read.Declined:
        return _read_carefully(document, crls, certificates)


def _read_carefully(
    document: object,
    crls: Mapping[str, bytes] | None,
    certificates: Mapping[str, bytes] | None = None,
) -> EndpointObservation:
    """The careful reader: the rule for every document, naming the field of a defect.

    The fast reader (``certvigil.observed.fast_read``) takes well-formed documents
    first; this one reads whatever it declines, to accept it or to say what is wrong.
    """
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
        der = _decode(value, bytes, f"crls.{digest}", _NONE)
        if hashlib.sha256(der).hexdigest() != digest:
            raise ObservationFormatError(f"crls.{digest}", "the bytes do not have this SHA-256")
        table[digest] = der
    if "observation" not in document:
        raise ObservationFormatError("observation", "missing")
    tables = Tables(table, certificates or {})
    decoded = _decode(document["observation"], EndpointObservation, "observation", tables)
    return typing.cast(EndpointObservation, decoded)


def _show(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else "a value"
    return text if len(text) <= 40 else text[:37] + '..."'


def _decode(value: Any, hint: Any, path: str, tables: Tables) -> Any:
    members = union_members(hint)
    if members is not None:
        if value is None:
            if type(None) in members:
                return None
            raise ObservationFormatError(path, "must not be null")
        classes = [m for m in members if m is not type(None)]
        if len(classes) == 1:
            return _decode(value, classes[0], path, tables)
        if not isinstance(value, dict):
            raise ObservationFormatError(path, "not a JSON object")
        tag = value.get("type")
        cls = BY_TAG.get(tag) if isinstance(tag, str) else None
        if cls is None or cls not in classes:
            allowed = ", ".join(TAGS[c] for c in classes)
            raise ObservationFormatError(f"{path}.type", f"{_show(tag)} is not one of {allowed}")
        return _decode({k: v for k, v in value.items() if k != "type"}, cls, path, tables)
    if hint is CertificateDer:
        if isinstance(value, dict):
            return _certificate(value, path, tables.certificates)
        hint = bytes
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
        try:
            number = float(value)
        except OverflowError:  # an integer beyond a double's range
            raise ObservationFormatError(path, "too large a number") from None
        if not math.isfinite(number):
            # json reads NaN and Infinity, which no observation holds and none can be
            # written with (JSON has no such numbers).
            raise ObservationFormatError(path, "not a finite number")
        return number
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
        return tuple(_decode(v, item, f"{path}[{i}]", tables) for i, v in enumerate(value))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_record(value, hint, path, tables)
    raise TypeError(f"no JSON form for {hint!r}")  # a model field of a new kind


def _certificate(value: dict[str, Any], path: str, certificates: Mapping[str, bytes]) -> bytes:
    """A certificate written by reference, from the reader's ``certificates``."""
    unknown = set(value) - {REFERENCE_KEY}
    if unknown:
        raise ObservationFormatError(f"{path}.{min(unknown)}", "unknown field")
    if REFERENCE_KEY not in value:
        raise ObservationFormatError(f"{path}.{REFERENCE_KEY}", "missing")
    digest = value[REFERENCE_KEY]
    if not isinstance(digest, str):
        raise ObservationFormatError(f"{path}.{REFERENCE_KEY}", "not a string")
    der = certificates.get(digest)
    if der is None:
        shown = f'"{digest}"' if len(digest) <= 64 else "it"
        raise ObservationFormatError(
            f"{path}.{REFERENCE_KEY}", f"{shown} names no certificate the reader was given"
        )
    return der


def _decode_record(value: Any, cls: type[Any], path: str, tables: Tables) -> Any:
    if not isinstance(value, dict):
        raise ObservationFormatError(path, "not a JSON object")
    fields = fields_of(cls)
    known = {name for name, _, _ in fields}
    if cls is RevocationFetch:
        known.add(CRL_FIELD)
    unknown = set(value) - known
    if unknown:
        raise ObservationFormatError(f"{path}.{min(unknown)}", "unknown field")
    arguments: dict[str, Any] = {}
    for name, hint, has_default in fields:
        if name not in value:
            if has_default:
                continue
            raise ObservationFormatError(f"{path}.{name}", "missing")
        arguments[name] = _decode(value[name], hint, f"{path}.{name}", tables)
    if cls is RevocationFetch and value.get(CRL_FIELD) is not None:
        digest = value[CRL_FIELD]
        crls = tables.crls
        if not isinstance(digest, str) or digest not in crls:
            shown = f'"{digest}"' if isinstance(digest, str) and len(digest) <= 64 else "it"
            raise ObservationFormatError(
                f"{path}.{CRL_FIELD}", f"{shown} names no CRL in the document or store"
            )
        if arguments.get("response_der") is not None:
            raise ObservationFormatError(f"{path}.{CRL_FIELD}", "given together with response_der")
        arguments["response_der"] = crls[digest]
    try:
        return cls(**arguments)
    except (ValueError, TypeError) as exc:
        raise ObservationFormatError(path, str(exc)) from None
