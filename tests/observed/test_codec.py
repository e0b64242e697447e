"""The observation's JSON form round-trips exactly and refuses bad input by field."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certvigil.errors import ObservationFormatError
from certvigil.observed.codec import (
    OBSERVATION_FORMAT,
    observation_from_dict,
    observation_from_json,
    observation_to_dict,
    observation_to_json,
)
from certvigil.observed.endpoint import EndpointObservation, ObservedStep
from certvigil.observed.handshake import TlsObservation
from certvigil.observed.revocation import (
    CertificateRevocationObservation,
    RevocationFetch,
    RevocationMethod,
    RevocationObservation,
)
from certvigil.output.observation_schema import ObservationDocument
from certvigil.targets.target import Target
from tests.observed.strategies import OBSERVATIONS

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TARGET = Target(host="www.example.test", port=443)
CRL = b"0\x82 a certificate revocation list" * 100


def observation_with_crl(crl: bytes = CRL) -> EndpointObservation:
    """An observation whose leaf was checked over a CRL and OCSP."""
    fetches = (
        RevocationFetch(
            method=RevocationMethod.CRL,
            url="http://ca.test/a.crl",
            fetched_at_utc=NOW,
            response_der=crl,
        ),
        RevocationFetch(
            method=RevocationMethod.OCSP,
            url="http://ocsp.test/",
            fetched_at_utc=NOW,
            response_der=b"ocsp answer",
            http_method="POST",
        ),
    )
    return EndpointObservation(
        target=TARGET,
        observed_at_utc=NOW,
        handshake=TlsObservation(
            target=TARGET,
            peer_address="127.0.0.1",
            observed_at_utc=NOW,
            chain_der=(b"leaf", b"intermediate"),
            protocol="TLSv1.3",
            cipher="TLS_AES_128_GCM_SHA256",
            connect_s=0.001,
            handshake_s=0.002,
        ),
        revocation=RevocationObservation(
            target=TARGET,
            observed_at_utc=NOW,
            staple_requested=True,
            certificates=(
                CertificateRevocationObservation(
                    cert_index=0,
                    certificate_der=b"leaf",
                    issuer_der=b"intermediate",
                    fetches=fetches,
                ),
            ),
        ),
        steps=(ObservedStep.REVOCATION,),
    )


@given(OBSERVATIONS)
def test_any_observation_round_trips_exactly(observation: EndpointObservation) -> None:
    """Whatever an observation holds, reading its JSON gives an equal observation, and the
    document is valid under the published schema."""
    text = observation_to_json(observation)

    assert observation_from_json(text) == observation
    ObservationDocument.model_validate_json(text)


@given(OBSERVATIONS)
def test_round_trip_with_a_shared_crl_map(observation: EndpointObservation) -> None:
    """With a caller's CRL map the document keeps no CRL itself and reads back with it."""
    shared: dict[str, bytes] = {}
    document = observation_to_dict(observation, crls=shared)

    assert document["crls"] == {}
    assert observation_from_dict(json.loads(json.dumps(document)), crls=shared) == observation


def test_a_crl_is_written_once_and_referred_to_by_digest() -> None:
    """The CRL's bytes appear once, under their SHA-256, not in the fetch."""
    document = observation_to_dict(observation_with_crl())
    digest = hashlib.sha256(CRL).hexdigest()
    fetch = document["observation"]["revocation"]["certificates"][0]["fetches"][0]

    assert document["format"] == OBSERVATION_FORMAT
    assert document["crls"] == {digest: base64.b64encode(CRL).decode()}
    assert fetch["response_der"] is None
    assert fetch["response_sha256"] == digest
    assert observation_to_json(observation_with_crl()).count(base64.b64encode(CRL).decode()) == 1


def test_many_observations_share_one_crl_in_a_shared_map() -> None:
    """A thousand observations under one CRL leave one entry in the shared map."""
    shared: dict[str, bytes] = {}
    texts = [observation_to_json(observation_with_crl(), crls=shared) for _ in range(1000)]

    assert list(shared) == [hashlib.sha256(CRL).hexdigest()]
    assert all(base64.b64encode(CRL).decode() not in text for text in texts)


