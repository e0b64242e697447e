"""Just enough DER to read what the CT watch needs from a TBSCertificate, fast.

``cryptography`` cannot load a bare TBSCertificate (a precert entry holds nothing else),
and building full certificate objects for every entry of the firehose costs more than the
watch can afford. This module walks the TBS by offsets, reading only the serial number,
issuer, validity, subject and extensions; every length is checked against its container,
so hostile bytes raise ``DecodeError`` and never read past the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from certvigil.ct.codec import DecodeError

# OBJECT IDENTIFIER contents (the bytes after tag and length), compared as bytes.
OID_COMMON_NAME = bytes.fromhex("550403")  # 2.5.4.3
OID_SUBJECT_ALT_NAME = bytes.fromhex("551d11")  # 2.5.29.17
OID_CT_POISON = bytes.fromhex("2b06010401d679020403")  # 1.3.6.1.4.1.11129.2.4.3
OID_CT_SCT_LIST = bytes.fromhex("2b06010401d679020402")  # 1.3.6.1.4.1.11129.2.4.2

_SEQUENCE = 0x30
_SET = 0x31
_OID = 0x06
_INTEGER = 0x02
_BOOLEAN = 0x01
_OCTET_STRING = 0x04
_VERSION = 0xA0
_EXTENSIONS = 0xA3
_MAX_EXTENSIONS = 256


def read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Tag, content start and content end of the DER element at ``pos``.

    Raises:
        DecodeError: The header is truncated, uses a form DER forbids here (indefinite
            length, multi-byte tag, more than 4 length bytes) or overruns ``end``.
    """
    if pos + 2 > end:
        raise DecodeError(f"DER element at byte {pos} is truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DecodeError(f"DER element at byte {pos} uses a multi-byte tag")
    first = data[pos + 1]
    if first < 0x80:
        start = pos + 2
        stop = start + first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DecodeError(f"DER element at byte {pos} has an unsupported length form")
        start = pos + 2 + count
        if start > end:
            raise DecodeError(f"DER length at byte {pos} is truncated")
        stop = start + int.from_bytes(data[pos + 2 : start], "big")
    if stop > end:
        raise DecodeError(f"DER element at byte {pos} overruns its container")
    return tag, start, stop


def encode_tlv(tag: int, content: bytes) -> bytes:
    """The DER encoding of ``content`` under ``tag`` (definite length)."""
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content


def _expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    found, start, stop = read_tlv(data, pos, end)
    if found != tag:
        raise DecodeError(f"{what} has tag 0x{found:02x}, expected 0x{tag:02x}")
    return start, stop


def certificate_tbs(der: bytes) -> bytes:
    """The TBSCertificate inside a Certificate (its first element, header included).

    Raises:
        DecodeError: ``der`` is not a DER SEQUENCE that starts with a SEQUENCE.
    """
    start, stop = _expect(der, 0, len(der), _SEQUENCE, "certificate")
    if stop != len(der):
        raise DecodeError(f"{len(der) - stop} bytes after the certificate")
    tag, _, tbs_stop = read_tlv(der, start, stop)
    if tag != _SEQUENCE:
        raise DecodeError(f"TBSCertificate has tag 0x{tag:02x}, expected a SEQUENCE")
    return der[start:tbs_stop]


@dataclass(frozen=True, slots=True)
class Extension:
    """One extension of a TBSCertificate, by offsets into the TBS bytes.

    Attributes:
        oid: The OBJECT IDENTIFIER's content bytes (compare with the ``OID_*`` constants).
        critical: The critical flag.
        value: The extnValue's content (what the OCTET STRING wraps).
        start: Offset of the whole Extension element in the TBS.
        stop: Offset just after it.
    """

    oid: bytes
    critical: bool
    value: bytes
    start: int
    stop: int


class TbsFields(NamedTuple):
    """The parts of a TBSCertificate the CT watch reads (raw DER where not decoded).

    A named tuple rather than a frozen dataclass: one is built per log entry, and a
    tuple is built several times faster; it is just as immutable.

    The extensions are located but not taken apart (``tbs_extensions`` does that;
    ``find_extension`` finds one quickly), because matching needs only one of them.

    Attributes:
        serial: The serialNumber element's content bytes (two's complement, big-endian).
        issuer: The issuer Name, whole element (tag and length included).
        validity: The Validity element, whole.
        subject: The subject Name, whole element.
        spki: The SubjectPublicKeyInfo, whole element.
        extensions_start: Offset of the ``[3]`` extensions wrapper in the TBS (or -1).
        extensions_stop: Offset just after it (or -1).
        list_start: Offset of the first Extension inside it (or -1).
        list_stop: Offset just after the last (or -1).
    """

    serial: bytes
    issuer: bytes
    validity: bytes
    subject: bytes
    spki: bytes
    extensions_start: int
    extensions_stop: int
    list_start: int
    list_stop: int


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """``read_tlv`` for the one- to three-byte length forms, else ``(-1, 0, 0)``.

    The caller falls back to ``read_tlv`` on ``-1``, which reports what is wrong.
    """
    if pos + 2 > end:
        return -1, 0, 0
    first = data[pos + 1]
    if first < 0x80:
        start = pos + 2
        stop = start + first
    elif first == 0x81 and pos + 3 <= end:
        start = pos + 3
        stop = start + data[pos + 2]
    elif first == 0x82 and pos + 4 <= end:
        start = pos + 4
        stop = start + (data[pos + 2] << 8 | data[pos + 3])
    else:
        return -1, 0, 0
    tag = data[pos]
    if stop > end or tag & 0x1F == 0x1F:
        return -1, 0, 0
    return tag, start, stop


def parse_tbs(tbs: bytes) -> TbsFields:
    """Walk a TBSCertificate.

    Raises:
        DecodeError: The TBS is not a well-formed DER TBSCertificate, with what and where.
    """
    # Every logged certificate comes through here: the common shape is walked with
    # headers decoded inline; anything unusual goes the careful way, which accepts
    # exactly the same inputs and says what is wrong.
    fields = _parse_tbs_fast(tbs)
    return fields if fields is not None else _parse_tbs(tbs)


def _parse_tbs_fast(tbs: bytes) -> TbsFields | None:
    end = len(tbs)
    tag, start, stop = _header(tbs, 0, end)
    if tag != _SEQUENCE or stop != end:
        return None
    tag, content, after = _header(tbs, start, stop)
    if tag == _VERSION:
        tag, content, after = _header(tbs, after, stop)
    if tag != _INTEGER:
        return None
    serial = tbs[content:after]
    tag, _, pos = _header(tbs, after, stop)  # signature AlgorithmIdentifier
    if tag < 0:
        return None
    tag, _, issuer_stop = _header(tbs, pos, stop)
    if tag != _SEQUENCE:
        return None
    issuer = tbs[pos:issuer_stop]
    tag, _, validity_stop = _header(tbs, issuer_stop, stop)
    if tag != _SEQUENCE:
        return None
    tag, _, subject_stop = _header(tbs, validity_stop, stop)
    if tag != _SEQUENCE:
        return None
    tag, _, pos = _header(tbs, subject_stop, stop)
    if tag != _SEQUENCE:
        return None
    spki_start = subject_stop
    if pos == stop:
        ext_start = ext_stop = list_start = list_stop = -1
    else:
        tag, content, ext_stop = _header(tbs, pos, stop)
        if tag != _EXTENSIONS or ext_stop != stop:
            return None
        tag, list_start, list_stop = _header(tbs, content, ext_stop)
        if tag != _SEQUENCE or list_stop != ext_stop:
            return None
        ext_start = pos
    return TbsFields(
        serial,
        issuer,
        tbs[issuer_stop:validity_stop],
        tbs[validity_stop:subject_stop],
        tbs[spki_start:pos],
        ext_start,
        ext_stop,
        list_start,
        list_stop,
    )


def _parse_tbs(tbs: bytes) -> TbsFields:
    end = len(tbs)
    start, stop = _expect(tbs, 0, end, _SEQUENCE, "TBSCertificate")
    if stop != end:
        raise DecodeError(f"{end - stop} bytes after the TBSCertificate")
    pos = start
    tag, content, after = read_tlv(tbs, pos, stop)
    if tag == _VERSION:
        pos = after
        tag, content, after = read_tlv(tbs, pos, stop)
    if tag != _INTEGER:
        raise DecodeError(f"serialNumber has tag 0x{tag:02x}, expected an INTEGER")
    serial = tbs[content:after]
    _, _, pos = read_tlv(tbs, after, stop)  # signature AlgorithmIdentifier
    elements: list[bytes] = []
    for what in ("issuer", "validity", "subject", "subjectPublicKeyInfo"):
        tag, _, after = read_tlv(tbs, pos, stop)
        if tag != _SEQUENCE:
            raise DecodeError(f"{what} has tag 0x{tag:02x}, expected a SEQUENCE")
        elements.append(tbs[pos:after])
        pos = after
    ext_start = ext_stop = list_start = list_stop = -1
    while pos < stop:
        tag, content, after = read_tlv(tbs, pos, stop)
        if tag == _EXTENSIONS:
            ext_start, ext_stop = pos, after
            list_start, list_stop = _expect(tbs, content, after, _SEQUENCE, "extensions")
            if list_stop != after:
                raise DecodeError("bytes after the extensions SEQUENCE")
        elif tag not in (0x81, 0xA1, 0x82, 0xA2):  # issuer/subject unique IDs
            raise DecodeError(f"unexpected element with tag 0x{tag:02x} in the TBSCertificate")
        pos = after
    return TbsFields(
        serial,
        elements[0],
        elements[1],
        elements[2],
        elements[3],
        ext_start,
        ext_stop,
        list_start,
        list_stop,
    )


def find_extension(tbs: bytes, fields: TbsFields, oid: bytes) -> bytes | None:
    """The extnValue content of the first extension with ``oid``, or ``None``.

    Only the extensions before it are walked, by their headers.

    Raises:
        DecodeError: An extension on the way is malformed.
    """
    pos, stop = fields.list_start, fields.list_stop
    # The OID element as it opens the Extension SEQUENCE: one startswith() per
    # extension instead of three comparisons and a slice.
    wanted = bytes((_OID, len(oid))) + oid
    size = len(wanted)
    startswith = tbs.startswith
    count = 0
    while pos < stop:
        count += 1
        if count > _MAX_EXTENSIONS:
            raise DecodeError(f"more than {_MAX_EXTENSIONS} extensions")
        # The common header forms inline (this loop runs for every logged certificate);
        # anything else goes through read_tlv, which also reports what is wrong.
        first = tbs[pos + 1] if pos + 4 <= stop and tbs[pos] == _SEQUENCE else 0xFF
        if first < 0x80:
            e_start = pos + 2
            e_stop = e_start + first
        elif first == 0x81:
            e_start = pos + 3
            e_stop = e_start + tbs[pos + 2]
        elif first == 0x82:
            e_start = pos + 4
            e_stop = e_start + (tbs[pos + 2] << 8 | tbs[pos + 3])
        else:
            tag, e_start, e_stop = read_tlv(tbs, pos, stop)
            if tag != _SEQUENCE:
                raise DecodeError(f"extension has tag 0x{tag:02x}, expected a SEQUENCE")
        if e_stop > stop:
            raise DecodeError(f"DER element at byte {pos} overruns its container")
        if startswith(wanted, e_start) and e_start + size <= e_stop:
            return _extension_value(tbs, e_start + size, e_stop)
        pos = e_stop
    return None


def _extension_value(tbs: bytes, pos: int, e_stop: int) -> bytes:
    """The extnValue content of an Extension whose OID ends at ``pos``."""
    tag, c_start, c_stop = _header(tbs, pos, e_stop)
    if tag == _BOOLEAN:
        tag, c_start, c_stop = _header(tbs, c_stop, e_stop)
    if tag == _OCTET_STRING and c_stop == e_stop:
        return tbs[c_start:c_stop]
    # Not the usual shape: the careful reader raises with what is wrong (or agrees).
    tag, c_start, c_stop = read_tlv(tbs, pos, e_stop)
    if tag == _BOOLEAN:
        tag, c_start, c_stop = read_tlv(tbs, c_stop, e_stop)
    if tag != _OCTET_STRING:
        raise DecodeError(f"extnValue has tag 0x{tag:02x}, expected an OCTET STRING")
    if c_stop != e_stop:
        raise DecodeError("bytes after an extension's extnValue")
    return tbs[c_start:c_stop]


def tbs_extensions(tbs: bytes, fields: TbsFields) -> tuple[Extension, ...]:
    """Every extension of a parsed TBS, in order.

    Raises:
        DecodeError: An extension is malformed, or there are more than 256.
    """
    found: list[Extension] = []
    pos, stop = fields.list_start, fields.list_stop
    while pos < stop:
        if len(found) >= _MAX_EXTENSIONS:
            raise DecodeError(f"more than {_MAX_EXTENSIONS} extensions")
        e_start, e_stop = _expect(tbs, pos, stop, _SEQUENCE, "extension")
        found.append(_extension(tbs, pos, e_start, e_stop))
        pos = e_stop
    return tuple(found)


def _extension(tbs: bytes, pos: int, e_start: int, e_stop: int) -> Extension:
    o_start, o_stop = _expect(tbs, e_start, e_stop, _OID, "extension OID")
    critical = False
    tag, c_start, c_stop = read_tlv(tbs, o_stop, e_stop)
    if tag == _BOOLEAN:
        critical = c_stop > c_start and tbs[c_start] != 0
        tag, c_start, c_stop = read_tlv(tbs, c_stop, e_stop)
    if tag != _OCTET_STRING:
        raise DecodeError(f"extnValue has tag 0x{tag:02x}, expected an OCTET STRING")
    if c_stop != e_stop:
        raise DecodeError("bytes after an extension's extnValue")
    return Extension(tbs[o_start:o_stop], critical, tbs[c_start:c_stop], pos, e_stop)


def subject_common_names(subject: bytes) -> list[str]:
    """The commonName values of a Name element, decoded (undecodable ones skipped).

    Raises:
        DecodeError: The Name is malformed.
    """
    names: list[str] = []
    start, stop = _expect(subject, 0, len(subject), _SEQUENCE, "Name")
    pos = start
    cn_type = b"\x06\x03" + OID_COMMON_NAME
    while pos < stop:
        tag, r_start, r_stop = _header(subject, pos, stop)
        if tag != _SET:
            r_start, r_stop = _expect(subject, pos, stop, _SET, "RelativeDistinguishedName")
        inner = r_start
        while inner < r_stop:
            tag, a_start, a_stop = _header(subject, inner, r_stop)
            if tag != _SEQUENCE:
                a_start, a_stop = _expect(subject, inner, r_stop, _SEQUENCE, "attribute")
            tag, _, o_stop = _header(subject, a_start, a_stop)
            if tag != _OID:
                _, o_stop = _expect(subject, a_start, a_stop, _OID, "attribute type")
            if o_stop == a_start + 5 and subject.startswith(cn_type, a_start):
                tag, v_start, v_stop = read_tlv(subject, o_stop, a_stop)
                text = _decode_string(tag, subject[v_start:v_stop])
                if text is not None:
                    names.append(text)
            inner = a_stop
        pos = r_stop
    return names


_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x13: "ascii",  # PrintableString
    0x16: "ascii",  # IA5String
    0x14: "latin-1",  # TeletexString (in practice Latin-1)
    0x1E: "utf-16-be",  # BMPString
    0x1C: "utf-32-be",  # UniversalString
}


