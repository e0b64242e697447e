"""The names a CT entry is for, and the keys that tell one issuance from another.

Names come from the TBSCertificate (read directly, so a precert entry, which holds only
its TBS, costs the same as a certificate): every dNSName of the subjectAltName and the
subject's commonName values that look like host names. Each is normalised the way the
watch list is: lower case, trailing dot removed, internationalised names as A-labels
(``xn--``), with the U-label form kept for display.

Dedup keys: a precertificate and its final certificate share their issuer and serial
number, and their TBS once the CT poison (precert) and SCT-list (final) extensions are
removed; the same certificate logged in several logs has the same keys too.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import idna

from certvigil.ct.codec import DecodeError
from certvigil.ct.der import (
    OID_SUBJECT_ALT_NAME,
    TbsFields,
    certificate_tbs,
    find_extension,
    parse_tbs,
    san_dns_names,
    subject_common_names,
    tbs_without_ct_extensions,
)
from certvigil.ct.entry import EntryType, LogEntry
from certvigil.ct.errors import MalformedEntryError

MAX_NAME_LENGTH = 253
_HOSTNAME = re.compile(
    r"(?:\*\.)?(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
)


def normalize_name(raw: str) -> str | None:
    """A host name as the watch compares it, or ``None`` when it is not a host name.

    Lower case, surrounding spaces and a trailing dot removed, Unicode labels turned into
    A-labels (IDNA 2008 with UTS #46 mapping); a leading ``*.`` is kept.
    """
    name = raw.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > MAX_NAME_LENGTH:
        return None
    if not name.isascii():
        name = _to_a_labels(name) or ""
    return name if _HOSTNAME.fullmatch(name) else None


@lru_cache(maxsize=4096)
def _to_a_labels(name: str) -> str | None:
    wildcard = name.startswith("*.")
    try:
        encoded = idna.encode(name[2:] if wildcard else name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    return "*." + encoded if wildcard else encoded


@lru_cache(maxsize=4096)
def to_unicode(name: str) -> str:
    """The U-label form of a normalised name (itself when no label is an A-label)."""
    if "xn--" not in name:
        return name
    labels = name.split(".")
    out = []
    for label in labels:
        if label.startswith("xn--"):
            try:
                label = idna.decode(label)
            except (idna.IDNAError, UnicodeError, ValueError):
                pass
        out.append(label)
    return ".".join(out)


class CertNames(NamedTuple):
    """What a certificate is for.

    A named tuple rather than a frozen dataclass: one is built per log entry, and a
    tuple is built several times faster; it is just as immutable.

    Attributes:
        dns_names: Normalised DNS names (A-labels), SANs first then commonNames, each once.
        ip_addresses: IP address SANs (and a commonName that is an address), as text.
        unparsed: Names that are not host names (a CN such as an organisation name, a
            dNSName that breaks the syntax), as given but with control characters replaced.
    """

    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    unparsed: tuple[str, ...]

    @property
    def unicode_names(self) -> tuple[str, ...]:
        """``dns_names`` with A-labels shown as Unicode (U-labels)."""
        return tuple(to_unicode(name) for name in self.dns_names)


@dataclass(frozen=True, slots=True)
class DedupKeys:
    """Keys equal for a precertificate and its final certificate, in any log.

    Attributes:
        issuer_serial: SHA-256 of the issuer Name DER and the serial number's bytes.
        tbs: SHA-256 of the TBS without the CT poison and SCT-list extensions.
    """

    issuer_serial: bytes
    tbs: bytes


def _ip_address(text: str) -> str | None:
    # A host name never ends in a digit (no top-level domain is numeric), an IPv4
    # address always does and an IPv6 one has a colon: only those are tried, since a
    # failed ip_address() costs more than the rest of an entry's names.
    if not text or not (text[-1].isdigit() or ":" in text):
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def entry_tbs(entry: LogEntry) -> bytes:
    """The entry's TBSCertificate (a precert entry's TBS, or the certificate's).

    Raises:
        MalformedEntryError: The certificate's outer structure is not DER.
    """
    if entry.entry.entry_type is EntryType.PRECERT:
        return entry.entry.certificate
    try:
        return certificate_tbs(entry.entry.certificate)
    except DecodeError as exc:
        raise MalformedEntryError(entry.index, f"certificate: {exc}") from None


def parse_entry_tbs(entry: LogEntry) -> tuple[bytes, TbsFields]:
    """The entry's TBS and its fields.

    Raises:
        MalformedEntryError: The TBS is not a well-formed TBSCertificate.
    """
    tbs = entry_tbs(entry)
    try:
        return tbs, parse_tbs(tbs)
    except DecodeError as exc:
        raise MalformedEntryError(entry.index, f"TBSCertificate: {exc}") from None


def names_from_tbs(tbs: bytes, fields: TbsFields) -> CertNames:
    """The names in a parsed TBS.

    Raises:
        DecodeError: The subjectAltName (or an extension before it) or the subject is
            malformed.
    """
    raw_dns: list[str] = []
    raw_ips: list[bytes] = []
    san = find_extension(tbs, fields, OID_SUBJECT_ALT_NAME)
    if san is not None:
        raw_dns, raw_ips = san_dns_names(san)
    ips: list[str] = [str(ipaddress.ip_address(raw)) for raw in raw_ips if len(raw) in (4, 16)]
    for common_name in subject_common_names(fields.subject):
        address = _ip_address(common_name.strip())
        if address is None:
            raw_dns.append(common_name)
        else:
            ips.append(address)
    seen: dict[str, None] = {}
    unparsed: list[str] = []
    for raw in raw_dns:
        if raw in seen:  # already normal (normalize_name is idempotent): a CN as a SAN
            continue
        name = normalize_name(raw)
        if name is None:
            unparsed.append("".join(c if c.isprintable() else "\ufffd" for c in raw[:300]))
        else:
            seen[name] = None
    return CertNames(tuple(seen), tuple(dict.fromkeys(ips)), tuple(unparsed))


def entry_names(entry: LogEntry) -> CertNames:
    """The names an entry's certificate or precertificate is for.

    Raises:
        MalformedEntryError: The TBS, its subjectAltName or its subject is malformed.
    """
    tbs, fields = parse_entry_tbs(entry)
    try:
        return names_from_tbs(tbs, fields)
    except DecodeError as exc:
        raise MalformedEntryError(entry.index, f"names: {exc}") from None


def dedup_keys(tbs: bytes, fields: TbsFields) -> DedupKeys:
    """The dedup keys of a parsed TBS (see the module docstring).

    Raises:
        DecodeError: An extension is malformed.
    """
    issuer_serial = hashlib.sha256(
        len(fields.issuer).to_bytes(4, "big") + fields.issuer + fields.serial
    ).digest()
    stripped = tbs_without_ct_extensions(tbs, fields)
    return DedupKeys(issuer_serial, hashlib.sha256(stripped).digest())


def entry_dedup_keys(entry: LogEntry) -> DedupKeys:
    """The dedup keys of an entry.

    Raises:
        MalformedEntryError: The TBS is not a well-formed TBSCertificate.
    """
    tbs, fields = parse_entry_tbs(entry)
    try:
        return dedup_keys(tbs, fields)
    except DecodeError as exc:
        raise MalformedEntryError(entry.index, f"extensions: {exc}") from None


def entry_issuer(entry: LogEntry, chain: Sequence[bytes] | None = None) -> bytes | None:
    """The DER certificate of the CA that issued the entry's certificate, if in the chain.

    For an x509 entry it is the first chain certificate. For a precert entry it is the
    chain certificate whose SubjectPublicKeyInfo hashes to ``issuer_key_hash``: the first
    one normally, the second when the first is a Precertificate Signing Certificate.

    Args:
        entry: The entry.
        chain: The chain to look in; by default the entry's own (RFC 6962 ``extra_data``).
            For a static log's entry, the issuers its fingerprints resolved to.

    Returns:
        The issuer's DER, or ``None`` when the chain does not hold it.
    """
    certificates = entry.chain if chain is None else chain
    if entry.entry.entry_type is EntryType.X509:
        return certificates[0] if certificates else None
    wanted = entry.entry.issuer_key_hash
    for der in certificates:
        try:
            spki = parse_tbs(certificate_tbs(der)).spki
        except DecodeError:
            continue
        if hashlib.sha256(spki).digest() == wanted:
            return der
    return None
