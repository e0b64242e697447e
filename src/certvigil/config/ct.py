"""The ``ct:`` section of a configuration: which logs to read, which domains to watch, alerts.

Validated like the rest of the file (``certvigil.config.model``): unknown keys are
refused with a suggestion, durations take the human forms (``"7d"``, ``"1h30m"``), and
every mistake names its place.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from certvigil.config.units import DurationS
from certvigil.ct.names import normalize_name

_MAX_TEXT = 4096
_MAX_KEY_B64 = 8192
MAX_WATCHED_DOMAINS = 100_000
"""The most domains one ``ct:`` section may watch."""


def _check_text(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    if len(text) > _MAX_TEXT:
        raise ValueError(f"more than {_MAX_TEXT} characters")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text):
        raise ValueError("must not contain control characters")
    return text


CtText = Annotated[str, AfterValidator(_check_text)]


def _check_domain(text: str) -> str:
    name = normalize_name(text)
    if name is None:
        raise ValueError(f'"{text}": not a domain name')
    if name.startswith("*"):
        raise ValueError(f'"{text}": a watched domain covers its subdomains; drop the "*."')
    if "." not in name:
        raise ValueError(f'"{text}": a top-level domain alone would watch a whole TLD')
    return name


def _check_name(text: str) -> str:
    name = normalize_name(text)
    if name is None:
        raise ValueError(f'"{text}": not a host name')
    return name


DomainName = Annotated[str, AfterValidator(_check_domain)]
"""A watched domain: normalised (lower case, A-labels, no trailing dot), not a wildcard."""
HostName = Annotated[str, AfterValidator(_check_name)]
"""A certificate name, normalised; a wildcard (``*.example.com``) is allowed."""


def _check_url(url: str) -> str:
    _check_text(url)
    if not url.startswith(("https://", "http://")):
        raise ValueError(f'"{url}": a log URL starts with https:// (or http://)')
    return url if url.endswith("/") else url + "/"


LogUrl = Annotated[str, AfterValidator(_check_url)]


def _check_key(text: str) -> str:
    if len(text) > _MAX_KEY_B64:
        raise ValueError(f"a key of more than {_MAX_KEY_B64} characters")
    try:
        der = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64 (the log list's DER SubjectPublicKeyInfo)") from None
    if not der or der[0] != 0x30:
        raise ValueError("not a DER SubjectPublicKeyInfo")
    return text.strip()


LogKey = Annotated[str, AfterValidator(_check_key)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class CtDomain(_Model):
    """One watched domain.

    Attributes:
        name: The domain; it covers the name and every name below it.
        authorized_cas: The CAs allowed to issue for it: an issuer's commonName, its
            RFC 4514 distinguished name, or the SHA-256 (hex) of its public key. Added to
            what ``certvigil ct baseline`` and ``ct authorize-ca`` stored.
        known_names: Names that are not new (no ``new_subdomain`` alert for them).
        scan_new_names: Add a new name found in CT to the scan targets in the store
            (port 443); off unless asked for.
    """

    name: DomainName
    authorized_cas: tuple[CtText, ...] = ()
    known_names: tuple[HostName, ...] = ()
    scan_new_names: bool = False


class CtKeywords(_Model):
    """Keyword rules for look-alike names (CertStreamMonitor's SearchKeywords et al.).

    Attributes:
        search: Words whose presence in a name counts towards a match.
        threshold: How many of them a name must hold to match (``DetectionThreshold``).
        blacklist: Names (and their subdomains) never reported (``BlacklistKeywords``).
    """

    search: tuple[CtText, ...] = ()
    threshold: int = Field(default=2, ge=1, le=100)
    blacklist: tuple[CtText, ...] = ()


class CtLogSettings(_Model):
    """A log configured directly (not from the log list).

    Attributes:
        description: A name for messages; defaults to the URL.
        url: An RFC 6962 log's base URL.
        monitoring_url: A static-ct-api log's monitoring prefix.
        submission_url: Its submission prefix (the checkpoint's origin); defaults to the
            monitoring prefix.
        key: The log's public key: base64 DER SubjectPublicKeyInfo, as in the log list.
        qps: Most requests per second to this log.
    """

    description: CtText | None = None
    url: LogUrl | None = None
    monitoring_url: LogUrl | None = None
    submission_url: LogUrl | None = None
    key: LogKey
    qps: float | None = Field(default=None, gt=0, le=10_000)

    @model_validator(mode="after")
    def _one_protocol(self) -> CtLogSettings:
        if (self.url is None) == (self.monitoring_url is None):
            raise ValueError("give url (RFC 6962) or monitoring_url (static-ct-api), not both")
        if self.submission_url is not None and self.monitoring_url is None:
            raise ValueError("submission_url belongs to a static log (with monitoring_url)")
        return self


class CtLiveness(_Model):
    """Re-checking whether the names found in CT are live (seed 003's scanhost), with their AS.

    Attributes:
        enabled: Re-check during ``ct watch`` (``ct findings --live`` checks on request
            either way).
        recheck_every: Time between two checks of the same name.
        until: How long after a finding its names are re-checked.
        port: The HTTPS port asked.
        deadline: One check's time, DNS and HTTPS included.
        max_names_per_pass: The most names checked after one pass over the logs (the
            longest unchecked first); the rest wait for the next pass.
        asn_dns: Ask Team Cymru's DNS service (``origin.asn.cymru.com``) for the AS of
            an address that ``asn_file`` does not cover.
        asn_file: An iptoasn.com TSV table (``ip2asn-combined.tsv``), read first.
    """

    enabled: bool = False
    recheck_every: DurationS = Field(default=3600.0, ge=60.0)
    until: DurationS = Field(default=7 * 86400.0, ge=60.0, le=366 * 86400.0)
    port: int = Field(default=443, ge=1, le=65535)
    deadline: DurationS = Field(default=10.0, gt=0, le=300.0)
    max_names_per_pass: int = Field(default=200, ge=1, le=100_000)
    asn_dns: bool = True
    asn_file: CtText | None = None

    @model_validator(mode="after")
    def _recheck_within(self) -> CtLiveness:
        if self.recheck_every > self.until:
            raise ValueError("recheck_every is longer than until: a name would be checked once")
        return self


class CtSettings(_Model):
    """What ``certvigil ct watch`` reads and watches.

    Attributes:
        log_list: A log list v3 file or URL; ``None`` uses the copy shipped with certvigil
            (refreshed by ``certvigil ct update-log-list``). ``""``-free: give ``logs``
            and ``use_log_list: false`` to read only configured logs.
        log_list_signature: The list's detached signature (file or URL), checked with
            ``log_list_key`` when both are given.
        log_list_key: A PEM file with the key that signs the list.
        use_log_list: Read the logs of the list (on by default).
        include_test_logs: Also read the list's test logs.
        logs: Logs configured directly, read in addition to the list's.
        domains: The watched domains.
        short_lived_under: A certificate valid for less than this is short-lived.
        expiring_within: A watched name's certificate expiring within this alerts.
        keywords: Keyword rules for look-alike names.
        caa: Read each watched domain's CAA records at the start of every pass: the CAs
            they let issue count as authorised (``unauthorized_ca``).
        dns_server: The DNS server for CAA lookups (``host`` or ``host:port``); the
            system's resolvers when not given.
        lookalikes: Look for names imitating the watched domains (dnstwist permutations
            and confusable characters); building the index takes about 10 ms per domain.
        behind_after: A log whose backlog is older than this raises ``ct_log_behind``.
        stalled_after: A log without a successful pass for this long raises
            ``ct_log_stalled``.
        poll_interval: Seconds between two passes over the logs (without ``--once``).
        commit_every: Entries per store transaction: the position and the findings of
            a batch are committed together.
        alert_files: A directory to write each CT alert to as a JSON file.
        new_names_file: A ``target_file`` to which new names of domains with
            ``scan_new_names`` are appended (name it in ``sources`` to scan them).
        liveness: Re-checks of the found names (DNS, HTTPS, title, AS).
    """

    log_list: CtText | None = None
    log_list_signature: CtText | None = None
    log_list_key: CtText | None = None
    use_log_list: bool = True
    include_test_logs: bool = False
    logs: tuple[CtLogSettings, ...] = ()
    domains: tuple[CtDomain, ...] = Field(default=(), max_length=MAX_WATCHED_DOMAINS)
    short_lived_under: DurationS = 86400.0
    expiring_within: DurationS = 7 * 86400.0
    keywords: CtKeywords = CtKeywords()
    lookalikes: bool = True
    caa: bool = True
    dns_server: CtText | None = None
    behind_after: DurationS = 3600.0
    stalled_after: DurationS = 3600.0
    poll_interval: DurationS = Field(default=60.0, ge=1.0)
    commit_every: int = Field(default=256, ge=1, le=100_000)
    alert_files: CtText | None = None
    new_names_file: CtText | None = None
    liveness: CtLiveness = CtLiveness()

    @model_validator(mode="after")
    def _dns_server_shape(self) -> CtSettings:
        if self.dns_server is not None:
            host, _, port = self.dns_server.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                if ":" in self.dns_server:
                    raise ValueError(f'dns_server "{self.dns_server}": write host or host:port')
        return self

    @model_validator(mode="after")
    def _domains_once(self) -> CtSettings:
        seen: set[str] = set()
        for domain in self.domains:
            if domain.name in seen:
                raise ValueError(f'domain "{domain.name}" is listed twice')
            seen.add(domain.name)
        if any(d.scan_new_names for d in self.domains) and self.new_names_file is None:
            raise ValueError("scan_new_names needs new_names_file: the target file to add to")
        if not self.use_log_list and not self.logs:
            raise ValueError("use_log_list is off and no logs are given: nothing to read")
        return self
