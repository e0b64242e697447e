"""An observation's JSON-ready values, by one generated encoding function per record type.

The store encodes every observation it records and an agent every one it sends, so
this is on the ingest path of both. As attrs and cattrs do, each record type gets a
function written for it on first use: one dict display, the record's fields in
declaration order (``"type"`` first in a tagged record), each value read as an
attribute and converted in place (bytes to base64, times to ISO 8601, enumerations to
their values, nested records by their own functions). Strings, integers and booleans
are copied with no call at all. The source of each function is kept in
:data:`SOURCES` to be read; ``python -c "from certvigil.observed.encode import
print_sources; print_sources()"`` prints them.

The output is exactly what the generic encoder wrote (``tests/observed/
reference_encoder.py``; ``tests/observed/test_fast_codec.py`` holds the two together):
the same keys in the same order, the same values, the same ``ValueError`` for a naive
time or a number that is not finite, raised at the same field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import typing
from collections.abc import Callable, Mapping, MutableMapping
from datetime import datetime
from enum import Enum
from typing import Any

from pybase64 import b64encode_as_string

from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.forms import (
    CRL_FIELD,
    REFERENCE_KEY,
    TAGS,
    CertificateDer,
    fields_of,
    union_members,
)
from certvigil.observed.revocation import RevocationFetch, RevocationMethod

__all__ = ["SOURCES", "b64", "crl_digest", "encode_observation", "print_sources"]

Certificates = Mapping[bytes, str] | None
"""Certificates the caller keeps itself, their SHA-256 (hex) by their bytes: each is
written as a reference, ``{"sha256": "<hex>"}``, rather than as base64."""

Encoder = Callable[[Any, MutableMapping[str, bytes], Certificates], Any]
"""Encodes a record; CRLs met on the way go into the map, by SHA-256 (hex), and the
certificates found in :data:`Certificates` are written by reference."""

SOURCES: dict[str, str] = {}
"""The generated source of each record type's encoder, by the function's name."""


def encode_observation(
    observation: EndpointObservation,
    crls: MutableMapping[str, bytes],
    certificates: Certificates = None,
) -> dict[str, Any]:
    """The ``observation`` member of the document for ``observation``.

    Args:
        observation: The observation.
        crls: Receives the CRLs met, by SHA-256 (hex); the document names them.
        certificates: Certificates written by reference (see :data:`Certificates`);
            ``None`` writes every certificate's bytes.

    Raises:
        ValueError: A time is naive or a number is not finite.
    """
    encoded: dict[str, Any] = _record_encoder(EndpointObservation, None)(
        observation, crls, certificates
    )
    return encoded


def print_sources() -> None:
    """Print the generated encoders (after building them all)."""
    _record_encoder(EndpointObservation, None)
    for source in SOURCES.values():
        print(source)


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


def _crl_reference(der: bytes, crls: MutableMapping[str, bytes]) -> str:
    """A CRL's digest, its bytes put in the map (once)."""
    digest = crl_digest(der)
    crls.setdefault(digest, der)
    return digest


def _certificate(der: bytes, certificates: Certificates) -> Any:
    """A certificate by reference when the caller keeps it, else its base64."""
    if certificates is not None:
        digest = certificates.get(der)
        if digest is not None:
            return {REFERENCE_KEY: digest}
    return b64(der)


_last_time: tuple[datetime | None, str] = (None, "")


def _encode_time(value: datetime) -> str:
    # The observation and its handshake share one time object: isoformat() is one of
    # the dearer calls here, so the last one is remembered (by identity: two equal
    # times in different zones write differently). One tuple, swapped whole, so a
    # thread never sees one time with another's text.
    global _last_time
    last = _last_time
    if last[0] is value:
        return last[1]
    if value.tzinfo is None:
        raise ValueError(f"naive time {value.isoformat()} in an observation")
    text = value.isoformat()
    _last_time = (value, text)
    return text


