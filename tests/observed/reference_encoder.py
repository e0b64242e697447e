"""The observation encoder as it was before the per-type encoders: the reference.

``certvigil.observed.encode`` must write exactly what this wrote (same keys, order,
values and errors); kept here, unchanged but for names, for the tests and the codec
benchmark to hold it to that. It writes every certificate inline (a
``CertificateDer`` field as the bytes it is): the form of every document written
without ``certificate_digests``.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import typing
from collections.abc import Callable, MutableMapping
from datetime import datetime
from enum import Enum
from typing import Any

from certvigil.observed.encode import crl_digest  # unchanged: remembers the last CRLs
from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.forms import (
    CRL_FIELD,
    OBSERVATION_FORMAT,
    TAGS,
    CertificateDer,
    fields_of,
    union_members,
)
from certvigil.observed.revocation import RevocationFetch, RevocationMethod


def reference_observation_to_dict(
    observation: EndpointObservation, *, crls: MutableMapping[str, bytes] | None = None
) -> dict[str, Any]:
    """``observation_to_dict`` as it was."""
    own: dict[str, bytes] = {}
    body = _encode(observation, EndpointObservation, own if crls is None else crls)
    return {
        "format": OBSERVATION_FORMAT,
        "observation": body,
        "crls": {digest: _b64(der) for digest, der in sorted(own.items())},
    }


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


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
    members = union_members(hint)
    if members is not None:
        classes = [m for m in members if m is not type(None)]
        if len(classes) == 1:
            only = _encoder(classes[0])
            return lambda value, crls: None if value is None else only(value, crls)

        def tagged(value: Any, crls: MutableMapping[str, bytes]) -> Any:
            if value is None:
                return None
            cls = type(value)
            return {"type": TAGS[cls], **_encoder(cls)(value, crls)}

        return tagged
    if hint is bytes or hint is CertificateDer:
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
        fields = [(name, _encoder(h)) for name, h, _ in fields_of(hint)]
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
    for name, h, _ in fields_of(RevocationFetch):
        # A CRL's bytes go to ``crls`` only: encoding them here would be thrown away.
        out[name] = (
            None if is_crl and name == "response_der" else _encode(getattr(value, name), h, crls)
        )
    out[CRL_FIELD] = None
    if is_crl and value.response_der is not None:
        digest = crl_digest(value.response_der)
        crls.setdefault(digest, value.response_der)
        out[CRL_FIELD] = digest
    return out
