"""The RFC 6962 read API's answers: ``get-sth`` (with its signature) and ``get-entries``.

A ``get-entries`` answer is parsed entry by entry: a malformed entry becomes a
``MalformedEntry`` record naming its index and defect, so one bad entry never stops a
log. Only an answer that is not the API's shape at all raises ``ResponseError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import msgspec

from certvigil.ct.codec import DecodeError, Reader
from certvigil.ct.entry import (
    EntryType,
    LogEntry,
    check_der_sequence,
    check_entry_der,
    read_certificate_list,
    read_timestamped_entry,
)
from certvigil.ct.errors import MalformedEntryError, ResponseError, SignatureError
from certvigil.ct.signature import (
    DigitallySigned,
    parse_digitally_signed,
    tree_head_message,
    verify_digitally_signed,
)

MAX_STH_BYTES = 64 * 1024
MAX_ENTRIES_BYTES = 64 * 1024 * 1024
MAX_ENTRIES_PER_ANSWER = 10_000
MAX_LEAF_BYTES = 4 * 1024 * 1024
_MAX_UINT63 = 2**63 - 1


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """A log's signed tree head (``get-sth``, or a checkpoint's RFC 6962 signature)."""

    tree_size: int
    timestamp: int
    root_hash: bytes
    signature: DigitallySigned


@dataclass(frozen=True, slots=True)
class MalformedEntry:
    """An entry that could not be parsed: recorded and skipped, never fatal.

    Attributes:
        index: Its index in the log.
        defect: What is wrong, in words.
        leaf_hash: SHA-256(0x00 ‖ leaf_input) when ``leaf_input`` was base64, so the tree
            can still be checked; ``None`` otherwise.
    """

    index: int
    defect: str
    leaf_hash: bytes | None


@dataclass(frozen=True, slots=True)
class EntriesBatch:
    """The entries of one ``get-entries`` answer, from ``start`` on, in order."""

    start: int
    entries: tuple[LogEntry, ...]
    malformed: tuple[MalformedEntry, ...]

    @property
    def count(self) -> int:
        """How many entries the answer held (parsed or not)."""
        return len(self.entries) + len(self.malformed)


def parse_sth(body: bytes) -> SignedTreeHead:
    """Parse a ``get-sth`` answer (the signature is decoded, not yet verified).

    Raises:
        ResponseError: Not JSON, a field missing or out of range.
    """
    if len(body) > MAX_STH_BYTES:
        raise ResponseError("get-sth", f"{len(body)} bytes, more than {MAX_STH_BYTES}")
    document = _json(body, "get-sth")
    if not isinstance(document, dict):
        raise ResponseError("get-sth", "not a JSON object")
    tree_size = _uint(document, "tree_size", "get-sth")
    timestamp = _uint(document, "timestamp", "get-sth")
    root = _b64_field(document, "sha256_root_hash", "get-sth")
    if len(root) != 32:
        raise ResponseError("get-sth", f"sha256_root_hash is {len(root)} bytes, not 32")
    raw_signature = _b64_field(document, "tree_head_signature", "get-sth")
    try:
        signature = parse_digitally_signed(raw_signature, "tree_head_signature")
    except SignatureError as exc:
        raise ResponseError("get-sth", str(exc)) from None
    return SignedTreeHead(tree_size, timestamp, root, signature)


MAX_PROOF_HASHES = 128  # a proof between trees of up to 2^64 leaves holds at most 2 x 64


def parse_consistency(body: bytes) -> tuple[bytes, ...]:
    """Parse a ``get-sth-consistency`` answer: the proof's hashes, in order.

    Raises:
        ResponseError: Not JSON, no ``consistency`` list, or an element that is not a
            base64 SHA-256 hash.
    """
    what = "get-sth-consistency"
    if len(body) > MAX_STH_BYTES:
        raise ResponseError(what, f"{len(body)} bytes, more than {MAX_STH_BYTES}")
    document = _json(body, what)
    items = document.get("consistency") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ResponseError(what, 'no "consistency" list in the answer')
    if len(items) > MAX_PROOF_HASHES:
        raise ResponseError(what, f"{len(items)} hashes, more than {MAX_PROOF_HASHES}")
    proof: list[bytes] = []
    for number, item in enumerate(items):
        try:
            node = _b64decode(item) if isinstance(item, str) else b""
        except (binascii.Error, ValueError):
            node = b""
        if len(node) != 32:
            raise ResponseError(what, f"consistency[{number}] is not a base64 SHA-256 hash")
        proof.append(node)
    return tuple(proof)


def verify_sth(sth: SignedTreeHead, key_der: bytes) -> None:
    """Check a tree head's signature with the log's key (DER SubjectPublicKeyInfo).

    Raises:
        SignatureError: The signature does not verify or the key cannot check it.
    """
    message = tree_head_message(sth.timestamp, sth.tree_size, sth.root_hash)
    verify_digitally_signed(key_der, sth.signature, message, f"tree head of size {sth.tree_size}")


def parse_get_entries(
    body: bytes, start: int, end: int, *, lazy_extra: bool = False
) -> EntriesBatch:
    """Parse a ``get-entries?start=&end=`` answer (``end`` inclusive, as asked).

    With ``lazy_extra`` each entry's ``extra_data`` (the chain, about three quarters of
    an answer's bytes) is kept in base64 and decoded only when ``complete_entry`` is
    called, as a watch does for the few entries whose names match; ``leaf_input`` is
    checked in full either way.

    The log may answer with fewer entries than asked (the caller asks again from where
    the answer stops), never with more.

    Raises:
        ResponseError: The answer is not JSON with an ``entries`` list of objects, or
            holds more entries than asked for.
    """
    if len(body) > MAX_ENTRIES_BYTES:
        raise ResponseError("get-entries", f"{len(body)} bytes, more than {MAX_ENTRIES_BYTES}")
    asked = end - start + 1
    try:
        answer = _ANSWER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        # Not the usual shape somewhere: JSON item by item, each defect recorded.
        return _parse_get_entries_items(body, start, asked, lazy_extra)
    # The usual shape, decoded in one pass in C, leaf_input's base64 included (as
    # strictly as binascii's strict mode; a property test holds the two together).
    wire = answer.entries
    if len(wire) > min(asked, MAX_ENTRIES_PER_ANSWER):
        raise ResponseError("get-entries", f"{len(wire)} entries for {asked} asked")
    entries: list[LogEntry] = []
    malformed: list[MalformedEntry] = []
    for offset, item in enumerate(wire):
        index = start + offset
        extra = item.extra_data
        try:
            if len(extra) > MAX_LEAF_BYTES * 4 // 3 + 4:
                raise MalformedEntryError(
                    index, f"extra_data is larger than {MAX_LEAF_BYTES} bytes"
                )
            if lazy_extra:
                entries.append(parse_entry(index, item.leaf_input, None, extra_data_b64=extra))
            else:
                try:
                    extra_data = _b64decode(extra)
                except (binascii.Error, ValueError):
                    raise MalformedEntryError(index, "extra_data is not valid base64") from None
                entries.append(parse_entry(index, item.leaf_input, extra_data))
        except MalformedEntryError as exc:
            leaf_hash = hashlib.sha256(b"\x00" + item.leaf_input).digest()
            malformed.append(MalformedEntry(index, exc.defect, leaf_hash))
    return EntriesBatch(start, tuple(entries), tuple(malformed))


class _WireEntry(msgspec.Struct):
    leaf_input: bytes
    extra_data: str


class _WireAnswer(msgspec.Struct):
    entries: list[_WireEntry]


_ANSWER = msgspec.json.Decoder(_WireAnswer)


def _parse_get_entries_items(body: bytes, start: int, asked: int, lazy_extra: bool) -> EntriesBatch:
    document = _json(body, "get-entries")
    items = document.get("entries") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ResponseError("get-entries", 'no "entries" list in the answer')
    if len(items) > min(asked, MAX_ENTRIES_PER_ANSWER):
        raise ResponseError("get-entries", f"{len(items)} entries for {asked} asked")
    entries: list[LogEntry] = []
    malformed: list[MalformedEntry] = []
    for offset, item in enumerate(items):
        index = start + offset
        try:
            if not isinstance(item, dict):
                raise MalformedEntryError(index, "not a JSON object")
            if lazy_extra:
                extra = item.get("extra_data")
                if not isinstance(extra, str):
                    raise MalformedEntryError(index, "extra_data is missing or not a string")
                if len(extra) > MAX_LEAF_BYTES * 4 // 3 + 4:
                    raise MalformedEntryError(
                        index, f"extra_data is larger than {MAX_LEAF_BYTES} bytes"
                    )
                leaf_input = _b64_item(item, "leaf_input", index)
                entries.append(parse_entry(index, leaf_input, None, extra_data_b64=extra))
            else:
                entries.append(
                    parse_entry(
                        index,
                        _b64_item(item, "leaf_input", index),
                        _b64_item(item, "extra_data", index),
                    )
                )
        except MalformedEntryError as exc:
            malformed.append(MalformedEntry(index, exc.defect, _leaf_hash_of(item)))
    return EntriesBatch(start, tuple(entries), tuple(malformed))


def complete_entry(entry: LogEntry) -> LogEntry:
    """An entry parsed with ``lazy_extra``, with its ``extra_data`` decoded and checked.

    Returns the entry itself when there is nothing left to decode.

    Raises:
        MalformedEntryError: ``extra_data`` is not base64 or not the entry type's shape.
    """
    if entry.extra_data_b64 is None:
        return entry
    try:
        extra_data = _b64decode(entry.extra_data_b64)
    except (binascii.Error, ValueError):
        raise MalformedEntryError(entry.index, "extra_data is not valid base64") from None
    if len(extra_data) > MAX_LEAF_BYTES:
        raise MalformedEntryError(entry.index, f"larger than {MAX_LEAF_BYTES} bytes")
    try:
        precertificate, chain = _read_extra(entry.entry.entry_type, extra_data)
    except DecodeError as exc:
        raise MalformedEntryError(entry.index, str(exc)) from None
    return entry._replace(chain=chain, precertificate=precertificate, extra_data_b64=None)


def _read_extra(entry_type: EntryType, extra_data: bytes) -> tuple[bytes | None, tuple[bytes, ...]]:
    extra = Reader(extra_data)
    precertificate = None
    if entry_type is EntryType.PRECERT:
        precertificate = extra.opaque(3, "extra_data pre_certificate", minimum=1)
        check_der_sequence(precertificate, "extra_data pre_certificate")
        chain = read_certificate_list(extra, "extra_data precertificate_chain")
    else:
        chain = read_certificate_list(extra, "extra_data certificate_chain")
    extra.expect_end("extra_data")
    return precertificate, chain


def parse_entry(
    index: int, leaf_input: bytes, extra_data: bytes | None, *, extra_data_b64: str | None = None
) -> LogEntry:
    """Parse one RFC 6962 entry: a MerkleTreeLeaf and its ``extra_data``.

    ``extra_data`` ``None`` leaves the chain empty (for ``lazy_extra``), to be decoded
    from ``extra_data_b64`` by ``complete_entry``.

    Raises:
        MalformedEntryError: With the index and what is wrong.
    """
    if len(leaf_input) > MAX_LEAF_BYTES or len(extra_data or b"") > MAX_LEAF_BYTES:
        raise MalformedEntryError(index, f"larger than {MAX_LEAF_BYTES} bytes")
    try:
        reader = Reader(leaf_input, 2)
        if leaf_input[:2] != b"\x00\x00":
            reader.pos = 0
            version = reader.uint(1, "version")
            if version != 0:
                raise DecodeError(f"MerkleTreeLeaf version {version}, not v1 (0)")
            leaf_type = reader.uint(1, "leaf_type")
            if leaf_type != 0:
                raise DecodeError(f"leaf_type {leaf_type}, not timestamped_entry (0)")
        entry = read_timestamped_entry(reader)
        reader.expect_end("the MerkleTreeLeaf")
        check_entry_der(entry)
        precertificate: bytes | None = None
        chain: tuple[bytes, ...] = ()
        if extra_data is not None:
            precertificate, chain = _read_extra(entry.entry_type, extra_data)
    except DecodeError as exc:
        raise MalformedEntryError(index, str(exc)) from None
    return LogEntry(
        index=index,
        entry=entry,
        leaf_hash=hashlib.sha256(b"\x00" + leaf_input).digest(),
        chain=chain,
        precertificate=precertificate,
        extra_data_b64=extra_data_b64,
    )


def _leaf_hash_of(item: Any) -> bytes | None:
    if not isinstance(item, dict) or not isinstance(item.get("leaf_input"), str):
        return None
    try:
        leaf = _b64decode(item["leaf_input"])
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(b"\x00" + leaf).digest()


def _b64_item(item: dict[str, Any], field: str, index: int) -> bytes:
    value = item.get(field)
    if not isinstance(value, str):
        raise MalformedEntryError(index, f"{field} is missing or not a string")
    if len(value) > MAX_LEAF_BYTES * 4 // 3 + 4:
        raise MalformedEntryError(index, f"{field} is larger than {MAX_LEAF_BYTES} bytes")
    try:
        return _b64decode(value)
    except (binascii.Error, ValueError):
        raise MalformedEntryError(index, f"{field} is not valid base64") from None


def _b64decode(text: str) -> bytes:
    """Standard base64 with padding, nothing else (``binascii.Error`` or ``ValueError``).

    ``base64.b64decode(validate=True)`` checks the alphabet with a regular expression
    first, which costs more than the decoding; ``strict_mode`` checks it in C, and also
    refuses data after the padding.
    """
    return binascii.a2b_base64(text, strict_mode=True)


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ResponseError(what, f"not JSON: {exc}") from None


def _uint(document: dict[str, Any], field: str, what: str) -> int:
    value = document.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_UINT63:
        raise ResponseError(what, f"{field} is missing or not a whole number in range")
    return value


def _b64_field(document: dict[str, Any], field: str, what: str) -> bytes:
    value = document.get(field)
    if not isinstance(value, str) or len(value) > MAX_STH_BYTES:
        raise ResponseError(what, f"{field} is missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ResponseError(what, f"{field} is not valid base64") from None