def _decode_string(tag: int, raw: bytes) -> str | None:
    codec = _STRING_CODECS.get(tag)
    if codec is None:
        return None
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        return None


def san_dns_names(value: bytes) -> tuple[list[str], list[bytes]]:
    """The dNSName and iPAddress entries of a subjectAltName extension's value.

    Returns:
        The DNS names as text (IA5String; non-ASCII bytes read as UTF-8, undecodable
        ones skipped) and the raw IP address octets.

    Raises:
        DecodeError: The GeneralNames SEQUENCE is malformed.
    """
    dns: list[str] = []
    ips: list[bytes] = []
    start, stop = _expect(value, 0, len(value), _SEQUENCE, "GeneralNames")
    if stop != len(value):
        raise DecodeError("bytes after the subjectAltName GeneralNames")
    pos = start
    while pos < stop:
        tag, c_start, c_stop = _header(value, pos, stop)
        if tag < 0:
            tag, c_start, c_stop = read_tlv(value, pos, stop)
        if tag == 0x82:
            raw = value[c_start:c_stop]
            try:
                dns.append(raw.decode("ascii"))
            except UnicodeDecodeError:
                try:
                    dns.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    pass
        elif tag == 0x87:
            ips.append(value[c_start:c_stop])
        pos = c_stop
    return dns, ips


def tbs_without_ct_extensions(tbs: bytes, fields: TbsFields) -> bytes:
    """The TBS re-encoded without the CT poison and SCT-list extensions.

    Raises:
        DecodeError: An extension is malformed.

    A precertificate's TBS (poison removed by the log) and its final certificate's TBS
    (SCT list added by the CA) become byte-identical, which is what dedup keys on. An
    extensions block left empty is dropped, the same way on both sides.
    """
    if fields.extensions_start < 0:
        return tbs
    kept = b"".join(
        tbs[ext.start : ext.stop]
        for ext in tbs_extensions(tbs, fields)
        if ext.oid != OID_CT_POISON and ext.oid != OID_CT_SCT_LIST
    )
    block = encode_tlv(_EXTENSIONS, encode_tlv(_SEQUENCE, kept)) if kept else b""
    _, content, _ = read_tlv(tbs, 0, len(tbs))
    body = tbs[content : fields.extensions_start] + block + tbs[fields.extensions_stop :]
    return encode_tlv(_SEQUENCE, body)
