"""An observation's JSON-ready values, by one encoding function per record type.

The store encodes every observation it records and an agent every one it sends, so
this is on the ingest path of both. The form of each record type is worked out once,
on first use: an :func:`operator.attrgetter` that reads all of a record's fields in
one call, and the positions of the fields whose values need converting (bytes to
base64, times to ISO 8601, enumerations to their values, nested records), each bound
to its converter. Strings, integers and booleans are copied as they are, without a
call per value. The keys come out in field order, ``"type"`` first in tagged records,
as ``certvigil.observed.codec`` documents.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import typing
from collections.abc import Callable, MutableMapping
from datetime import datetime
from enum import Enum
from operator import attrgetter
from typing import Any

from pybase64 import b64encode_as_string

from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.forms import CRL_FIELD, TAGS, fields_of, union_members
from certvigil.observed.revocation import RevocationFetch, RevocationMethod

__all__ = ["b64", "crl_digest", "encode_observation"]

Encoder = Callable[[Any, MutableMapping[str, bytes]], Any]
"""Encodes a value; CRLs met on the way go into the map, by SHA-256 (hex)."""


def encode_observation(
    observation: EndpointObservation, crls: MutableMapping[str, bytes]
) -> dict[str, Any]:
    """The ``observation`` member of the document for ``observation``.

    Raises:
        ValueError: A time is naive or a number is not finite.
    """
    encoded: dict[str, Any] = _record_encoder(EndpointObservation, None)(observation, crls)
    return encoded


def b64(der: bytes) -> str:
    """``der`` in base64 (standard alphabet, padded), as ``base64.b64encode`` gives it.

    By pybase64 (SIMD): the bytes are most of an observation, and encoding them was
    most of its cost."""
    return b64encode_as_string(der)


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


def _encode_bytes(value: bytes, _crls: MutableMapping[str, bytes]) -> str:
    return b64(value)


def _encode_time(value: datetime, _crls: MutableMapping[str, bytes]) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive time {value.isoformat()} in an observation")
    return value.isoformat()


def _encode_float(value: float, _crls: MutableMapping[str, bytes]) -> float:
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {value} in an observation")
    return float(value)


def _encode_enum(value: Enum, _crls: MutableMapping[str, bytes]) -> Any:
    return value.value


def _converter(hint: Any) -> Encoder | None:
    """How a value of type ``hint`` is encoded; ``None`` when it is written as it is."""
    if hint in (str, int, bool):
        return None
    members = union_members(hint)
    if members is not None:
        classes = [m for m in members if m is not type(None)]
        if len(classes) > 1:
            return _tagged_encoder()
        inner = _converter(classes[0])
        if inner is None:
            return None
        only = inner

        def optional(value: Any, crls: MutableMapping[str, bytes]) -> Any:
            return None if value is None else only(value, crls)

        return optional
    if hint is bytes:
        return _encode_bytes
    if hint is datetime:
        return _encode_time
    if hint is float:
        return _encode_float
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _encode_enum
    if typing.get_origin(hint) is tuple:
        return _tuple_encoder(typing.get_args(hint)[0])
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record_encoder(hint, None)

    def unknown(_value: Any, _crls: MutableMapping[str, bytes]) -> Any:
        raise TypeError(f"no JSON form for {hint!r}")  # a model field of a new kind

    return unknown


def _tuple_encoder(item_hint: Any) -> Encoder:
    item = _converter(item_hint)
    if item is None:
        return lambda value, _crls: list(value)
    if item is _encode_bytes:
        return lambda value, _crls: [b64(v) for v in value]
    if item is _encode_enum:
        return lambda value, _crls: [v.value for v in value]
    convert = item
    return lambda value, crls: [convert(v, crls) for v in value]


def _tagged_encoder() -> Encoder:
    """A field holding one of several records (or ``None``): the record's own
    encoder, tag first, chosen by the value's class."""

    by_class = {cls: _record_encoder(cls, tag) for cls, tag in TAGS.items()}

    def tagged(value: Any, crls: MutableMapping[str, bytes]) -> Any:
        if value is None:
            return None
        return by_class[type(value)](value, crls)

    return tagged


_RECORD_ENCODERS: dict[tuple[type[Any], str | None], Encoder] = {}


def _record_encoder(cls: type[Any], tag: str | None) -> Encoder:
    """The encoder for dataclass ``cls``, its document led by ``"type": tag`` if given;
    built once."""
    known = _RECORD_ENCODERS.get((cls, tag))
    if known is None:
        known = _RECORD_ENCODERS[cls, tag] = _build_record_encoder(cls, tag)
    return known


def _build_record_encoder(cls: type[Any], tag: str | None) -> Encoder:
    fields = fields_of(cls)
    names = tuple(name for name, _, _ in fields)
    lead = () if tag is None else (tag,)
    keys = ("type", *names) if tag is not None else names
    read = _reader(names)
    convert: list[tuple[int, Encoder]] = []
    for index, (_, hint, _) in enumerate(fields, start=len(lead)):
        encoder = _converter(hint)
        if encoder is not None:
            convert.append((index, encoder))
    if cls is RevocationFetch:
        return _fetch_encoder(keys, lead, read, convert)

    def record(value: Any, crls: MutableMapping[str, bytes]) -> dict[str, Any]:
        values = [*lead, *read(value)]
        for index, encoder in convert:
            values[index] = encoder(values[index], crls)
        return dict(zip(keys, values, strict=True))

    return record


def _reader(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """All the named attributes of a value in one call, always as a tuple."""
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda value: (one(value),)
    read: Callable[[Any], tuple[Any, ...]] = attrgetter(*names)
    return read


def _fetch_encoder(
    keys: tuple[str, ...],
    lead: tuple[str, ...],
    read: Callable[[Any], tuple[Any, ...]],
    convert: list[tuple[int, Encoder]],
) -> Encoder:
    """A fetch's encoder: a CRL's bytes go to the CRL map and the fetch names them by
    ``response_sha256`` (``None`` for anything else), rather than going inline."""
    keys = (*keys, CRL_FIELD)
    der_at = keys.index("response_der")
    # A CRL's bytes go to ``crls`` only: encoding them here would be thrown away.
    crl_convert = [(index, encoder) for index, encoder in convert if index != der_at]

    def fetch(value: RevocationFetch, crls: MutableMapping[str, bytes]) -> dict[str, Any]:
        values = [*lead, *read(value), None]
        der = value.response_der
        is_crl = value.method is RevocationMethod.CRL and der is not None
        if is_crl:
            values[der_at] = None
        for index, encoder in crl_convert if is_crl else convert:
            values[index] = encoder(values[index], crls)
        if is_crl and der is not None:
            digest = crl_digest(der)
            crls.setdefault(digest, der)
            values[-1] = digest
        return dict(zip(keys, values, strict=True))

    return fetch
