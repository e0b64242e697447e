"""RFC 6962 answers: signed tree heads and get-entries, on real Pilot, Icarus and Argon data."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.ct.der import certificate_tbs, parse_tbs, tbs_without_ct_extensions
from certvigil.ct.entry import EntryType
from certvigil.ct.errors import MalformedEntryError, ResponseError, SignatureError
from certvigil.ct.rfc6962 import (
    SignedTreeHead,
    complete_entry,
    parse_entry,
    parse_get_entries,
    parse_sth,
    verify_sth,
)
from certvigil.ct.signature import DigitallySigned, tree_head_message
from tests.ct.conftest import data
from tests.ct.keys import log_key

ARGON = (
    "rfc6962/argon2027h1/"
    "get-entries_start_380000000_end_380000004_TRUNCATED-from-end_380000031.json"
)
PILOT = "rfc6962/pilot/get-entries_start_0_end_3.json"


@pytest.mark.parametrize(
    ("path", "log"),
    [
        ("rfc6962/icarus/get-sth_tree_size_129596132.json", "'Icarus'"),
        ("rfc6962/icarus/get-sth_tree_size_129721434.json", "'Icarus'"),
        ("rfc6962/argon2027h1/get-sth_tree_size_384065451.json", "Argon2027h1"),
        ("rfc6962/argon2027h1/get-sth_tree_size_384071894.json", "Argon2027h1"),
    ],
)
def test_real_tree_heads_verify_and_altered_ones_do_not(path: str, log: str) -> None:
    """Each real STH verifies with the listed key; a changed size or another log's key fails."""
    sth = parse_sth(data(path))
    verify_sth(sth, log_key(log))

    altered = SignedTreeHead(sth.tree_size + 1, sth.timestamp, sth.root_hash, sth.signature)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_sth(altered, log_key(log))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_sth(sth, log_key("Argon2025h2"))


def test_rsa_signed_tree_head_verifies() -> None:
    """A tree head signed with an RSA log key (signature algorithm 1) verifies."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    root = hashlib.sha256(b"root").digest()
    raw = private.sign(tree_head_message(5, 10, root), padding.PKCS1v15(), hashes.SHA256())
    body = json.dumps(
        {
            "tree_size": 10,
            "timestamp": 5,
            "sha256_root_hash": base64.b64encode(root).decode(),
            "tree_head_signature": base64.b64encode(
                b"\x04\x01" + len(raw).to_bytes(2, "big") + raw
            ).decode(),
        }
    ).encode()

    sth = parse_sth(body)
    verify_sth(sth, der)
    with pytest.raises(SignatureError, match="RSA signature but the log key is ECDSA"):
        verify_sth(sth, log_key("Argon2027h1"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>", "get-sth: not JSON"),
        (b"[]", "get-sth: not a JSON object"),
        (b'{"tree_size": -1}', "tree_size is missing or not a whole number"),
        (b'{"tree_size": 1, "timestamp": 2, "sha256_root_hash": "AAAA"}', "is 3 bytes, not 32"),
    ],
)
def test_malformed_tree_heads_raise_response_errors(body: bytes, message: str) -> None:
    """An STH answer that is not the API's shape raises ResponseError saying what is wrong."""
    with pytest.raises(ResponseError, match=message):
        parse_sth(body)


def test_unknown_signature_algorithm_is_named() -> None:
    """A DigitallySigned with hash algorithm SHA-1 is refused by name."""
    sth = json.loads(data("rfc6962/icarus/get-sth_tree_size_129596132.json"))
    raw = base64.b64decode(sth["tree_head_signature"])
    sth["tree_head_signature"] = base64.b64encode(b"\x02" + raw[1:]).decode()

    with pytest.raises(ResponseError, match="hash algorithm 2 is not SHA-256"):
        parse_sth(json.dumps(sth).encode())


def test_pilot_entries_are_four_certificates_with_chains() -> None:
    """Pilot's first four entries are x509 entries whose certificate and chain load."""
    batch = parse_get_entries(data(PILOT), 0, 3)

    assert batch.malformed == ()
    assert [e.index for e in batch.entries] == [0, 1, 2, 3]
    assert all(e.entry.entry_type is EntryType.X509 for e in batch.entries)
    assert [len(e.chain) for e in batch.entries] == [2, 3, 3, 2]
    first = x509.load_der_x509_certificate(batch.entries[0].entry.certificate)
    assert first.subject.rfc4514_string().startswith("CN=mail.google.com,")
    assert first.issuer == x509.load_der_x509_certificate(batch.entries[0].chain[0]).subject
    assert batch.entries[0].entry.timestamp == 1364258252899  # 2013-03-26 00:37:32 UTC


