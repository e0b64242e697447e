"""The fast reader of observation documents: well-formed ones only, else it declines.

The server reads every observation an agent sends and the store every one it loads,
so reading is on the ingest path. The careful reader in ``certvigil.observed.codec``
asks ``typing`` about each value's type as it goes, to name the field of any defect.
This one, as attrs and cattrs do, writes one reading function per record type on first
use: it checks the record's keys against the known and the required ones with two set
comparisons, reads each field into a local, checks plain values' types inline with an
identity test (``value.__class__ is str``) and calls a converter only for bytes,
times, enumerations and nested records. The source of each function is kept in
:data:`SOURCES`; ``print_sources()`` prints them.

It returns only what the careful reader would return for the same document, equal to
it; on anything it does not take (a defect, or merely something unusual such as a dict
subclass) it raises :class:`Declined`, and the careful reader reads the document
again, to accept it or to name the defect. Every rule of the careful reader holds here
too: unknown and missing fields, ``bool`` is not ``int``, ``int`` is taken for
``float``, base64 strictly (a string that ``b64decode(validate=True)`` refuses is
declined), ISO times with an offset, enumeration values, tagged records by ``"type"``,
a fetch's ``response_sha256``, the records' own validation (``ValueError`` or
``TypeError`` from the constructor), and the SHA-256 of inline CRLs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from math import isfinite
from typing import Any

from pybase64 import b64decode

from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.forms import (
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

__all__ = ["SOURCES", "Declined", "print_sources", "read_document"]


class Declined(Exception):
    """The fast reader does not take this document; the careful reader decides."""


Decoder = Callable[[Any, Tables], Any]
"""Decodes one JSON value; references are resolved from the tables."""

_TOP_KEYS = frozenset({"format", "observation", "crls"})

SOURCES: dict[str, str] = {}
"""The generated source of each record type's reader, by the function's name."""


def read_document(
    document: object,
    crls: Mapping[str, bytes] | None,
    certificates: Mapping[str, bytes] | None = None,
) -> EndpointObservation:
    """The observation in ``document`` (parsed JSON), as the careful reader gives it.

    Args:
        document: The parsed document.
        crls: CRL bytes by SHA-256 (hex) for documents written with a shared map.
        certificates: Certificate bytes by SHA-256 (hex) for certificates written by
            reference.

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
            der = _bytes(text, _NO_TABLES)
            if hashlib.sha256(der).hexdigest() != digest:
                raise Declined
            table[digest] = der
    tables = Tables(table, _NO_CERTIFICATES if certificates is None else certificates)
    observation: EndpointObservation = _record_decoder(EndpointObservation, tagged=False)(
        doc["observation"], tables
    )
    return observation


def print_sources() -> None:
    """Print the generated readers (after building them all)."""
    _record_decoder(EndpointObservation, tagged=False)
    for source in SOURCES.values():
        print(source)


def _str(value: Any, _tables: Tables) -> Any:
    if value.__class__ is str:
        return value
    raise Declined


def _int(value: Any, _tables: Tables) -> Any:
    if value.__class__ is int:  # bool is a subclass: not taken
        return value
    raise Declined


def _bool(value: Any, _tables: Tables) -> Any:
    if value.__class__ is bool:
        return value
    raise Declined


def _float(value: Any, _tables: Tables) -> Any:
    kind = value.__class__
    if kind is float:
        if isfinite(value):
            return value
        raise Declined
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise Declined from None
    raise Declined


def _bytes(value: Any, _tables: Tables) -> Any:
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


def _certificate(value: Any, tables: Tables) -> Any:
    # Base64 like any bytes, or {"sha256": <hex>} naming one of the reader's certificates.
    if value.__class__ is dict:
        if len(value) == 1:
            digest = value.get(REFERENCE_KEY)
            if digest.__class__ is str:
                der = tables.certificates.get(digest)
                if der is not None:
                    return der
        raise Declined
    return _bytes(value, tables)


def _time(value: Any, _tables: Tables) -> Any:
    if value.__class__ is str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise Declined from None
        if moment.tzinfo is not None:
            return moment
    raise Declined


