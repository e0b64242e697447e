"""The fast encoder and reader agree with the reference encoder and the careful reader.

The encoder must write exactly what the generic encoder wrote (``reference_encoder``).
The fast reader must return only what the careful reader returns for the same document;
on anything else it declines, and the public functions then give the careful reader's
result or message. Damaged documents come from real ones: a field dropped, a field
added, a value replaced by something hostile (wrong type, bool for int, big integers,
NaN, bad base64, naive times, wrong tags), in the dict and as JSON text.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
import pybase64
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.errors import ObservationFormatError
from certvigil.observed import fast_read
from certvigil.observed.codec import (
    _read_carefully,
    observation_from_dict,
    observation_from_json,
    observation_to_dict,
    observation_to_json,
)
from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.handshake import FailureKind, ProbeFailure
from certvigil.observed.revocation import FetchFailure, FetchFailureKind
from certvigil.observed.tls_config import HttpObservation, ProtocolSupport, TlsConfigObservation
from certvigil.targets.target import StartTLS, Target
from certvigil.tls.records import TlsProtocol
from tests.observed.reference_encoder import reference_observation_to_dict
from tests.observed.strategies import OBSERVATIONS
from tests.observed.test_codec import NOW, TARGET, observation_with_crl


def _full_observation() -> EndpointObservation:
    """Every kind of field at once: a CRL and OCSP, a failed fetch, protocol probes."""
    base = observation_with_crl()
    assert base.revocation is not None
    certificate = base.revocation.certificates[0]
    failed = replace(
        certificate.fetches[1],
        response_der=None,
        failure=FetchFailure(kind=FetchFailureKind.HTTP_STATUS, detail="HTTP 503", http_status=503),
    )
    revocation = replace(
        base.revocation,
        certificates=(replace(certificate, fetches=(*certificate.fetches, failed)),),
        staple_der=b"staple",
    )
    tls_config = TlsConfigObservation(
        target=TARGET,
        peer_address="127.0.0.1",
        observed_at_utc=NOW,
        protocols=(
            ProtocolSupport(
                protocol=TlsProtocol.TLS_1_2, is_accepted=True, cipher_suites=(0xC02F,)
            ),
            ProtocolSupport(protocol=TlsProtocol.TLS_1_0, is_accepted=False, rejection="alert"),
        ),
        tls13_groups=(29, 23),
        dh_prime_bits=2048,
        fallback_scsv=True,
        http=HttpObservation(status_code=200, hsts_header="max-age=1"),
        handshake_count=9,
        elapsed_s=1.5,
        probe_errors=("odd",),
    )
    return replace(base, revocation=revocation, tls_config=tls_config, deadline_s=30.0)


FULL = _full_observation()
FAILED = EndpointObservation(
    target=Target(host="mail.example.test", port=25, starttls=StartTLS.SMTP),
    observed_at_utc=NOW,
    handshake=ProbeFailure(
        target=Target(host="mail.example.test", port=25, starttls=StartTLS.SMTP),
        kind=FailureKind.TIMEOUT,
        detail="no answer",
        observed_at_utc=NOW,
        tls_alert=None,
    ),
)
DIGEST = next(iter(observation_to_dict(FULL)["crls"]))

HOSTILE: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    443,
    2**63,
    2**64,
    2**70,
    -(2**70),
    10**400,
    0.5,
    1.0,
    float("nan"),
    float("inf"),
    "",
    "x",
    "AAAA",
    "AAAA=",
    "AB==",
    "YQ",
    "not base64!",
    "é",
    "broken \udc80",
    "2026-05-01T12:00:00",
    "2026-05-01T12:00:00+00:00",
    "2026-05-01T12:00:00Z",
    "2026-05-01",
    "tls",
    "failure",
    "tls_config",
    "crl",
    "ocsp",
    "TLSv1.2",
    "smtp",
    "timeout",
    "ab" * 32,
    DIGEST,
    [],
    [1],
    ["AAAA"],
    {},
    {"type": "tls"},
    {"type": "failure"},
    {"host": "a", "port": 1},
]


def _outcome(read: Any, *args: Any) -> tuple[str, str]:
    """What a reader gives: the observation (by repr, so 1 and 1.0 differ and NaN
    equals NaN) or the error's message."""
    try:
        return ("read", repr(read(*args)))
    except ObservationFormatError as exc:
        return ("refused", str(exc))


