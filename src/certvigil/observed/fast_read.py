"""The fast reader of observation documents: well-formed ones only, else it declines.

The server reads every observation an agent sends and the store every one it loads,
so reading is on the ingest path. The careful reader in ``certvigil.observed.codec``
asks ``typing`` about each value's type as it goes, to name the field of any defect;
this one works out each record type's reading once, on first use (its keys, the
required ones, one decoding function per field), and checks each value's type with an
identity test. It returns only what the careful reader would return for the same
document, equal to it; on anything it does not take (a defect, or merely something
unusual such as a dict subclass) it raises :class:`Declined` and the careful reader
reads the document again, to accept it or to name the defect.

Every rule of the careful reader holds here too: unknown and missing fields, ``bool``
is not ``int``, ``int`` is taken for ``float``, base64 strictly (a string that
``b64decode(validate=True)`` refuses is declined), ISO
times with an offset, enumeration values, tagged records by ``"type"``, a fetch's
``response_sha256``, the records' own validation, and the SHA-256 of inline CRLs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any

from pybase64 import b64decode

from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.forms import (
    CRL_FIELD,
    OBSERVATION_FORMAT,
    TAGS,
    fields_of,
    union_members,
)
from certvigil.observed.revocation import RevocationFetch

__all__ = ["Declined", "read_document"]


class Declined(Exception):
    """The fast reader does not take this document; the careful reader decides."""


Decoder = Callable[[Any, Mapping[str, bytes]], Any]
"""Decodes one JSON value; fetches find their CRLs in the map, by SHA-256 (hex)."""

_TOP_KEYS = frozenset({"format", "observation", "crls"})


def read_document(document: object, crls: Mapping[str, bytes] | None) -> EndpointObservation:
    """The observation in ``document`` (parsed JSON), as the careful reader gives it.

    Args:
        document: The parsed document.
        crls: CRL bytes by SHA-256 (hex) for documents written with a shared map.

    Raises:
        Declined: Anything the fast reader does not take, defect or not.
    """
    if document.__class__ is not dict:
        raise Declined
    doc = typing.cast(dict[str, Any], document)
    if doc.get("format") != OBSERVATION_FORMAT or not doc.keys() <= _TOP_KEYS:
        raise Declined
    own = doc.get("crls", {})
    if own.__class__ is not dict or "observation" not in doc:
        raise Declined
    table: Mapping[str, bytes] = {} if crls is None else crls
    if own:
        table = dict(table)
        for digest, text in own.items():
            der = _bytes(text, table)
            if hashlib.sha256(der).hexdigest() != digest:
                raise Declined
            table[digest] = der
    observation: EndpointObservation = _observation(doc["observation"], table)
    return observation


def _str(value: Any, _crls: Mapping[str, bytes]) -> Any:
    if value.__class__ is str:
        return value
    raise Declined


def _int(value: Any, _crls: Mapping[str, bytes]) -> Any:
    if value.__class__ is int:  # bool is a subclass: not taken
        return value
    raise Declined


def _bool(value: Any, _crls: Mapping[str, bytes]) -> Any:
    if value.__class__ is bool:
        return value
    raise Declined


def _float(value: Any, _crls: Mapping[str, bytes]) -> Any:
    kind = value.__class__
    if kind is float:
        return value
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise Declined from None
    raise Declined


def _bytes(value: Any, _crls: Mapping[str, bytes]) -> Any:
    # pybase64 (SIMD) decodes several times faster than binascii. With validate=True it
    # takes a subset of what base64.b64decode(validate=True) takes (it also refuses
    # padding after a whole group, "AAAA=", which binascii lets through), with the
    # same bytes: tests/observed/test_fast_codec.py holds it to that.
    if value.__class__ is str:
        try:
            return b64decode(value, validate=True)
        except ValueError:  # binascii.Error included
            pass
    raise Declined


def _time(value: Any, _crls: Mapping[str, bytes]) -> Any:
    if value.__class__ is str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise Declined from None
        if moment.tzinfo is not None:
            return moment
    raise Declined


_PLAIN: dict[Any, Decoder] = {
    str: _str,
    int: _int,
    bool: _bool,
    float: _float,
    bytes: _bytes,
    datetime: _time,
}


@cache
def _decoder(hint: Any) -> Decoder:
    """The decoder for values of type ``hint``, built once per type."""
    plain = _PLAIN.get(hint)
    if plain is not None:
        return plain
    members = union_members(hint)
    if members is not None:
        classes = [m for m in members if m is not type(None)]
        inner = _tagged_decoder(tuple(classes)) if len(classes) > 1 else _decoder(classes[0])
        if type(None) not in members:
            return inner

        def optional(value: Any, crls: Mapping[str, bytes]) -> Any:
            return None if value is None else inner(value, crls)

        return optional
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _enum_decoder(hint)
    if typing.get_origin(hint) is tuple:
        item = _decoder(typing.get_args(hint)[0])

        def items(value: Any, crls: Mapping[str, bytes]) -> Any:
            if value.__class__ is list:
                return tuple([item(v, crls) for v in value])
            raise Declined

        return items
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record_decoder(hint, tagged=False)
    raise TypeError(f"no JSON form for {hint!r}")  # a model field of a new kind


def _enum_decoder(enum: type[Enum]) -> Decoder:
    # Every enumeration in the models has string values; by value, as ``enum(value)``.
    members = {m.value: m for m in enum if m.value.__class__ is str}

    def member(value: Any, _crls: Mapping[str, bytes]) -> Any:
        if value.__class__ is str:
            found = members.get(value)
            if found is not None:
                return found
        raise Declined

    return member


def _tagged_decoder(classes: tuple[type[Any], ...]) -> Decoder:
    by_tag = {TAGS[cls]: _record_decoder(cls, tagged=True) for cls in classes}

    def tagged(value: Any, crls: Mapping[str, bytes]) -> Any:
        if value.__class__ is dict:
            tag = value.get("type")
            if tag.__class__ is str:
                record = by_tag.get(tag)
                if record is not None:
                    return record(value, crls)
        raise Declined

    return tagged


def _record_decoder(cls: type[Any], *, tagged: bool) -> Decoder:
    """A record's decoder; a tagged record's document also holds its ``"type"``."""
    fields = fields_of(cls)
    decoders = {name: _decoder(hint) for name, hint, _ in fields}
    # The keys beyond the fields are read as they are and taken out after.
    extra = ({"type"} if tagged else set()) | ({CRL_FIELD} if cls is RevocationFetch else set())
    for key in extra:
        decoders[key] = _as_is
    known = frozenset(decoders)
    required = frozenset(name for name, _, has_default in fields if not has_default)
    finish = _finish_fetch if cls is RevocationFetch else None

    def record(value: Any, crls: Mapping[str, bytes]) -> Any:
        if value.__class__ is not dict or not value.keys() <= known or not value.keys() >= required:
            raise Declined
        arguments = {key: decoders[key](item, crls) for key, item in value.items()}
        if tagged:
            del arguments["type"]
        if finish is not None:
            finish(arguments, crls)
        try:
            return cls(**arguments)
        except (ValueError, TypeError):
            raise Declined from None

    return record


def _as_is(value: Any, _crls: Mapping[str, bytes]) -> Any:
    return value


def _finish_fetch(arguments: dict[str, Any], crls: Mapping[str, bytes]) -> None:
    """A fetch naming its CRL by SHA-256 gets the CRL's bytes from the map."""
    digest = arguments.pop(CRL_FIELD, None)
    if digest is None:
        return
    if digest.__class__ is not str or digest not in crls:
        raise Declined
    if arguments.get("response_der") is not None:
        raise Declined
    arguments["response_der"] = crls[digest]


_observation = _record_decoder(EndpointObservation, tagged=False)
