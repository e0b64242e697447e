"""What a matched CT entry means: its facts, and the alert kinds it raises (pure).

The watch (``certvigil.ct.watch``) calls :func:`certificate_facts` only for an entry
whose names matched the watch list (the issuer and chain are decoded then, not for every
entry), then :func:`judge` with the watch policy, the names known so far and ``now``.
Nothing here opens a socket, reads the database or the clock.

Kinds and severities:

* ``unauthorized_ca`` (critical): a watched domain has an authorised set (configured,
  from ``ct baseline`` or ``ct authorize-ca``) or CAA records, and the issuer is in
  none of the set's forms (commonName, RFC 4514 DN, SHA-256 of its public key) and is
  not a CA the CAA records let issue (``issue``, or ``issuewild`` for a wildcard; CAs
  named by identifiers ``ct.caa`` does not know cannot be told and raise nothing). A
  domain with neither is not judged, and ``ct baseline`` says so;
* ``new_subdomain`` (warning): a name under a watched domain that is not known yet (not
  configured, not in the inventory, not seen in CT before). A wildcard counts by its base;
* ``wildcard_certificate`` (info): a wildcard name under a watched domain;
* ``short_lived_certificate`` (info): valid for less than ``short_lived_under``;
* ``typosquat_detected`` (warning): a name imitates a watched domain by a dnstwist
  permutation (omission, transposition, replacement, bitsquatting, TLD swap…);
* ``lookalike_detected`` (warning): a name imitates one by confusable characters
  (homoglyphs, Cyrillic, UTS #39 skeleton), or holds enough search keywords
  (``ct.keywords``);
* ``certificate_expiring`` (warning): expires within ``expiring_within`` of ``now``
  (a certificate already expired when it is found, as in a backfill, raises nothing).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography import x509

from certvigil.analysis.model import Severity
from certvigil.ct.caa import CaaPolicy
from certvigil.ct.codec import DecodeError
from certvigil.ct.der import TbsFields, certificate_tbs, parse_tbs, read_tlv, subject_common_names
from certvigil.ct.entry import LogEntry
from certvigil.ct.keywords import KeywordResult
from certvigil.ct.lookalike import LookalikeMatch, Technique
from certvigil.ct.match import NameMatch
from certvigil.ct.names import CertNames, dedup_keys


class CtKind(StrEnum):
    """The alert kinds of the CT watch (the same strings as ``alerts.rules.AlertKind``)."""

    UNAUTHORIZED_CA = "unauthorized_ca"
    NEW_SUBDOMAIN = "new_subdomain"
    WILDCARD_CERTIFICATE = "wildcard_certificate"
    SHORT_LIVED_CERTIFICATE = "short_lived_certificate"
    CERTIFICATE_EXPIRING = "certificate_expiring"
    TYPOSQUAT_DETECTED = "typosquat_detected"
    LOOKALIKE_DETECTED = "lookalike_detected"
    CT_LOG_BEHIND = "ct_log_behind"
    CT_LOG_STALLED = "ct_log_stalled"
    CT_LOG_FAULT = "ct_log_fault"


@dataclass(frozen=True, slots=True, kw_only=True)
class CertFacts:
    """What the watch keeps of a matched certificate or precertificate.

    Attributes:
        sha256_hex: SHA-256 of the certificate's DER (of the precertificate for a
            precert entry; of its TBS when the log gave no precertificate).
        serial_hex: The serial number, hex.
        issuer: The issuer as an RFC 4514 DN (from the issuer's certificate when the
            chain holds it, else ``CN=…`` from the TBS).
        issuer_cn: The issuer's commonName, ``""`` when it has none.
        issuer_spki_sha256: SHA-256 (hex) of the issuer's public key, ``None`` unknown.
        names: The certificate's DNS names (normalised).
        not_before_utc: Start of validity, ``None`` when unreadable.
        not_after_utc: End of validity, ``None`` when unreadable.
        is_precert: Whether the entry is a precertificate.
        issuer_serial_key: Dedup key: SHA-256 of issuer Name and serial (hex).
        tbs_key: Dedup key: SHA-256 of the TBS without poison and SCT list (hex).
        renewal_key: SHA-256 of the issuer Name and the sorted names (hex): a renewal of
            the same names by the same CA shares it.
        logged_at_utc: The entry's timestamp (when the log accepted it).
    """

    sha256_hex: str
    serial_hex: str
    issuer: str
    issuer_cn: str
    issuer_spki_sha256: str | None
    names: tuple[str, ...]
    not_before_utc: datetime | None
    not_after_utc: datetime | None
    is_precert: bool
    issuer_serial_key: str
    tbs_key: str
    renewal_key: str
    logged_at_utc: datetime

    @property
    def issuer_identities(self) -> frozenset[str]:
        """The forms an authorised CA may be written in, normalised (see ``ca_identity``)."""
        forms = {ca_identity(self.issuer)}
        if self.issuer_cn:
            forms.add(ca_identity(self.issuer_cn))
        if self.issuer_spki_sha256:
            forms.add(self.issuer_spki_sha256)
        return frozenset(forms)


def ca_identity(text: str) -> str:
    """An authorised CA as compared: lower case, spaces around ``,`` and ``=`` removed.

    A 64-digit hex string is a public key hash and is kept as lower-case hex.
    """
    folded = text.strip().lower()
    if len(folded) == 64 and all(c in "0123456789abcdef" for c in folded):
        return folded
    parts = [p.strip() for p in folded.split(",")]
    return ",".join("=".join(s.strip() for s in p.split("=", 1)) for p in parts)


def parse_validity(validity: bytes) -> tuple[datetime, datetime]:
    """notBefore and notAfter of a Validity element (aware UTC).

    Raises:
        DecodeError: Not a SEQUENCE of two UTCTime/GeneralizedTime values.
    """
    tag, start, stop = read_tlv(validity, 0, len(validity))
    if tag != 0x30:
        raise DecodeError("Validity is not a SEQUENCE")
    times: list[datetime] = []
    position = start
    while position < stop and len(times) < 2:
        tag, content, end = read_tlv(validity, position, stop)
        times.append(_time(tag, validity[content:end]))
        position = end
    if len(times) != 2:
        raise DecodeError("Validity does not hold two times")
    return times[0], times[1]


def _time(tag: int, raw: bytes) -> datetime:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError("a validity time is not ASCII") from None
    if tag == 0x17 and len(text) == 13 and text.endswith("Z"):
        year = int(text[:2])
        text = ("19" if year >= 50 else "20") + text
    elif not (tag == 0x18 and len(text) == 15 and text.endswith("Z")):
        raise DecodeError(f"a validity time of tag 0x{tag:02x} is not in DER form")
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise DecodeError(f'"{text}" is not a time') from None


def certificate_facts(
    entry: LogEntry,
    tbs: bytes,
    fields: TbsFields,
    names: CertNames,
    issuer_der: bytes | None,
) -> CertFacts:
    """The facts of a matched entry.

    Args:
        entry: The entry.
        tbs: Its TBS (``names.parse_entry_tbs``).
        fields: The TBS's fields.
        names: Its names.
        issuer_der: The issuing CA's certificate, when the chain (or the issuer cache)
            holds it (``names.entry_issuer``).

    Raises:
        DecodeError: An extension is malformed (the dedup keys cannot be computed).
    """
    keys = dedup_keys(tbs, fields)
    if entry.is_precert:
        der = entry.precertificate or tbs
    else:
        der = entry.entry.certificate
    not_before: datetime | None
    not_after: datetime | None
    try:
        not_before, not_after = parse_validity(fields.validity)
    except DecodeError:
        not_before = not_after = None
    issuer_cns = subject_common_names(fields.issuer)
    issuer_cn = issuer_cns[0] if issuer_cns else ""
    issuer, spki = _issuer(issuer_der)
    if issuer is None:
        issuer = f"CN={issuer_cn}" if issuer_cn else "(issuer without a commonName)"
    if entry.entry.issuer_key_hash is not None:
        spki = entry.entry.issuer_key_hash.hex()
    renewal = hashlib.sha256(fields.issuer + "\n".join(sorted(names.dns_names)).encode())
    return CertFacts(
        sha256_hex=hashlib.sha256(der).hexdigest(),
        serial_hex=fields.serial.lstrip(b"\x00").hex() or "00",
        issuer=_printable(issuer),
        issuer_cn=_printable(issuer_cn),
        issuer_spki_sha256=spki,
        names=names.dns_names,
        not_before_utc=not_before,
        not_after_utc=not_after,
        is_precert=entry.is_precert,
        issuer_serial_key=keys.issuer_serial.hex(),
        tbs_key=keys.tbs.hex(),
        renewal_key=renewal.hexdigest(),
        logged_at_utc=datetime.fromtimestamp(entry.entry.timestamp / 1000, UTC),
    )


@functools.lru_cache(maxsize=1024)
def _issuer(issuer_der: bytes | None) -> tuple[str | None, str | None]:
    # A few hundred CAs issue everything: each issuer certificate is read once.
    if issuer_der is None:
        return None, None
    try:
        spki = hashlib.sha256(parse_tbs(certificate_tbs(issuer_der)).spki).hexdigest()
    except DecodeError:
        return None, None
    try:
        return x509.load_der_x509_certificate(issuer_der).subject.rfc4514_string(), spki
    except ValueError:
        return None, spki


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "\ufffd" for c in text[:1024])


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainPolicy:
    """How one watched domain is judged.

    Attributes:
        name: The watched domain.
        authorized: Its authorised CAs, each as ``ca_identity`` gives it; empty: the
            issuer is not judged.
        scan_new_names: New names are added to the scan targets.
        caa: The domain's CAA policy, when looked up (``None``: not looked up, or the
            lookup failed).
    """

    name: str
    authorized: frozenset[str] = frozenset()
    scan_new_names: bool = False
    caa: CaaPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchPolicy:
    """The thresholds and per-domain settings of the CT watch."""

    domains: Mapping[str, DomainPolicy] = field(default_factory=dict)
    short_lived_under: timedelta = timedelta(hours=24)
    expiring_within: timedelta = timedelta(days=7)


@dataclass(frozen=True, slots=True, kw_only=True)
class CtVerdict:
    """One alert a matched certificate raises.

    Attributes:
        kind: What it is about.
        severity: How much it matters.
        subject: What it concerns (a name, or the certificate's TBS key), for the alert's
            dedup key.
        title: A short human line.
        message: One or two sentences.
        stays_open: Open an alert that someone must resolve (``False``: a notice,
            recorded resolved and delivered).
    """

    kind: CtKind
    severity: Severity
    subject: str
    title: str
    message: str
    stays_open: bool


def new_names(matches: Iterable[NameMatch], known: Collection[str]) -> dict[str, str]:
    """The matched names not known yet (wildcards by their base), with their watched domain."""
    found: dict[str, str] = {}
    for match in matches:
        base = match.name[2:] if match.name.startswith("*.") else match.name
        if base == match.watched or base in known or base in found:
            continue
        if match.via_wildcard:
            continue  # *.example.com seen by a watch on a.example.com: not below it
        found[base] = match.watched
    return found


LOOKALIKE_TECHNIQUES = frozenset({Technique.HOMOGLYPH, Technique.CYRILLIC, Technique.CONFUSABLE})
"""Techniques that make a name *look* the same; the others are typing mistakes."""


def imitation_verdicts(
    facts: CertFacts,
    lookalikes: Iterable[LookalikeMatch],
    keyword_hits: Iterable[KeywordResult],
) -> list[CtVerdict]:
    """``typosquat_detected`` / ``lookalike_detected`` for a certificate's imitating names."""
    verdicts: list[CtVerdict] = []
    certificate = f"{'precertificate' if facts.is_precert else 'certificate'}"
    for found in lookalikes:
        looks = found.technique in LOOKALIKE_TECHNIQUES
        kind = CtKind.LOOKALIKE_DETECTED if looks else CtKind.TYPOSQUAT_DETECTED
        verdicts.append(
            CtVerdict(
                kind=kind,
                severity=Severity.WARNING,
                subject=f"{found.lookalike}:{facts.tbs_key}",
                title=f"CT: {found.lookalike} imitates {found.imitated}",
                message=f"A {certificate} for {found.name} was issued by {facts.issuer}: "
                f"{found.lookalike} imitates {found.imitated} ({found.technique.value}).",
                stays_open=True,
            )
        )
    for hit in keyword_hits:
        verdicts.append(
            CtVerdict(
                kind=CtKind.LOOKALIKE_DETECTED,
                severity=Severity.WARNING,
                subject=f"{hit.name}:{facts.tbs_key}",
                title=f"CT: {hit.name} holds watched keywords",
                message=f"A {certificate} for {hit.name} was issued by {facts.issuer}; "
                f"it holds the keywords {', '.join(hit.keywords)}.",
                stays_open=True,
            )
        )
    return verdicts


def judge(
    facts: CertFacts,
    matches: Iterable[NameMatch],
    *,
    policy: WatchPolicy,
    known_names: Collection[str],
    now: datetime,
    lookalikes: Iterable[LookalikeMatch] = (),
    keyword_hits: Iterable[KeywordResult] = (),
) -> tuple[CtVerdict, ...]:
    """The alerts a newly found certificate raises (see the module docstring).

    Args:
        facts: The certificate's facts.
        matches: Its names that fell under watched domains.
        policy: Thresholds and per-domain settings.
        known_names: Names not new (configured, in the inventory, seen in CT before).
        now: The evaluation time (aware UTC).
        lookalikes: Its names that imitate watched domains (``ct.lookalike``).
        keyword_hits: Its names that match the keyword rules (``ct.keywords``).

    Returns:
        One verdict per kind raised (and per new name for ``new_subdomain``).
    """
    matches = tuple(matches)
    verdicts: list[CtVerdict] = imitation_verdicts(facts, lookalikes, keyword_hits)
    shown = ", ".join(facts.names[:5]) + (" …" if len(facts.names) > 5 else "")
    certificate = f"{'precertificate' if facts.is_precert else 'certificate'} for {shown}"
    watched = sorted({m.watched for m in matches})
    identities = facts.issuer_identities
    for domain in watched:
        rule = policy.domains.get(domain)
        if rule is None or identities & rule.authorized:
            continue
        caa = rule.caa if rule.caa is not None and rule.caa.found_at is not None else None
        if caa is not None:
            wildcard = any(m.name.startswith("*.") for m in matches if m.watched == domain)
            allowed = caa.permits_issuer_organisation(
                issuer_organisation(facts.issuer), wildcard=wildcard
            )
            if allowed is not False:
                continue  # allowed, or named by CAs the table does not know
        elif not rule.authorized:
            continue
        verdicts.append(
            CtVerdict(
                kind=CtKind.UNAUTHORIZED_CA,
                severity=Severity.CRITICAL,
                subject=f"{domain}:{facts.tbs_key}",
                title=f"CT: {domain} certificate from an unauthorised CA",
                message=f"A {certificate} was issued by {facts.issuer}, which is not "
                f"among the CAs authorised for {domain}.",
                stays_open=True,
            )
        )
    for name, domain in new_names(matches, known_names).items():
        verdicts.append(
            CtVerdict(
                kind=CtKind.NEW_SUBDOMAIN,
                severity=Severity.WARNING,
                subject=name,
                title=f"CT: new name {name}",
                message=f"{name} (under {domain}) appears for the first time, in a "
                f"{certificate} issued by {facts.issuer}.",
                stays_open=False,
            )
        )
    wildcards = sorted({m.name for m in matches if m.name.startswith("*.")})
    if wildcards:
        verdicts.append(
            CtVerdict(
                kind=CtKind.WILDCARD_CERTIFICATE,
                severity=Severity.INFO,
                subject=facts.tbs_key,
                title=f"CT: wildcard certificate {wildcards[0]}",
                message=f"A {certificate} covers {', '.join(wildcards)}; issued by {facts.issuer}.",
                stays_open=False,
            )
        )
    if facts.not_before_utc is not None and facts.not_after_utc is not None:
        lifetime = facts.not_after_utc - facts.not_before_utc
        if lifetime < policy.short_lived_under:
            verdicts.append(
                CtVerdict(
                    kind=CtKind.SHORT_LIVED_CERTIFICATE,
                    severity=Severity.INFO,
                    subject=facts.tbs_key,
                    title=f"CT: short-lived certificate for {_first(facts)}",
                    message=f"A {certificate} is valid for {_span(lifetime)}, under "
                    f"{_span(policy.short_lived_under)}.",
                    stays_open=False,
                )
            )
    left = facts.not_after_utc - now if facts.not_after_utc is not None else None
    if left is not None and timedelta(0) < left <= policy.expiring_within:
        verdicts.append(
            CtVerdict(
                kind=CtKind.CERTIFICATE_EXPIRING,
                severity=Severity.WARNING,
                subject=facts.tbs_key,
                title=f"CT: certificate for {_first(facts)} expires in {_span(left)}",
                message=f"A {certificate} expires in {_span(left)} "
                f"({facts.not_after_utc.isoformat() if facts.not_after_utc else '?'}).",
                stays_open=True,
            )
        )
    return tuple(verdicts)


_ORGANISATION = re.compile(r"(?:^|,)O=((?:\\.|[^,])*)")


def issuer_organisation(issuer_dn: str) -> str:
    """The organizationName of an RFC 4514 DN (``""`` when it has none)."""
    found = _ORGANISATION.search(issuer_dn)
    return found.group(1).replace("\\", "") if found else ""


def _first(facts: CertFacts) -> str:
    return facts.names[0] if facts.names else "(no DNS name)"


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400 and seconds % 3600 == 0 and seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds} s"