def _encode_float(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {value} in an observation")
    return float(value)


class _Source:
    """The source of one generated encoder and the names it refers to."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {
            "b64": b64,
            "encode_time": _encode_time,
            "encode_float": _encode_float,
            "crl_reference": _crl_reference,
            "certificate": _certificate,
            "CRL": RevocationMethod.CRL,
        }

    def bind(self, stem: str, value: Any) -> str:
        """A name for ``value`` in the generated function's globals."""
        name = stem if stem not in self.names else f"{stem}_{len(self.names)}"
        self.names[name] = value
        return name

    def expression(self, read: str, hint: Any) -> str:
        """The expression encoding the value ``read`` (an expression) of type ``hint``."""
        if hint in (str, int, bool):
            return read
        members = union_members(hint)
        if members is not None:
            classes = [m for m in members if m is not type(None)]
            if len(classes) > 1:
                return f"{self.bind('tagged', _tagged_encoder())}({read}, crls, certs)"
            inner = self.expression("v", classes[0])
            if inner == "v":
                return read
            return f"None if (v := {read}) is None else {inner}"
        if hint is bytes:
            return f"b64({read})"
        if hint is CertificateDer:
            return f"certificate({read}, certs)"
        if hint is datetime:
            return f"encode_time({read})"
        if hint is float:
            return f"encode_float({read})"
        if isinstance(hint, type) and issubclass(hint, Enum):
            return f"{read}._value_"
        if typing.get_origin(hint) is tuple:
            item = self.expression("x", typing.get_args(hint)[0])
            if item == "x":
                return f"list({read})"
            if item == "b64(x)":
                return f"list(map(b64, {read}))"
            if item == "certificate(x, certs)":
                # Without references (every document but the store's), as plain bytes.
                return f"list(map(b64, {read})) if certs is None else [{item} for x in {read}]"
            return f"[{item} for x in {read}]"
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            encoder = self.bind(f"encode_{hint.__name__}", _record_encoder(hint, None))
            return f"{encoder}({read}, crls, certs)"
        return f"{self.bind('unknown', _unknown(hint))}({read})"


def _unknown(hint: Any) -> Callable[[Any], Any]:
    def unknown(_value: Any) -> Any:
        raise TypeError(f"no JSON form for {hint!r}")  # a model field of a new kind

    return unknown


def _tagged_encoder() -> Encoder:
    """A field holding one of several records (or ``None``): the record's own
    encoder, tag first, chosen by the value's class."""
    by_class = {cls: _record_encoder(cls, tag) for cls, tag in TAGS.items()}

    def tagged(value: Any, crls: MutableMapping[str, bytes], certs: Certificates) -> Any:
        if value is None:
            return None
        return by_class[type(value)](value, crls, certs)

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
    source = _Source()
    name = f"encode_{cls.__name__}" + ("" if tag is None else f"_{tag}")
    lines = [f"def {name}(value, crls, certs):"]
    entries = [] if tag is None else [f"{'type'!r}: {tag!r}"]
    is_fetch = cls is RevocationFetch
    if is_fetch:
        # A CRL's bytes go to ``crls`` only (encoding them here would be thrown away)
        # and the fetch names them by SHA-256, after its own fields, as it always did.
        lines.append("    is_crl = value.method is CRL and value.response_der is not None")
    for field, hint, _ in fields_of(cls):
        expression = source.expression(f"value.{field}", hint)
        if is_fetch and field == "response_der":
            expression = f"None if is_crl else ({expression})"
        entries.append(f"{field!r}: {expression}")
    if is_fetch:
        reference = "crl_reference(value.response_der, crls) if is_crl else None"
        entries.append(f"{CRL_FIELD!r}: {reference}")
    lines.append("    return {")
    lines += [f"        {entry}," for entry in entries]
    lines.append("    }")
    text = "\n".join(lines) + "\n"
    SOURCES[name] = text
    # Our own source, made of our own field names and the names bound above.
    exec(compile(text, f"<certvigil.observed.encode {name}>", "exec"), source.names)
    encoder: Encoder = source.names[name]
    return encoder