def test_argon_precerts_carry_tbs_issuer_key_hash_and_precertificate() -> None:
    """Argon precerts: issuer_key_hash = SHA-256(chain[0] SPKI); TBS = precert TBS minus poison."""
    batch = parse_get_entries(data(ARGON), 380000000, 380000031)

    assert batch.count == 5
    assert [e.entry.entry_type for e in batch.entries] == [EntryType.PRECERT] * 4 + [EntryType.X509]
    for entry in batch.entries[:4]:
        issuer = x509.load_der_x509_certificate(entry.chain[0])
        spki = issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert entry.entry.issuer_key_hash == hashlib.sha256(spki).digest()
        assert entry.precertificate is not None
        precert_tbs = certificate_tbs(entry.precertificate)
        stripped = tbs_without_ct_extensions(precert_tbs, parse_tbs(precert_tbs))
        assert stripped == entry.entry.certificate
    assert batch.entries[4].precertificate is None
    assert len(batch.entries[4].chain) == 3


def _entries_body(entries: list[dict[str, Any]]) -> bytes:
    return json.dumps({"entries": entries}).encode()


def _real_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(data(ARGON))["entries"]
    return items


def _damage(item: dict[str, Any], field: str, change: Any) -> dict[str, Any]:
    raw = bytearray(base64.b64decode(item[field]))
    raw = change(raw)
    return {**item, field: base64.b64encode(bytes(raw)).decode()}


@pytest.mark.parametrize(
    ("field", "change", "defect"),
    [
        ("leaf_input", lambda b: b"\x01" + b[1:], "MerkleTreeLeaf version 1"),
        ("leaf_input", lambda b: b[:1] + b"\x07" + b[2:], "leaf_type 7"),
        ("leaf_input", lambda b: b[:10] + b"\x00\x09" + b[12:], "unknown entry_type 9"),
        ("leaf_input", lambda b: b[:-5], "TBSCertificate at byte 47 needs"),
        ("leaf_input", lambda b: b + b"\x00", "1 unexpected bytes after the MerkleTreeLeaf"),
        ("leaf_input", lambda b: b[:47] + b"\x31" + b[48:], "TBSCertificate is not a DER SEQUENCE"),
        ("extra_data", lambda b: b[:2] + bytes([b[2] - 1]) + b[3:], "extra_data pre_certificate"),
        ("extra_data", lambda b: b + b"\xff", "unexpected bytes after extra_data"),
        ("extra_data", lambda b: b"", "length of extra_data pre_certificate"),
    ],
)
def test_a_malformed_entry_is_recorded_and_the_others_parse(
    field: str, change: Any, defect: str
) -> None:
    """A damaged entry in the middle is recorded with its index and defect; its neighbours parse."""
    items = _real_items()
    items[1] = _damage(items[1], field, change)

    batch = parse_get_entries(_entries_body(items), 100, 104)

    assert [e.index for e in batch.entries] == [100, 102, 103, 104]
    assert len(batch.malformed) == 1
    bad = batch.malformed[0]
    assert bad.index == 101
    assert defect in bad.defect
    assert (
        bad.leaf_hash == hashlib.sha256(b"\x00" + base64.b64decode(items[1]["leaf_input"])).digest()
    )


def test_non_base64_and_non_object_entries_are_recorded() -> None:
    """Entries that are not objects or not base64 are recorded with their index."""
    items: list[Any] = [*_real_items()[:1], "entry", {"leaf_input": "!!", "extra_data": ""}]

    batch = parse_get_entries(_entries_body(items), 7, 9)

    assert [(m.index, m.defect) for m in batch.malformed] == [
        (8, "not a JSON object"),
        (9, "leaf_input is not valid base64"),
    ]


@pytest.mark.parametrize(("path", "first"), [(PILOT, 0), (ARGON, 380000000)])
def test_lazy_extra_data_completes_to_the_eager_parse(path: str, first: int) -> None:
    """Parsed with lazy_extra, entries carry no chain until complete_entry decodes it;
    completed, they equal the eager parse field for field."""
    eager = parse_get_entries(data(path), first, first + 31)
    lazy = parse_get_entries(data(path), first, first + 31, lazy_extra=True)

    assert [e.chain for e in lazy.entries] == [()] * len(eager.entries)
    assert all(e.extra_data_b64 for e in lazy.entries)
    assert [complete_entry(e) for e in lazy.entries] == list(eager.entries)
    assert complete_entry(eager.entries[0]) is eager.entries[0]