def _tuple_decoder(item_hint: Any) -> Decoder:
    """A JSON array read as a tuple of ``item_hint``."""
    plain = _PLAIN_TYPES.get(item_hint)
    if plain is not None:
        kind = plain

        def plain_items(value: Any, _tables: Tables) -> Any:
            if value.__class__ is not list:
                raise Declined
            for item in value:
                if item.__class__ is not kind:
                    raise Declined
            return tuple(value)

        return plain_items
    if item_hint is bytes:

        def byte_items(value: Any, _tables: Tables) -> Any:
            if value.__class__ is not list:
                raise Declined
            return tuple(map(_bytes_one, value))

        return byte_items
    read = _value_decoder(item_hint)

    def items(value: Any, tables: Tables) -> Any:
        if value.__class__ is not list:
            raise Declined
        return tuple([read(item, tables) for item in value])

    return items


def _bytes_one(value: Any) -> Any:
    return _bytes(value, _NO_TABLES)


_NO_CERTIFICATES: Mapping[str, bytes] = {}
_NO_TABLES = Tables({}, _NO_CERTIFICATES)
_PLAIN_TYPES: dict[Any, type[Any]] = {str: str, int: int, bool: bool}


def _value_decoder(hint: Any) -> Decoder:
    """A decoder function for one value of ``hint`` (for array items and unions)."""
    if hint in _PLAIN_TYPES:
        return {str: _str, int: _int, bool: _bool}[hint]
    if hint is float:
        return _float
    if hint is bytes:
        return _bytes
    if hint is CertificateDer:
        return _certificate
    if hint is datetime:
        return _time
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _enum_decoder(hint)
    if typing.get_origin(hint) is tuple:
        return _tuple_decoder(typing.get_args(hint)[0])
    members = union_members(hint)
    if members is not None:
        classes = tuple(m for m in members if m is not type(None))
        inner = _tagged_decoder(classes) if len(classes) > 1 else _value_decoder(classes[0])
        if type(None) not in members:
            return inner

        def optional(value: Any, tables: Tables) -> Any:
            return None if value is None else inner(value, tables)

        return optional
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record_decoder(hint, tagged=False)
    raise TypeError(f"no JSON form for {hint!r}")  # a model field of a new kind


def _enum_decoder(enum: type[Enum]) -> Decoder:
    # Every enumeration in the models has string values; by value, as ``enum(value)``.
    members = {m.value: m for m in enum if m.value.__class__ is str}

    def member(value: Any, _tables: Tables) -> Any:
        if value.__class__ is str:
            found = members.get(value)
            if found is not None:
                return found
        raise Declined

    return member


def _tagged_decoder(classes: tuple[type[Any], ...]) -> Decoder:
    by_tag = {TAGS[cls]: _record_decoder(cls, tagged=True) for cls in classes}

    def tagged(value: Any, tables: Tables) -> Any:
        if value.__class__ is dict:
            tag = value.get("type")
            if tag.__class__ is str:
                record = by_tag.get(tag)
                if record is not None:
                    return record(value, tables)
        raise Declined

    return tagged


class _Source:
    """The source of one generated reader and the names it refers to."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {
            "Declined": Declined,
            "read_float": _float,
            "isfinite": isfinite,
        }

    def bind(self, stem: str, value: Any) -> str:
        """A name for ``value`` in the generated function's globals."""
        name = stem if stem not in self.names else f"{stem}_{len(self.names)}"
        self.names[name] = value
        return name

    def lines(self, var: str, read: str, hint: Any) -> list[str]:
        """Statements setting ``var`` to the value ``read`` (an expression, or ``var``
        itself) decoded as ``hint``, or raising Declined."""
        load = [] if read == var else [f"{var} = {read}"]
        plain = _PLAIN_TYPES.get(hint)
        if plain is not None:
            return [*load, f"if {var}.__class__ is not {plain.__name__}:", "    raise Declined"]
        if hint is float:
            return [
                *load,
                f"if {var}.__class__ is not float or not isfinite({var}):",
                f"    {var} = read_float({var}, tables)",
            ]
        members = union_members(hint)
        if members is not None and type(None) in members:
            inner = [m for m in members if m is not type(None)]
            rest = inner[0] if len(inner) == 1 else typing.Union[tuple(inner)]  # noqa: UP007
            return [
                *load,
                f"if {var} is not None:",
                *(f"    {line}" for line in self.lines(var, var, rest)),
            ]
        if isinstance(hint, type) and issubclass(hint, Enum):
            table = self.bind(f"{hint.__name__}_by_value", {m.value: m for m in hint})
            return [
                *load,
                f"{var} = {table}.get({var}) if {var}.__class__ is str else None",
                f"if {var} is None:",
                "    raise Declined",
            ]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            reader = self.bind(f"read_{hint.__name__}", _record_decoder(hint, tagged=False))
        else:
            stem = _STEMS.get(hint, "read_tuple" if typing.get_origin(hint) is tuple else "")
            reader = self.bind(stem or "read_one_of", _value_decoder(hint))
        return [f"{var} = {reader}({read}, tables)"]


