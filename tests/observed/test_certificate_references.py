"""Certificates written by reference: the store keeps each served certificate once (in
``certificates``) and its stored observations name them by SHA-256.

A document written with ``certificate_digests`` names exactly those certificates as
``{"sha256": …}`` and reads back equal only with the same certificates; without them
the reader names the field it cannot resolve. Both readers agree on damaged references.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.errors import ObservationFormatError
from certvigil.observed import fast_read
from certvigil.observed.codec import (
    _read_carefully,
    observation_from_json,
    observation_to_dict,
    observation_to_json,
)
from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.handshake import TlsObservation
from certvigil.observed.issuers import IssuerFetch
from tests.observed.strategies import OBSERVATIONS
from tests.observed.test_fast_codec import FULL, HOSTILE, _agree, _damage, _places

WITH_ISSUERS = replace(
    FULL, issuer_fetches=(IssuerFetch(url="http://ca.test/i.crt", certificates_der=(b"ca",)),)
)


def _certificates(observation: EndpointObservation) -> list[bytes]:
    """Every certificate in ``observation``: served, checked, or fetched over AIA."""
    found: list[bytes] = []
    if isinstance(observation.handshake, TlsObservation):
        found += observation.handshake.chain_der
    for fetch in observation.issuer_fetches:
        found += fetch.certificates_der
    if observation.revocation is not None:
        for checked in observation.revocation.certificates:
            found.append(checked.certificate_der)
            if checked.issuer_der is not None:
                found.append(checked.issuer_der)
    return found


def _digests(ders: list[bytes]) -> dict[bytes, str]:
    return {der: hashlib.sha256(der).hexdigest() for der in ders}


def _by_digest(digests: dict[bytes, str]) -> dict[str, bytes]:
    return {digest: der for der, digest in digests.items()}


@given(observation=OBSERVATIONS, keep=st.integers(0, 2**16))
@example(observation=WITH_ISSUERS, keep=0b1111)
@example(observation=WITH_ISSUERS, keep=0b0101)
def test_certificates_by_reference_read_back_equal(
    observation: EndpointObservation, keep: int
) -> None:
    """Some or all of the certificates named by reference: the document holds none of
    their bytes, and reads back equal through both readers and both JSON parsers."""
    ders = sorted(set(_certificates(observation)))
    digests = _digests([der for i, der in enumerate(ders) if keep >> (i % 16) & 1])
    shared = _by_digest(digests)

    text = observation_to_json(observation, certificate_digests=digests)

    document = json.loads(text)
    references = [p for p in _places(document) if p[-1] == "sha256"]
    assert len(references) == sum(der in digests for der in _certificates(observation))
    assert observation_from_json(text, certificates=shared) == observation
    assert fast_read.read_document(orjson.loads(text), None, shared) == observation
    assert _read_carefully(document, None, shared) == observation


def test_a_document_without_certificate_digests_is_unchanged() -> None:
    """Not asked for references, the document carries every certificate's bytes, as
    every document certvigil prints or an agent sends."""
    assert observation_to_dict(WITH_ISSUERS, certificate_digests=None) == observation_to_dict(
        WITH_ISSUERS
    )
    assert "sha256" not in observation_to_json(WITH_ISSUERS).replace("response_sha256", "")


def test_a_reference_the_reader_cannot_resolve_names_its_field() -> None:
    """Read without the certificates it names, a stored document is refused, naming
    the first reference (a store that lost a certificate says which)."""
    text = observation_to_json(FULL, certificate_digests=_digests(_certificates(FULL)))
    leaf = hashlib.sha256(b"leaf").hexdigest()

    with pytest.raises(ObservationFormatError) as raised:
        observation_from_json(text)

    assert str(raised.value).endswith(
        f'observation.handshake.chain_der[0].sha256: "{leaf}" names no certificate '
        "the reader was given"
    )


REFERENCED = json.loads(
    observation_to_json(WITH_ISSUERS, certificate_digests=_digests(_certificates(WITH_ISSUERS)))
)
REFERENCES = [
    index for index, path in enumerate(_places(REFERENCED)) if path[-1] == "sha256" or "der" in path
]
EXTRA_VALUES: list[Any] = [
    {"sha256": hashlib.sha256(b"leaf").hexdigest(), "extra": 1},
    {"sha256": hashlib.sha256(b"elsewhere").hexdigest()},
    {"sha256": 1},
    {"SHA256": hashlib.sha256(b"leaf").hexdigest()},
]


@given(
    where=st.sampled_from(REFERENCES),
    how=st.sampled_from(["drop", "add", "replace"]),
    value=st.sampled_from(HOSTILE + EXTRA_VALUES),
)
@example(where=REFERENCES[0], how="replace", value=EXTRA_VALUES[0])  # an unknown key
@example(where=REFERENCES[0], how="replace", value=EXTRA_VALUES[1])  # names no certificate
@example(where=REFERENCES[0], how="replace", value=EXTRA_VALUES[3])  # no sha256 key
@example(where=REFERENCES[1], how="replace", value=1)  # a digest that is not a string
def test_both_readers_agree_on_damaged_references(where: int, how: str, value: Any) -> None:
    """A reference or the field around it dropped, added to or replaced: the fast
    reader gives the careful reader's observation or declines, and the public reader
    gives the careful outcome."""
    shared = _by_digest(_digests(_certificates(WITH_ISSUERS)))
    document = _damage(json.loads(json.dumps(REFERENCED)), where, how, value)

    _agree(document, None, shared)
