"""Does a certificate cover a name? RFC 6125 matching with the browsers' strictness.

- A wildcard is honoured only as the whole left-most label (``*.example.com``); it
  stands for exactly one non-empty label, never for none and never for two.
- Partial-label wildcards (``w*.example.com``, ``*w.example.com``) and wildcards over a
  single remaining label (``*.com``) never match.
- Internationalised names are compared as A-labels: a U-label name (``bücher.de``) is
  converted with IDNA 2008 (UTS #46 mapping) first.
- IP addresses match only IP SANs (v4 and v6, compared as addresses), never DNS SANs.
- The subject CN is consulted only when the certificate has no DNS or IP SAN at all;
  such a match is reported as legacy, since current browsers ignore the CN.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum

import idna

from certvigil.analysis.bounded import make_room
from certvigil.analysis.certificate import kept_certificates
from certvigil.analysis.model import CertificateFacts
from certvigil.targets.ipaddr import ip_or_none

__all__ = ["HostnameMatch", "MatchedBy", "match_hostname", "normalise_name"]


class MatchedBy(StrEnum):
    """Which presented identifier matched."""

    SAN_DNS = "san_dns"
    SAN_IP = "san_ip"
    LEGACY_CN = "legacy_cn"


@dataclass(frozen=True, slots=True, kw_only=True)
class HostnameMatch:
    """The outcome of matching a name against a certificate.

    Attributes:
        name: The name as given.
        reference: The name as compared: lower-case A-labels without a trailing dot,
            or the canonical IP address text.
        matches: The certificate covers the name.
        matched_by: Which identifier matched; ``None`` when none did.
        matched_identifier: The SAN or CN value that matched; ``None`` when none did.
    """

    name: str
    reference: str
    matches: bool
    matched_by: MatchedBy | None = None
    matched_identifier: str | None = None


def normalise_name(name: str) -> str:
    """The comparable form of a DNS name or IP address.

    Args:
        name: A host name (U-labels allowed, any case, optional trailing dot) or an IP
            address (IPv6 optionally in brackets).

    Returns:
        Lower-case A-label form without a trailing dot, or canonical IP address text.
    """
    text = name.strip()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    address = ip_or_none(bare)
    if address is not None:
        return str(address)
    text = text.rstrip(".").lower()
    if text.isascii():
        return text
    try:
        return idna.encode(text, uts46=True).decode("ascii")
    except idna.IDNAError:
        # Not a valid IDN: compare as given, it will simply match nothing.
        return text


def match_hostname(facts: CertificateFacts, name: str) -> HostnameMatch:
    """Whether ``facts`` (a leaf) covers ``name``.

    Args:
        facts: The certificate's facts.
        name: The host name or IP address the client asked for.

    Returns:
        The match result, naming the identifier that matched.
    """
    # Every report of an endpoint asks again with the same name and leaf: the answer
    # depends on nothing else, so it is kept by exactly those inputs, for as many
    # endpoints as certificates are kept (a fleet of one leaf each), at least _KEPT_MIN.
    key = (name, facts.san_dns, facts.san_ip, facts.subject_cn)
    found = _KEPT.get(key)
    if found is None:
        found = _match(*key)
        make_room(_KEPT, max(_KEPT_MIN, kept_certificates()))
        _KEPT[key] = found
    return found


_KEPT: dict[tuple[str, tuple[str, ...], tuple[str, ...], str | None], HostnameMatch] = {}
_KEPT_MIN = 4096


def _match(
    name: str, san_dns: tuple[str, ...], san_ip: tuple[str, ...], subject_cn: str | None
) -> HostnameMatch:
    reference = normalise_name(name)
    address = ip_or_none(reference)
    if address is not None:
        for san in san_ip:
            if ip_or_none(san) == address:
                return HostnameMatch(
                    name=name,
                    reference=reference,
                    matches=True,
                    matched_by=MatchedBy.SAN_IP,
                    matched_identifier=san,
                )
    else:
        for san in san_dns:
            if dns_pattern_matches(san, reference):
                return HostnameMatch(
                    name=name,
                    reference=reference,
                    matches=True,
                    matched_by=MatchedBy.SAN_DNS,
                    matched_identifier=san,
                )
    if not san_dns and not san_ip and subject_cn:
        if _cn_matches(subject_cn, reference, address):
            return HostnameMatch(
                name=name,
                reference=reference,
                matches=True,
                matched_by=MatchedBy.LEGACY_CN,
                matched_identifier=subject_cn,
            )
    return HostnameMatch(name=name, reference=reference, matches=False)


def _cn_matches(
    common_name: str, reference: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
) -> bool:
    if address is not None:
        return ip_or_none(common_name.strip()) == address
    return dns_pattern_matches(normalise_name(common_name), reference)


def dns_pattern_matches(pattern: str, reference: str) -> bool:
    """Whether a presented DNS identifier (maybe a wildcard) covers a reference name.

    Args:
        pattern: The SAN dNSName or CN, as encoded in the certificate.
        reference: The normalised name (see :func:`normalise_name`).

    Returns:
        ``True`` on an exact (case-insensitive) match or an allowed wildcard match.
    """
    pattern = pattern.rstrip(".").lower()
    if not pattern or not reference:
        return False
    if "*" not in pattern:
        return pattern == reference
    labels = pattern.split(".")
    if labels[0] != "*" or "*" in ".".join(labels[1:]):
        return False  # partial-label or non-left-most wildcard
    if len(labels) < 3:
        return False  # "*.com" or a lone "*": a wildcard over a whole TLD
    ref_labels = reference.split(".")
    if len(ref_labels) != len(labels) or not ref_labels[0]:
        return False
    return ref_labels[1:] == labels[1:]