def _bad(document: dict[str, object], path: tuple[object, ...], value: object) -> str:
    node: object = document
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    node[path[-1]] = value  # type: ignore[index]
    with pytest.raises(ObservationFormatError) as caught:
        observation_from_dict(document)
    return str(caught.value)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("format",), "certvigil.observation/9", 'observation: format: "certvigil.observation/9"'),
        (
            ("observation", "handshake", "chain_der", 1),
            "not base64!",
            "observation: observation.handshake.chain_der[1]: not valid base64",
        ),
        (
            ("observation", "handshake", "type"),
            "tcp",
            'observation: observation.handshake.type: "tcp" is not one of tls, failure',
        ),
        (
            ("observation", "handshake", "connect_s"),
            "fast",
            "observation: observation.handshake.connect_s: not a number",
        ),
        (
            ("observation", "handshake", "connect_s"),
            float("nan"),
            "observation: observation.handshake.connect_s: not a finite number",
        ),
        (
            ("observation", "deadline_s"),
            float("inf"),
            "observation: observation.deadline_s: not a finite number",
        ),
        (
            ("observation", "observed_at_utc"),
            "2026-05-01T12:00:00",
            "observation: observation.observed_at_utc: the time has no UTC offset",
        ),
        (
            ("observation", "steps", 0),
            "coffee",
            'observation: observation.steps[0]: "coffee" is not one of issuers, revocation, '
            "tls_config",
        ),
        (
            ("observation", "target", "port"),
            0,
            "observation: observation.target: port must be in 1..65535, not 0",
        ),
        (("observation", "extra"), 1, "observation: observation.extra: unknown field"),
        (
            ("observation", "revocation", "certificates", 0, "fetches", 0, "response_sha256"),
            "ab" * 32,
            "observation: observation.revocation.certificates[0].fetches[0].response_sha256: "
            f'"{"ab" * 32}" names no CRL in the document or store',
        ),
    ],
)
def test_bad_input_names_the_field(path: tuple[object, ...], value: object, message: str) -> None:
    """Each defect gives one clear error that names the field and the rule."""
    document = json.loads(observation_to_json(observation_with_crl()))

    assert _bad(document, path, value).startswith(message)


def test_a_missing_field_is_named() -> None:
    """A required field left out is reported as missing, by path."""
    document = json.loads(observation_to_json(observation_with_crl()))
    del document["observation"]["handshake"]["chain_der"]

    with pytest.raises(ObservationFormatError, match=r"observation\.handshake\.chain_der: missing"):
        observation_from_dict(document)


def test_a_crl_whose_bytes_do_not_match_its_digest_is_refused() -> None:
    """The CRL map cannot smuggle other bytes under a digest."""
    document = json.loads(observation_to_json(observation_with_crl()))
    (digest,) = document["crls"]
    document["crls"][digest] = base64.b64encode(b"other").decode()

    with pytest.raises(ObservationFormatError, match="do not have this SHA-256"):
        observation_from_dict(document)


@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_text_is_read_or_refused_cleanly(text: str | bytes) -> None:
    """Arbitrary input never raises anything but ObservationFormatError."""
    with pytest.raises(ObservationFormatError):
        observation_from_json(text)


def test_an_oversized_document_is_refused_before_parsing() -> None:
    """The size bound holds before any JSON is read."""
    with pytest.raises(ObservationFormatError, match="larger than 10 bytes"):
        observation_from_json("[" * 11, max_bytes=10)


def test_deep_nesting_is_refused_cleanly() -> None:
    """A document nested too deep for the parser is a format error, not a crash."""
    with pytest.raises(ObservationFormatError):
        observation_from_json("[" * 100_000 + "]" * 100_000)


@given(OBSERVATIONS)
def test_the_stored_form_round_trips_exactly(observation: EndpointObservation) -> None:
    """The store's packed form (orjson-encoded, compressed) reads back equal, and its JSON
    is the document observation_to_json writes."""
    from certvigil.store.ingest import pack_observation, unpack_observation
    from certvigil.store.packing import unpack

    shared: dict[str, bytes] = {}
    packed = pack_observation(observation, shared)

    assert unpack_observation(packed, shared) == observation
    stored = json.loads(unpack(packed, 1 << 26))
    assert stored == json.loads(observation_to_json(observation, crls={}))


def test_the_stored_form_keeps_non_ascii_and_odd_text() -> None:
    """Non-ASCII text is stored as UTF-8 and a lone surrogate (which UTF-8 cannot hold)
    falls back to escapes; both read back equal."""
    from dataclasses import replace

    from certvigil.store.ingest import pack_observation, unpack_observation

    base = observation_with_crl()
    for text in ("bücher.example \u202e", "broken \udc80 text"):
        handshake = replace(base.handshake, cipher=text)
        observation = replace(base, handshake=handshake)
        shared: dict[str, bytes] = {}
        assert unpack_observation(pack_observation(observation, shared), shared) == observation
