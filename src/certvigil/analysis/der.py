"""Just enough DER reading to take a certificate's extensions apart one by one.

cryptography parses a certificate's extensions all at once: one malformed extension
makes every extension unreadable. To degrade field by field instead, the extension
list is split here and each extension is parsed on its own inside a copy of the
certificate that carries only that extension (signatures are not checked when parsing).
"""

from __future__ import annotations

from collections.abc import Iterator

_TAG_SEQUENCE = 0x30
_TAG_EXTENSIONS = 0xA3  # [3] EXPLICIT in TBSCertificate


def _read_header(data: bytes, offset: int) -> tuple[int, int, int]:
    """Tag, header length and content length of the TLV at ``offset``."""
    if offset + 2 > len(data):
        raise ValueError(f"DER truncated at byte {offset}")
    tag = data[offset]
    first = data[offset + 1]
    if first < 0x80:
        return tag, 2, first
    count = first & 0x7F
    if count == 0 or count > 4 or offset + 2 + count > len(data):
        raise ValueError(f"DER length at byte {offset} is not supported")
    length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    return tag, 2 + count, length


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(tag, start, end) of each TLV in ``data[start:end]``."""
    offset = start
    while offset < end:
        tag, header, length = _read_header(data, offset)
        stop = offset + header + length
        if stop > end:
            raise ValueError(f"DER element at byte {offset} overruns its container")
        yield tag, offset, stop
        offset = stop


def _encode(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content


def decode_oid(content: bytes) -> str:
    """The dotted form of an OBJECT IDENTIFIER's content octets."""
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise ValueError("empty OBJECT IDENTIFIER")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def split_extensions(der: bytes) -> tuple[tuple[str, bytes], ...]:
    """Each extension of a certificate as (dotted OID, one-extension certificate DER).

    Args:
        der: A certificate whose outer structure is sound.

    Returns:
        For each extension in order, its OID and a copy of the certificate that holds
        only that extension (its signature no longer matches; it is for parsing only).

    Raises:
        ValueError: The certificate's outer structure cannot be walked.
    """
    tag, header, length = _read_header(der, 0)
    if tag != _TAG_SEQUENCE:
        raise ValueError("certificate is not a SEQUENCE")
    parts = list(_children(der, header, header + length))
    if len(parts) != 3:
        raise ValueError("certificate does not have three parts")
    _, tbs_start, tbs_end = parts[0]
    _, tbs_header, _ = _read_header(der, tbs_start)
    tbs_fields = list(_children(der, tbs_start + tbs_header, tbs_end))
    found = [f for f in tbs_fields if f[0] == _TAG_EXTENSIONS]
    if not found:
        return ()
    _, ext_start, ext_end = found[0]
    _, ext_header, _ = _read_header(der, ext_start)
    _, seq_start, seq_end = next(_children(der, ext_start + ext_header, ext_end))
    _, seq_header, _ = _read_header(der, seq_start)
    before = b"".join(der[s:e] for t, s, e in tbs_fields if t != _TAG_EXTENSIONS)
    tail = der[parts[1][1] : parts[2][2]]
    result: list[tuple[str, bytes]] = []
    for _, start, stop in _children(der, seq_start + seq_header, seq_end):
        extension = der[start:stop]
        _, inner_header, _ = _read_header(extension, 0)
        oid_tag, oid_start, oid_stop = next(_children(extension, inner_header, len(extension)))
        if oid_tag != 0x06:
            raise ValueError("extension does not start with an OBJECT IDENTIFIER")
        _, oid_header, _ = _read_header(extension, oid_start)
        oid = decode_oid(extension[oid_start + oid_header : oid_stop])
        single = _encode(_TAG_EXTENSIONS, _encode(_TAG_SEQUENCE, extension))
        tbs = _encode(_TAG_SEQUENCE, before + single)
        result.append((oid, _encode(_TAG_SEQUENCE, tbs + tail)))
    return tuple(result)


def tbs_names(der: bytes) -> tuple[bytes, bytes]:
    """The DER of a certificate's issuer and subject names, without parsing them.

    Args:
        der: A certificate whose outer structure is sound.

    Returns:
        (issuer DER, subject DER), each a complete Name SEQUENCE.

    Raises:
        ValueError: The structure cannot be walked.
    """
    tag, header, length = _read_header(der, 0)
    if tag != _TAG_SEQUENCE:
        raise ValueError("certificate is not a SEQUENCE")
    _, tbs_start, tbs_end = next(_children(der, header, header + length))
    _, tbs_header, _ = _read_header(der, tbs_start)
    fields: list[tuple[int, int]] = []
    for field_tag, start, stop in _children(der, tbs_start + tbs_header, tbs_end):
        if not fields and field_tag == 0xA0:
            continue  # [0] version
        fields.append((start, stop))
        if len(fields) == 5:  # serial, signature, issuer, validity, subject
            break
    if len(fields) != 5:
        raise ValueError("TBSCertificate is too short")
    return der[fields[2][0] : fields[2][1]], der[fields[4][0] : fields[4][1]]