def _fast_outcome(document: Any, crls: Any, certificates: Any = None) -> tuple[str, str] | None:
    try:
        return ("read", repr(fast_read.read_document(document, crls, certificates)))
    except fast_read.Declined:
        return None


def _places(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index in a parsed document, as paths."""
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _places(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _places(value, (*path, index))
    return found


def _damage(document: dict[str, Any], where: int, how: str, value: Any) -> dict[str, Any]:
    """``document`` (a fresh copy) with one place dropped, added to or replaced."""
    places = _places(document)
    path = places[where % len(places)]
    value = copy.deepcopy(value)  # HOSTILE's lists and dicts stay as they are
    node: Any = document
    for key in path[:-1]:
        node = node[key]
    last = path[-1]
    if how == "drop":
        del node[last]
    elif how == "replace":
        node[last] = value
    elif isinstance(node, dict):
        node[value if isinstance(value, str) else "extra"] = value
    else:
        node.append(value)
    return document


def _agree(
    document: Any,
    crls: dict[str, bytes] | None = None,
    certificates: dict[str, bytes] | None = None,
) -> tuple[str, str]:
    """The fast reader agrees with the careful one, and the public reader gives the
    careful reader's outcome; returns that outcome."""
    careful = _outcome(_read_carefully, document, crls, certificates)
    fast = _fast_outcome(document, crls, certificates)
    if fast is not None:
        assert fast == careful
    read = _outcome(lambda: observation_from_dict(document, crls=crls, certificates=certificates))
    assert read == careful
    return careful


def _where(observation: EndpointObservation, *path: Any) -> int:
    """The index of ``path`` among the places of ``observation``'s document."""
    return _places(json.loads(observation_to_json(observation))).index(path)


PORT = _where(FULL, "observation", "target", "port")
HOST = _where(FULL, "observation", "target", "host")
CONNECT = _where(FULL, "observation", "handshake", "connect_s")
CHAIN = _where(FULL, "observation", "handshake", "chain_der", 0)
TIME = _where(FULL, "observation", "observed_at_utc")
TAG = _where(FULL, "observation", "handshake", "type")
KIND = _where(FAILED, "observation", "handshake", "kind")
STEP = _where(FULL, "observation", "steps", 0)
CRL_BYTES = _where(
    FULL, "observation", "revocation", "certificates", 0, "fetches", 0, "response_der"
)
SUITE = _where(FULL, "observation", "tls_config", "protocols", 0, "cipher_suites", 0)
BASES = st.sampled_from([FULL, FAILED, observation_with_crl()]) | OBSERVATIONS
MUTATIONS = {
    "where": st.integers(0, 10_000),
    "how": st.sampled_from(["drop", "add", "replace"]),
    "value": st.sampled_from(HOSTILE),
}


@given(observation=BASES, **MUTATIONS)
@example(observation=FULL, where=CHAIN, how="replace", value="AAAA=")  # padding after a group
@example(observation=FULL, where=PORT, how="replace", value=True)  # bool for the port
@example(observation=FULL, where=PORT, how="replace", value=2**70)  # port beyond 64 bits
@example(observation=FULL, where=CONNECT, how="replace", value=10**400)  # connect_s overflows
@example(observation=FULL, where=CONNECT, how="replace", value=float("nan"))
@example(observation=FULL, where=TIME, how="replace", value="2026-05-01T12:00:00")
@example(observation=FULL, where=TAG, how="replace", value="failure")  # wrong tag
@example(observation=FULL, where=TAG, how="drop", value=None)  # no tag
@example(observation=FULL, where=0, how="add", value="tags")  # unknown top-level field
@example(observation=FULL, where=STEP, how="replace", value="ocsp")  # not a step
@example(observation=FULL, where=CRL_BYTES, how="replace", value="AAAA")  # and a digest
@example(observation=FULL, where=SUITE, how="replace", value=True)  # bool for int
@example(observation=FAILED, where=KIND, how="replace", value=1)  # enum value of a wrong type
def test_fast_reader_agrees_on_damaged_documents(
    observation: EndpointObservation, where: int, how: str, value: Any
) -> None:
    """One field dropped, added or replaced: the fast reader gives the careful reader's
    observation or declines, and the public reader gives the careful outcome."""
    document = _damage(json.loads(observation_to_json(observation)), where, how, value)

    _agree(document)


@given(
    where=st.integers(0, 10_000),
    how=st.sampled_from(["drop", "replace"]),
    value=st.sampled_from(HOSTILE),
)
@example(where=0, how="replace", value="ab" * 32)  # names no CRL in the map
def test_fast_reader_agrees_with_a_shared_crl_map(where: int, how: str, value: Any) -> None:
    """Documents whose CRLs are in the caller's map: the same agreement, response_sha256
    damaged too (the map's digest is the first place of the first fetch)."""
    shared: dict[str, bytes] = {}
    document = json.loads(json.dumps(observation_to_dict(FULL, crls=shared)))
    fetch = document["observation"]["revocation"]["certificates"][0]["fetches"][0]
    node = {"response_sha256": fetch.pop("response_sha256"), **fetch}
    document["observation"]["revocation"]["certificates"][0]["fetches"][0] = node
    offset = _places(document).index(
        ("observation", "revocation", "certificates", 0, "fetches", 0, "response_sha256")
    )
    _agree(_damage(document, offset + where % 3, how, value), shared)


@given(observation=BASES, **MUTATIONS)
@example(observation=FULL, where=PORT, how="replace", value=2**70)  # orjson reads a float
@example(observation=FULL, where=SUITE, how="replace", value=2**70)  # taken as an int
@example(observation=FULL, where=CONNECT, how="replace", value=10**400)
@example(observation=FULL, where=CONNECT, how="replace", value=float("inf"))  # json writes Infinity
@example(observation=FULL, where=HOST, how="replace", value="broken \udc80")
def test_json_text_reads_as_json_loads_and_the_careful_reader(
    observation: EndpointObservation, where: int, how: str, value: Any
) -> None:
    """Damaged JSON text (with NaN, Infinity, integers beyond 64 bits, escaped lone
    surrogates, as json writes them): read through orjson and the fast reader, it gives
    what json.loads and the careful reader give."""
    document = _damage(json.loads(observation_to_json(observation)), where, how, value)
    text = json.dumps(document)

    careful = _outcome(_read_carefully, json.loads(text), None)
    assert _outcome(observation_from_json, text) == careful
    assert _outcome(observation_from_json, text.encode()) == careful


@given(OBSERVATIONS)
@example(FULL)
@example(FAILED)
def test_fast_reader_takes_what_the_encoder_writes(observation: EndpointObservation) -> None:
    """Every document the encoder writes is read by the fast reader itself (through
    json or orjson), equal to the observation: the careful reader is for the rest."""
    text = observation_to_json(observation)

    assert fast_read.read_document(json.loads(text), None) == observation
    assert fast_read.read_document(orjson.loads(text), None) == observation
    shared: dict[str, bytes] = {}
    document = orjson.loads(orjson.dumps(observation_to_dict(observation, crls=shared)))
    assert fast_read.read_document(document, shared) == observation


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_a_number_json_cannot_hold_is_a_format_error(number: str) -> None:
    """NaN or Infinity in a float field (json.loads takes them): refused, naming the
    field, as the store's encoder would refuse to write it back."""
    text = observation_to_json(FULL).replace('"connect_s":0.001', f'"connect_s":{number}')

    with pytest.raises(ObservationFormatError, match=r"handshake\.connect_s: not a finite number"):
        observation_from_json(text)


def test_an_integer_too_large_for_a_float_is_a_format_error() -> None:
    """connect_s given a 400-digit integer: a message naming the field, not an
    OverflowError."""
    text = observation_to_json(FULL).replace('"connect_s":0.001', f'"connect_s":{10**400}')

    with pytest.raises(ObservationFormatError, match=r"handshake\.connect_s: too large a number"):
        observation_from_json(text)


@given(observation=OBSERVATIONS, shared=st.booleans())
@example(observation=FULL, shared=False)
@example(observation=FULL, shared=True)
@example(observation=FAILED, shared=False)
def test_encoder_writes_what_the_reference_wrote(
    observation: EndpointObservation, shared: bool
) -> None:
    """Same keys in the same order, same values and types, same CRL map."""
    ours: dict[str, bytes] | None = {} if shared else None
    theirs: dict[str, bytes] | None = {} if shared else None

    written = observation_to_dict(observation, crls=ours)
    expected = reference_observation_to_dict(observation, crls=theirs)

    assert repr(written) == repr(expected)  # repr: key order and 1 vs 1.0 count
    assert ours == theirs


def _naive(observation: EndpointObservation) -> EndpointObservation:
    return replace(observation, observed_at_utc=datetime(2026, 5, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    "damage",
    [
        _naive,
        lambda o: replace(o, deadline_s=float("inf")),
        lambda o: replace(o, handshake=replace(o.handshake, connect_s=float("nan"))),
        lambda o: replace(o, tls_config=replace(o.tls_config, elapsed_s=float("-inf"))),
        lambda o: replace(o, handshake=replace(o.handshake, observed_at_utc=datetime(2026, 1, 1))),  # noqa: DTZ001
    ],
)
def test_encoder_refuses_what_the_reference_refused(damage: Any) -> None:
    """A naive time or a non-finite number: the same ValueError and message."""
    observation = damage(FULL)
    with pytest.raises(ValueError) as expected:
        reference_observation_to_dict(observation)
    with pytest.raises(ValueError) as caught:
        observation_to_dict(observation)
    assert str(caught.value) == str(expected.value)


def test_encoder_keeps_integers_in_float_fields_as_floats() -> None:
    """An int given for a float field is written as a float, as before."""
    observation = replace(FULL, deadline_s=30)

    written = observation_to_dict(observation)["observation"]["deadline_s"]

    assert written == 30.0
    assert isinstance(written, float)


@given(st.text(alphabet="AB+/=a9 \n\x00é", max_size=12))
@example("AAAA=")
@example("AB==")
@example("A===")
@example("=")
def test_fast_base64_takes_a_subset_with_the_same_bytes(text: str) -> None:
    """What pybase64 (validate=True) decodes, base64.b64decode(validate=True) decodes
    to the same bytes."""
    try:
        fast = pybase64.b64decode(text, validate=True)
    except ValueError:
        return
    assert base64.b64decode(text, validate=True) == fast


@given(st.binary(max_size=200))
def test_fast_base64_writes_what_base64_writes(raw: bytes) -> None:
    """pybase64's text is base64.b64encode's."""
    assert pybase64.b64encode_as_string(raw) == base64.b64encode(raw).decode("ascii")


def test_inline_crls_are_checked_by_the_fast_reader_too() -> None:
    """A CRL whose bytes do not match their digest is declined and refused by name."""
    document = json.loads(observation_to_json(FULL))
    document["crls"][DIGEST] = base64.b64encode(b"other").decode()

    assert _fast_outcome(document, None) is None
    with pytest.raises(ObservationFormatError, match="do not have this SHA-256"):
        observation_from_dict(document)
    read = observation_from_dict(json.loads(observation_to_json(FULL)))
    assert read == FULL


def _has_wide_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -(2**63) <= value < 2**64
    if isinstance(value, list):
        return any(_has_wide_int(v) for v in value)
    if isinstance(value, dict):
        return any(_has_wide_int(v) for v in value.values())
    return False


@given(st.text(alphabet='[]{}",:0123456789.eE+-truefalsnNIiy \\/\t\n\ufeff\udc80é', max_size=24))
@example('"\\ud800"')
@example("NaN")
@example("1e400")
@example("[18446744073709551616]")
@example('{"a":1,"a":2}')
@example("\ufeff[]")
def test_orjson_takes_only_what_json_takes_with_the_same_values(text: str) -> None:
    """Any text orjson parses, json parses to the same values (but for integers beyond
    64 bits, which orjson makes floats and the fast reader then declines)."""
    try:
        fast = orjson.loads(text)
    except orjson.JSONDecodeError:
        return
    slow = json.loads(text)
    if not _has_wide_int(slow):
        assert repr(fast) == repr(slow)
