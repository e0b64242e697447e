"""CertStream messages: read them (as hostile input) and write them (for ``ct feed``).

CertStream servers (CaliDog's certstream-server, certstream-server-go) push JSON
messages over a WebSocket: ``certificate_update`` (``data`` holds ``update_type``,
``cert_index``, ``cert_link``, ``seen``, ``source`` and ``leaf_cert``; the full stream
adds ``leaf_cert.as_der`` and ``chain``), ``dns_entries`` (``/domains-only``: ``data`` is
a list of names) and ``heartbeat``. Nothing in them is authenticated and servers drop
messages for slow clients, so a message is a hint to check against the logs, never a
finding by itself.

``parse_certstream_message`` reads one message within bounds (size, names) and raises
``CertstreamMessageError`` naming the field at fault. ``FeedEntry`` is what certvigil
publishes for one log entry, and ``certstream_messages`` writes the three forms of it
(lite, full, domains-only) the way certstream-server-go does, so existing consumers
(CertStreamMonitor, phishing_catcher) read certvigil's feed unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from certvigil.ct.entry import EntryType, LogEntry
from certvigil.ct.errors import CtError
from certvigil.ct.names import CertNames, entry_names, normalize_name

#: Bytes one message may have: a full-stream message with a long chain is about 10 KB.
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_NAMES = 2_000
MAX_CHAIN = 16
_MAX_TEXT = 2_048


class CertstreamMessageError(CtError):
    """A CertStream message that cannot be read.

    Attributes:
        field: The field at fault (``data.leaf_cert.all_domains``), or ``""``.
        reason: What is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"certstream message: {field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CertstreamUpdate:
    """A ``certificate_update`` message.

    Attributes:
        is_precert: ``PrecertLogEntry`` (else ``X509LogEntry``).
        log_name: ``source.name`` (hostile text: escape it).
        log_url: ``source.url``.
        cert_index: The entry's index in that log.
        seen_utc: When the server saw it (``seen``), or ``None``.
        names: ``leaf_cert.all_domains``, normalised (names that are not host names go
            to ``unparsed``).
        subject: ``leaf_cert.subject.aggregated`` (``""`` if absent).
        issuer: ``leaf_cert.issuer.aggregated`` (certstream-server-go) or ``""``.
        serial_hex: ``leaf_cert.serial_number``, lower case, or ``""``.
        not_before_utc: Start of validity, or ``None``.
        not_after_utc: End of validity, or ``None``.
        sha1_hex: The SHA-1 fingerprint, lower-case hex without colons, or ``""``.
        der: ``leaf_cert.as_der`` decoded (full stream), or ``None`` when absent or not
            base64.
    """

    is_precert: bool
    log_name: str
    log_url: str
    cert_index: int
    seen_utc: datetime | None
    names: CertNames
    subject: str
    issuer: str
    serial_hex: str
    not_before_utc: datetime | None
    not_after_utc: datetime | None
    sha1_hex: str
    der: bytes | None


@dataclass(frozen=True, slots=True)
class CertstreamDomains:
    """A ``dns_entries`` message (``/domains-only``): just names.

    Attributes:
        names: The names, normalised (and the rest in ``unparsed``).
    """

    names: CertNames


@dataclass(frozen=True, slots=True)
class CertstreamHeartbeat:
    """A ``heartbeat`` message (or another kind a client ignores).

    Attributes:
        message_type: The message's type as given (cut to 40 characters).
    """

    message_type: str


CertstreamMessage = CertstreamUpdate | CertstreamDomains | CertstreamHeartbeat


def _get(obj: object, key: str, where: str) -> object:
    if not isinstance(obj, dict):
        raise CertstreamMessageError(where, "not an object")
    return obj.get(key)


def _text(value: object, where: str, *, optional: bool = True) -> str:
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise CertstreamMessageError(where, "not a string")
    return "".join(c if c.isprintable() else "\ufffd" for c in value[:_MAX_TEXT])


def _number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CertstreamMessageError(where, "not a number")
    if not 0 <= value < 1e11:  # seconds since 1970, before the year 5138
        raise CertstreamMessageError(where, "not a time in seconds since 1970")
    return float(value)


def _time(value: object, where: str) -> datetime | None:
    seconds = _number(value, where)
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _names(values: object, where: str) -> CertNames:
    if values is None:
        return CertNames((), (), ())
    if not isinstance(values, list):
        raise CertstreamMessageError(where, "not a list")
    if len(values) > MAX_NAMES:
        raise CertstreamMessageError(where, f"more than {MAX_NAMES} names")
    names: dict[str, None] = {}
    unparsed: dict[str, None] = {}
    for position, value in enumerate(values):
        text = _text(value, f"{where}[{position}]", optional=False)
        name = normalize_name(text)
        if name is None:
            unparsed[text[:300]] = None
        else:
            names[name] = None
    return CertNames(tuple(names), (), tuple(unparsed))