def test_lazy_extra_data_defects_surface_when_completed() -> None:
    """A chain overrun or non-base64 extra_data is a MalformedEntryError at completion;
    a non-string extra_data is recorded as malformed at once."""
    items = _real_items()
    extra = base64.b64decode(items[0]["extra_data"])
    items[0] = {**items[0], "extra_data": base64.b64encode(extra[:-10]).decode()}
    items[1] = {**items[1], "extra_data": "not base64!"}
    items[2] = {**items[2], "extra_data": 7}
    batch = parse_get_entries(json.dumps({"entries": items}).encode(), 0, 4, lazy_extra=True)

    assert [m.index for m in batch.malformed] == [2]
    with pytest.raises(MalformedEntryError, match="precertificate_chain"):
        complete_entry(batch.entries[0])
    with pytest.raises(MalformedEntryError, match="not valid base64"):
        complete_entry(batch.entries[1])


def test_precert_chain_overrun_is_named() -> None:
    """A chain length pointing past extra_data is named."""
    item = _real_items()[0]
    extra = base64.b64decode(item["extra_data"])
    with pytest.raises(MalformedEntryError, match=r"^entry 5: extra_data precertificate_chain"):
        parse_entry(5, base64.b64decode(item["leaf_input"]), extra[:-10])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "not JSON"),
        (b'{"entries": {}}', 'no "entries" list'),
        (b'{"entries": [1, 2, 3]}', "3 entries for 2 asked"),
    ],
)
def test_answers_of_the_wrong_shape_raise_response_errors(body: bytes, message: str) -> None:
    """A get-entries answer that is not the API's shape raises ResponseError."""
    with pytest.raises(ResponseError, match=message):
        parse_get_entries(body, 0, 1)


def test_fewer_entries_than_asked_is_fine() -> None:
    """A log may answer with fewer entries than asked for."""
    batch = parse_get_entries(data(PILOT), 0, 999)

    assert batch.count == 4


_LEAF = base64.b64decode(_real_items()[0]["leaf_input"])
_EXTRA = base64.b64decode(_real_items()[0]["extra_data"])


@given(leaf=st.binary(max_size=300), extra=st.binary(max_size=300))
@example(leaf=b"\x00\x00" + bytes(8) + b"\x00\x01", extra=b"")
@example(leaf=_LEAF[:12] + b"\xff\xff\xff", extra=b"")
def test_random_bytes_raise_only_malformed_entry(leaf: bytes, extra: bytes) -> None:
    """Random leaf_input and extra_data parse or raise MalformedEntryError."""
    try:
        parse_entry(3, leaf, extra)
    except MalformedEntryError as exc:
        assert exc.index == 3


@given(position=st.integers(0, len(_LEAF) - 1), value=st.integers(0, 255), cut=st.integers(0, 40))
def test_damaged_real_entries_raise_only_malformed_entry(
    position: int, value: int, cut: int
) -> None:
    """A real entry with a byte changed and extra_data cut parses or raises MalformedEntryError."""
    leaf = bytearray(_LEAF)
    leaf[position] = value
    try:
        parse_entry(0, bytes(leaf), _EXTRA[: len(_EXTRA) - cut])
    except MalformedEntryError:
        pass


@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@example(body=b'{"entries": [{"leaf_input": null}]}')
@example(body=b"[" * 100000)
def test_any_body_raises_only_response_errors(body: bytes) -> None:
    """Any get-entries or get-sth body parses or raises ResponseError."""
    try:
        parse_get_entries(body, 0, 10)
    except ResponseError:
        pass
    try:
        parse_sth(body)
    except ResponseError:
        pass


def test_signature_object_is_decoded() -> None:
    """The real Argon STH signature decodes as SHA-256 + ECDSA."""
    sth = parse_sth(data("rfc6962/argon2027h1/get-sth_tree_size_384065451.json"))

    assert isinstance(sth.signature, DigitallySigned)
    assert (sth.signature.hash_algorithm, sth.signature.signature_algorithm) == (4, 3)