_STEMS = {bytes: "read_bytes", CertificateDer: "read_certificate", datetime: "read_time"}

_RECORD_DECODERS: dict[tuple[type[Any], bool], Decoder] = {}


def _record_decoder(cls: type[Any], *, tagged: bool) -> Decoder:
    """A record's reader, built once; a tagged record's document also holds its
    ``"type"`` (checked by the union's reader)."""
    known = _RECORD_DECODERS.get((cls, tagged))
    if known is None:
        known = _RECORD_DECODERS[cls, tagged] = _build_record_decoder(cls, tagged=tagged)
    return known


def _build_record_decoder(cls: type[Any], *, tagged: bool) -> Decoder:
    source = _Source()
    fields = dataclasses.fields(cls)
    forms = fields_of(cls)
    is_fetch = cls is RevocationFetch
    keys = {name for name, _, _ in forms} | ({"type"} if tagged else set())
    keys |= {CRL_FIELD} if is_fetch else set()
    known = source.bind("KNOWN", frozenset(keys))
    required = source.bind("REQUIRED", frozenset(n for n, _, has in forms if not has))
    record = source.bind("RECORD", cls)
    name = f"read_{cls.__name__}"
    body = [
        f"if value.__class__ is not dict or not value.keys() <= {known} "
        f"or not value.keys() >= {required}:",
        "    raise Declined",
    ]
    for field, (field_name, hint, has_default) in zip(fields, forms, strict=True):
        var = f"f_{field_name}"
        if not has_default:
            body += source.lines(var, f"value[{field_name!r}]", hint)
        elif field.default is None:
            body += source.lines(var, f"value.get({field_name!r})", hint)
        else:
            if field.default is not dataclasses.MISSING:
                default = source.bind(f"DEFAULT_{field_name}", field.default)
            else:
                default = source.bind(f"FACTORY_{field_name}", field.default_factory) + "()"
            body += [f"if {field_name!r} in value:"]
            body += [f"    {line}" for line in source.lines(var, f"value[{field_name!r}]", hint)]
            body += ["else:", f"    {var} = {default}"]
    if is_fetch:
        # The CRL named by SHA-256 comes from the map, and only for a fetch without
        # bytes of its own.
        body += [
            f"digest = value.get({CRL_FIELD!r})",
            "if digest is not None:",
            "    if digest.__class__ is not str or digest not in tables.crls or "
            "f_response_der is not None:",
            "        raise Declined",
            "    f_response_der = tables.crls[digest]",
        ]
    arguments = ", ".join(f"{n}=f_{n}" for n, _, _ in forms)
    body += [
        "try:",
        f"    return {record}({arguments})",
        "except (ValueError, TypeError):",
        "    raise Declined from None",
    ]
    text = f"def {name}(value, tables):\n" + "".join(f"    {line}\n" for line in body)
    SOURCES[name + ("_tagged" if tagged else "")] = text
    # Our own source, made of our own field names and the names bound above.
    exec(compile(text, f"<certvigil.observed.fast_read {name}>", "exec"), source.names)
    decoder: Decoder = source.names[name]
    return decoder