def _update(data: object) -> CertstreamUpdate:
    update_type = _text(_get(data, "update_type", "data"), "data.update_type")
    if update_type not in ("X509LogEntry", "PrecertLogEntry"):
        raise CertstreamMessageError("data.update_type", "neither X509LogEntry nor PrecertLogEntry")
    index = _get(data, "cert_index", "data")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 2**63:
        raise CertstreamMessageError("data.cert_index", "not an entry index")
    source = _get(data, "source", "data")
    leaf = _get(data, "leaf_cert", "data")
    if not isinstance(leaf, dict):
        raise CertstreamMessageError("data.leaf_cert", "not an object")
    subject = leaf.get("subject")
    issuer = leaf.get("issuer")
    serial = _text(leaf.get("serial_number"), "data.leaf_cert.serial_number").lower()
    if serial and any(c not in "0123456789abcdef" for c in serial):
        raise CertstreamMessageError("data.leaf_cert.serial_number", "not hex")
    sha1 = _text(leaf.get("fingerprint"), "data.leaf_cert.fingerprint").replace(":", "").lower()
    der: bytes | None = None
    as_der = leaf.get("as_der")
    if isinstance(as_der, str) and len(as_der) < MAX_MESSAGE_BYTES:
        try:
            der = base64.b64decode(as_der, validate=True) or None
        except (binascii.Error, ValueError):
            der = None  # the documented example carries a placeholder here
    return CertstreamUpdate(
        is_precert=update_type == "PrecertLogEntry",
        log_name=_text(_get(source, "name", "data.source"), "data.source.name")
        if source is not None
        else "",
        log_url=_text(_get(source, "url", "data.source"), "data.source.url")
        if source is not None
        else "",
        cert_index=index,
        seen_utc=_time(_get(data, "seen", "data"), "data.seen"),
        names=_names(leaf.get("all_domains"), "data.leaf_cert.all_domains"),
        subject=_text(_get(subject, "aggregated", "data.leaf_cert.subject"), "subject")
        if subject is not None
        else "",
        issuer=_text(_get(issuer, "aggregated", "data.leaf_cert.issuer"), "issuer")
        if issuer is not None
        else "",
        serial_hex=serial,
        not_before_utc=_time(leaf.get("not_before"), "data.leaf_cert.not_before"),
        not_after_utc=_time(leaf.get("not_after"), "data.leaf_cert.not_after"),
        sha1_hex=sha1 if all(c in "0123456789abcdef" for c in sha1) else "",
        der=der,
    )


def parse_certstream_message(message: str | bytes) -> CertstreamMessage:
    """Read one CertStream message.

    Raises:
        CertstreamMessageError: The message is too big, not JSON, or a field the kind
            needs is missing or of the wrong type (named in the error).
    """
    if len(message) > MAX_MESSAGE_BYTES:
        raise CertstreamMessageError("", f"message longer than {MAX_MESSAGE_BYTES} bytes")
    try:
        document = json.loads(message)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CertstreamMessageError("", "not JSON") from None
    kind = _text(_get(document, "message_type", "message"), "message_type")
    data = _get(document, "data", "message")
    if kind == "certificate_update":
        return _update(data)
    if kind == "dns_entries":
        return CertstreamDomains(_names(data, "data"))
    return CertstreamHeartbeat(kind[:40])


