"""The firehose's fast paths agree with the careful readers they shortcut.

Each fast path (TimestampedEntry by offsets, TBS walk with inline headers, the one-pass
``get-entries`` decode) must accept exactly what the careful reader accepts and give
the same result; on anything else the careful reader runs and names the defect.
"""

from __future__ import annotations

import binascii
import json

import msgspec
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.ct.codec import DecodeError, Reader
from certvigil.ct.der import _parse_tbs, _parse_tbs_fast, parse_tbs, subject_common_names
from certvigil.ct.entry import _read_timestamped_entry_by_fields, read_timestamped_entry
from certvigil.ct.errors import ResponseError
from certvigil.ct.rfc6962 import _WireEntry, parse_get_entries
from certvigil.ct.static_ct import data_tile, parse_data_tile
from tests.ct.conftest import data

_TILE = data("static-ct/navigli2025h2/tile/data/000")
_TBS = parse_data_tile(_TILE, data_tile(0)).entries[0].entry.certificate
# The first TileLeaf's TimestampedEntry (with the tail of the tile after it).
_LEAF = _TILE[:2000]
PILOT = "rfc6962/pilot/get-entries_start_0_end_3.json"


def _outcome_tbs(parse: object, tbs: bytes) -> object:
    try:
        return parse(tbs)  # type: ignore[operator]
    except DecodeError:
        return "error"


@given(position=st.integers(0, len(_TBS) - 1), value=st.integers(0, 255))
@example(position=1, value=0x84)  # a four-byte length: the careful path
@example(position=4, value=0xA1)  # version replaced by an issuerUniqueID-like tag
def test_tbs_fast_walk_agrees_with_the_careful_one(position: int, value: int) -> None:
    """A real TBS with one byte changed: both walks give the same fields, or both fail."""
    raw = bytearray(_TBS)
    raw[position] = value
    tbs = bytes(raw)

    fast = _parse_tbs_fast(tbs)
    careful = _outcome_tbs(_parse_tbs, tbs)

    if fast is not None:
        assert fast == careful
    assert _outcome_tbs(parse_tbs, tbs) == careful


@given(tbs=st.binary(max_size=120))
@example(tbs=bytes.fromhex("300d020101300030003000300030 00".replace(" ", "")))
def test_tbs_fast_walk_never_accepts_what_the_careful_one_refuses(tbs: bytes) -> None:
    """On random bytes the fast walk either gives up or agrees."""
    fast = _parse_tbs_fast(tbs)
    if fast is not None:
        assert fast == _parse_tbs(tbs)


def test_tbs_fast_walk_takes_the_real_certificates() -> None:
    """The real TBS is read by the fast walk itself (else the bench measures the other)."""
    assert _parse_tbs_fast(_TBS) is not None
    assert _parse_tbs_fast(_TBS) == _parse_tbs(_TBS)


def _outcome_entry(read: object, raw: bytes) -> object:
    reader = Reader(raw)
    try:
        return read(reader), reader.pos  # type: ignore[operator]
    except DecodeError:
        return "error"


@given(position=st.integers(0, 60), value=st.integers(0, 255), cut=st.integers(0, 2000))
@example(position=8, value=7, cut=2000)  # unknown entry type
@example(position=42, value=0, cut=2000)  # precert TBS length 0 (first byte)
def test_timestamped_entry_fast_read_agrees(position: int, value: int, cut: int) -> None:
    """A real TileLeaf with a byte changed or cut: same entry and position, or both fail."""
    raw = bytearray(_LEAF[:cut])
    if position < len(raw):
        raw[position] = value
    fast = _outcome_entry(read_timestamped_entry, bytes(raw))
    careful = _outcome_entry(_read_timestamped_entry_by_fields, bytes(raw))
    assert fast == careful


@given(raw=st.binary(max_size=80))
def test_timestamped_entry_fast_read_agrees_on_random_bytes(raw: bytes) -> None:
    """Random bytes: the same entry and position, or both fail."""
    fast = _outcome_entry(read_timestamped_entry, raw)
    careful = _outcome_entry(_read_timestamped_entry_by_fields, raw)
    assert fast == careful


_B64 = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \n!é")


@given(text=_B64)
@example(text="QQ")
@example(text="QQ==QQ==")
@example(text="=QQ=")
@example(text="QR==")
def test_one_pass_base64_is_as_strict_as_binascii(text: str) -> None:
    """msgspec's base64 for leaf_input accepts what strict binascii accepts, and the same bytes."""
    body = json.dumps({"leaf_input": text, "extra_data": ""}).encode()
    try:
        fast: object = msgspec.json.decode(body, type=_WireEntry).leaf_input
    except msgspec.ValidationError:
        fast = "error"
    try:
        careful: object = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        careful = "error"
    assert fast == careful


def test_an_answer_off_the_usual_shape_still_records_each_entry() -> None:
    """One entry that is not base64 sends the answer the careful way: the others still parse."""
    document = json.loads(data(PILOT))
    usual = parse_get_entries(data(PILOT), 0, 3)
    document["entries"][2]["leaf_input"] = "not base64!"

    batch = parse_get_entries(json.dumps(document).encode(), 0, 3)

    assert [e.index for e in batch.entries] == [0, 1, 3]
    assert [(m.index, m.defect) for m in batch.malformed] == [(2, "leaf_input is not valid base64")]
    assert batch.entries == tuple(e for e in usual.entries if e.index != 2)


@pytest.mark.parametrize("lazy", [False, True])
def test_both_decodes_give_the_same_entries(lazy: bool) -> None:
    """An answer with an extra field per entry (ignored) parses like the plain one."""
    document = json.loads(data(PILOT))
    plain = parse_get_entries(data(PILOT), 0, 3, lazy_extra=lazy)
    for item in document["entries"]:
        item["leaf_index"] = 1  # some logs add fields; both decodes ignore them
    # Valid JSON that only the careful decode takes: an entry that is a list.
    odd = {"entries": [*document["entries"], ["x"]]}

    extra_field = parse_get_entries(json.dumps(document).encode(), 0, 3, lazy_extra=lazy)
    careful = parse_get_entries(json.dumps(odd).encode(), 0, 4, lazy_extra=lazy)

    assert extra_field == plain
    assert careful.entries == plain.entries
    assert [(m.index, m.defect) for m in careful.malformed] == [(4, "not a JSON object")]


@given(
    common_names=st.lists(st.text(min_size=1, max_size=150), min_size=0, max_size=3),
    organization=st.text(min_size=1, max_size=200),
)
def test_common_names_are_read_as_cryptography_writes_them(
    common_names: list[str], organization: str
) -> None:
    """Every commonName of a Name built by cryptography is read back, in order."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)]
    attributes += [x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in common_names]
    der = x509.Name(attributes).public_bytes()

    assert subject_common_names(der) == common_names


@pytest.mark.parametrize(
    "body",
    [
        b'{"x":' + b"[" * 200_000 + b"]" * 200_000 + b', "entries": []}',
        b'{"entries":' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        b"[" * 100_000,
    ],
)
def test_deeply_nested_answers_are_refused_not_crashed(body: bytes) -> None:
    """Nesting deep enough to exhaust either decoder's stack is a ResponseError, or an
    answer with no entries, never a RecursionError."""
    try:
        batch = parse_get_entries(body, 0, 9)
    except ResponseError:
        return
    assert batch.count == 0
