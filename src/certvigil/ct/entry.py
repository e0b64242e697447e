"""A CT log entry, whichever protocol served it, and the ``TimestampedEntry`` codec.

RFC 6962 ``get-entries`` and static-ct-api data tiles both carry the same
``TimestampedEntry`` (RFC 6962 §3.4); the leaf hash covers ``00 ‖ 00 ‖ TimestampedEntry``
in both. They differ in how the chain travels: RFC 6962 sends the DER certificates in
``extra_data``, a data tile sends their SHA-256 fingerprints (the log serves each issuer
once at ``issuer/<hex>``).
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from certvigil.ct.codec import DecodeError, Reader
from certvigil.ct.der import read_tlv

MAX_CHAIN = 32


class EntryType(IntEnum):
    """``LogEntryType``: a final certificate or a precertificate."""

    X509 = 0
    PRECERT = 1


class TimestampedEntry(NamedTuple):
    """RFC 6962 ``TimestampedEntry``.

    A named tuple rather than a frozen dataclass: one is built per log entry, and a
    tuple is built several times faster; it is just as immutable.

    Attributes:
        timestamp: Milliseconds since the epoch, as the log gave them in the SCT.
        entry_type: X.509 certificate or precertificate.
        certificate: The certificate's DER (``x509_entry``) or the precertificate's
            TBSCertificate DER with the poison extension removed (``precert_entry``).
        issuer_key_hash: SHA-256 of the issuing CA's SubjectPublicKeyInfo
            (``precert_entry`` only).
        extensions: The CtExtensions bytes (a static log's ``leaf_index`` is here).
    """

    timestamp: int
    entry_type: EntryType
    certificate: bytes
    issuer_key_hash: bytes | None
    extensions: bytes


class LogEntry(NamedTuple):
    """One entry of a log, parsed.

    A named tuple rather than a frozen dataclass: one is built per log entry, and a
    tuple is built several times faster; it is just as immutable.

    Attributes:
        index: Its index in the log.
        entry: The TimestampedEntry.
        leaf_hash: SHA-256(0x00 ‖ MerkleTreeLeaf), what the tree commits to.
        chain: The chain's DER certificates, issuer first (RFC 6962 ``extra_data``);
            empty when only fingerprints are known.
        chain_fingerprints: SHA-256 of each chain certificate (static-ct-api tiles);
            empty for RFC 6962 entries (hash ``chain`` when needed).
        precertificate: The precertificate's DER, for ``precert_entry``.
        extra_data_b64: An RFC 6962 entry's ``extra_data`` still in base64, when it was
            parsed lazily (``parse_get_entries(..., lazy_extra=True)``): ``chain`` and
            ``precertificate`` are then empty until ``rfc6962.complete_entry`` decodes it.
            ``None`` once decoded (and for static entries).
    """

    # The CT name for an entry's place; it shadows tuple.index(), which is never used.
    index: int  # type: ignore[assignment]
    entry: TimestampedEntry
    leaf_hash: bytes
    chain: tuple[bytes, ...] = ()
    chain_fingerprints: tuple[bytes, ...] = ()
    precertificate: bytes | None = None
    extra_data_b64: str | None = None

    @property
    def is_precert(self) -> bool:
        """Whether this entry is a precertificate."""
        return self.entry.entry_type is EntryType.PRECERT


def read_timestamped_entry(reader: Reader) -> TimestampedEntry:
    """Read a TimestampedEntry, leaving ``reader`` after its extensions.

    Only the framing is checked here; ``check_entry_der`` looks inside the certificate.

    Raises:
        DecodeError: A field is truncated or the entry type is unknown.
    """
    # This runs for every entry of every log: the well-formed case is read by offsets
    # in one go; anything else (short, unknown type, empty certificate) takes the
    # field-by-field reader below, which accepts nothing more and names the defect.
    data, pos, end = reader.data, reader.pos, reader.end
    if pos + 15 <= end:
        kind = data[pos + 8] << 8 | data[pos + 9]
        if kind == 1:
            length_at = pos + 42
            issuer_key_hash: bytes | None = data[pos + 10 : length_at]
        elif kind == 0:
            length_at = pos + 10
            issuer_key_hash = None
        else:
            length_at = end
        if length_at + 3 <= end:
            cert_start = length_at + 3
            cert_stop = cert_start + (
                data[length_at] << 16 | data[length_at + 1] << 8 | data[length_at + 2]
            )
            if cert_stop > cert_start and cert_stop + 2 <= end:
                ext_stop = cert_stop + 2 + (data[cert_stop] << 8 | data[cert_stop + 1])
                if ext_stop <= end:
                    reader.pos = ext_stop
                    return TimestampedEntry(
                        int.from_bytes(data[pos : pos + 8], "big"),
                        EntryType.PRECERT if kind else EntryType.X509,
                        data[cert_start:cert_stop],
                        issuer_key_hash,
                        data[cert_stop + 2 : ext_stop],
                    )
    return _read_timestamped_entry_by_fields(reader)


def _read_timestamped_entry_by_fields(reader: Reader) -> TimestampedEntry:
    timestamp = reader.uint(8, "timestamp")
    kind = reader.uint(2, "entry_type")
    if kind == EntryType.X509:
        entry_type = EntryType.X509
        issuer_key_hash = None
        certificate = reader.opaque(3, "certificate", minimum=1)
    elif kind == EntryType.PRECERT:
        entry_type = EntryType.PRECERT
        issuer_key_hash = reader.fixed(32, "issuer_key_hash")
        certificate = reader.opaque(3, "TBSCertificate", minimum=1)
    else:
        raise DecodeError(f"unknown entry_type {kind}")
    extensions = reader.opaque(2, "extensions")
    return TimestampedEntry(timestamp, entry_type, certificate, issuer_key_hash, extensions)


def check_entry_der(entry: TimestampedEntry) -> None:
    """Raise unless the entry's certificate (or TBS) is exactly one DER SEQUENCE."""
    der = entry.certificate
    # The usual header (SEQUENCE, two length bytes) checked inline; read_tlv otherwise.
    if len(der) > 4 and der[0] == 0x30 and der[1] == 0x82:
        if 4 + (der[2] << 8 | der[3]) == len(der):
            return
    tag, _, stop = _tlv_or_none(der)
    if tag != 0x30 or stop != len(entry.certificate):
        what = "the certificate" if entry.entry_type is EntryType.X509 else "the TBSCertificate"
        check_der_sequence(entry.certificate, what)  # raises, with the reason


def check_der_sequence(der: bytes, what: str) -> None:
    """Raise unless ``der`` is exactly one DER SEQUENCE."""
    try:
        tag, _, stop = read_tlv(der, 0, len(der))
    except DecodeError as exc:
        raise DecodeError(f"{what}: {exc}") from None
    if tag != 0x30:
        raise DecodeError(f"{what} is not a DER SEQUENCE (tag 0x{tag:02x})")
    if stop != len(der):
        raise DecodeError(f"{len(der) - stop} bytes after {what}")


def read_certificate_list(reader: Reader, field: str) -> tuple[bytes, ...]:
    """Read ``ASN.1Cert list<0..2^24-1>``, at most ``MAX_CHAIN`` certificates."""
    body = reader.opaque(3, field)
    inner = Reader(body)
    certificates: list[bytes] = []
    while inner.pos < inner.end:
        if len(certificates) >= MAX_CHAIN:
            raise DecodeError(f"{field} holds more than {MAX_CHAIN} certificates")
        number = len(certificates)
        der = inner.opaque(3, field, minimum=1)
        tag, _, stop = _tlv_or_none(der)
        if tag != 0x30 or stop != len(der):
            check_der_sequence(der, f"{field}[{number}]")  # raises, with the reason
        certificates.append(der)
    return tuple(certificates)


def _tlv_or_none(der: bytes) -> tuple[int, int, int]:
    try:
        return read_tlv(der, 0, len(der))
    except DecodeError:
        return -1, 0, 0