# -- Writing: what ``certvigil ct feed`` publishes ---------------------------------------


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One log entry, as the feed publishes it.

    Attributes:
        log_name: The log's description.
        log_url: The log's base URL.
        index: The entry's index in the log.
        is_precert: A precertificate entry.
        seen_utc: When certvigil read it.
        certificate: The certificate's DER (an x509 entry) or the precertificate's (a
            precert entry), or ``None`` when the log gave neither.
        chain: The chain's DER certificates, issuer first (may be empty).
        names: The entry's names (from the TBS).
    """

    log_name: str
    log_url: str
    index: int
    is_precert: bool
    seen_utc: datetime
    certificate: bytes | None
    chain: tuple[bytes, ...]
    names: CertNames


def feed_entry(
    entry: LogEntry,
    *,
    log_name: str,
    log_url: str,
    seen_utc: datetime,
    chain: Sequence[bytes] | None = None,
) -> FeedEntry:
    """The feed's view of a parsed log entry.

    Args:
        entry: The entry.
        log_name: The log's description.
        log_url: The log's base URL.
        seen_utc: When it was read.
        chain: The chain, when the entry carries fingerprints only (static logs).

    Raises:
        MalformedEntryError: The entry's names cannot be read.
    """
    is_precert = entry.entry.entry_type is EntryType.PRECERT
    certificate = entry.precertificate if is_precert else entry.entry.certificate
    return FeedEntry(
        log_name=log_name,
        log_url=log_url,
        index=entry.index,
        is_precert=is_precert,
        seen_utc=seen_utc,
        certificate=certificate,
        chain=tuple(entry.chain if chain is None else chain),
        names=entry_names(entry),
    )


@dataclass(frozen=True, slots=True)
class FeedMessages:
    """The three serialised forms of one entry.

    Attributes:
        lite: For ``/`` (no ``as_der``, no ``chain``).
        full: For ``/full-stream``.
        domains: For ``/domains-only``.
    """

    lite: str
    full: str
    domains: str


_NAME_FIELDS = (
    ("C", NameOID.COUNTRY_NAME),
    ("ST", NameOID.STATE_OR_PROVINCE_NAME),
    ("L", NameOID.LOCALITY_NAME),
    ("O", NameOID.ORGANIZATION_NAME),
    ("OU", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("CN", NameOID.COMMON_NAME),
)


def _name(name: x509.Name) -> dict[str, str | None]:
    fields: dict[str, str | None] = {}
    aggregated = ""
    for key, oid in _NAME_FIELDS:
        values = [str(a.value) for a in name.get_attributes_for_oid(oid)]
        fields[key] = values[0] if values else None
        for value in values:
            aggregated += f"/{key}={value}"
    emails = [str(a.value) for a in name.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]
    fields["email_address"] = emails[0] if emails else None
    fields["aggregated"] = aggregated
    return fields


def _colon_hex(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)


def _extensions(certificate: x509.Certificate) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        extensions = certificate.extensions
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        return found
    for extension in extensions:
        value = extension.value
        if isinstance(value, x509.SubjectAlternativeName):
            found["subjectAltName"] = ", ".join(
                f"DNS:{n}" for n in value.get_values_for_type(x509.DNSName)
            )
        elif isinstance(value, x509.BasicConstraints):
            found["basicConstraints"] = "CA:TRUE" if value.ca else "CA:FALSE"
        elif isinstance(value, x509.SubjectKeyIdentifier):
            found["subjectKeyIdentifier"] = "keyid:" + value.digest.hex(":")
        elif isinstance(value, x509.AuthorityKeyIdentifier) and value.key_identifier:
            found["authorityKeyIdentifier"] = "keyid:" + value.key_identifier.hex(":")
    return found


def _serial_hex(serial: int) -> str:
    if serial >= 0:
        return f"{serial:X}"
    # A negative serial (against RFC 5280, but logged) as its two's-complement bytes.
    size = (serial.bit_length() + 8) // 8
    return f"{serial % (1 << (8 * size)):X}"


def _cert_fields(der: bytes, *, with_der: bool) -> dict[str, object] | None:
    try:
        # Logs hold certificates cryptography frowns on (a zero serial in an old root of
        # a real chain): the feed repeats what the log holds, so the warning is moot.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            certificate = x509.load_der_x509_certificate(der)
            fields: dict[str, object] = {
                "subject": _name(certificate.subject),
                "issuer": _name(certificate.issuer),
                "extensions": _extensions(certificate),
                "not_before": int(certificate.not_valid_before_utc.timestamp()),
                "not_after": int(certificate.not_valid_after_utc.timestamp()),
                "serial_number": _serial_hex(certificate.serial_number),
            }
    except ValueError:
        return None
    sha1 = hashlib.sha1(der, usedforsecurity=False).digest()
    fields["fingerprint"] = _colon_hex(sha1)
    fields["sha1"] = _colon_hex(sha1)
    fields["sha256"] = _colon_hex(hashlib.sha256(der).digest())
    basic = fields["extensions"]
    fields["is_ca"] = isinstance(basic, dict) and basic.get("basicConstraints") == "CA:TRUE"
    if with_der:
        fields["as_der"] = base64.b64encode(der).decode("ascii")
    return fields


def certstream_messages(entry: FeedEntry) -> FeedMessages:
    """The lite, full and domains-only messages for one entry (JSON text)."""
    names = list(entry.names.dns_names) + list(entry.names.ip_addresses)
    base: dict[str, object] = {
        "update_type": "PrecertLogEntry" if entry.is_precert else "X509LogEntry",
        "cert_index": entry.index,
        "cert_link": (
            f"{entry.log_url}ct/v1/get-entries?start={entry.index}&end={entry.index}"
            if entry.log_url.endswith("/")
            else entry.log_url
        ),
        "seen": round(entry.seen_utc.timestamp(), 3),
        "source": {"name": entry.log_name, "url": entry.log_url},
    }
    leaf: dict[str, object] = {"all_domains": names}
    full_leaf = dict(leaf)
    if entry.certificate is not None:
        lite_fields = _cert_fields(entry.certificate, with_der=False)
        full_fields = _cert_fields(entry.certificate, with_der=True)
        if lite_fields is not None and full_fields is not None:
            leaf.update(lite_fields)
            full_leaf.update(full_fields)
    chain = []
    for der in entry.chain[:MAX_CHAIN]:
        fields = _cert_fields(der, with_der=True)
        if fields is not None:
            chain.append(fields)
    lite = {"message_type": "certificate_update", "data": {**base, "leaf_cert": leaf}}
    full = {
        "message_type": "certificate_update",
        "data": {**base, "leaf_cert": full_leaf, "chain": chain},
    }
    domains = {"message_type": "dns_entries", "data": names}
    return FeedMessages(
        json.dumps(lite, ensure_ascii=False),
        json.dumps(full, ensure_ascii=False),
        json.dumps(domains, ensure_ascii=False),
    )


def heartbeat_message(now_utc: datetime) -> str:
    """A heartbeat message (what certstream-server-go sends every 30 s)."""
    return json.dumps({"message_type": "heartbeat", "timestamp": int(now_utc.timestamp())})
