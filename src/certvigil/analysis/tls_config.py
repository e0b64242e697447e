"""Findings on an endpoint's protocols, cipher suites and TLS options, from the raw facts.

Finding codes are stable (they appear in JSON and alerts) and are listed, with their
sources, in docs/grading.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from certvigil.analysis.codes import FindingCode
from certvigil.analysis.model import Finding, Severity
from certvigil.observed.tls_config import TlsConfigObservation
from certvigil.tls.cipher_suites import CipherSuite, suite_for
from certvigil.tls.records import GROUP_BITS, GROUP_NAMES, SSL2_CIPHER_SPECS, TlsProtocol

HSTS_MIN_MAX_AGE_S = 15_552_000
"""180 days: the shortest HSTS max-age SSL Labs rewards with A+."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolSuites:
    """The suites one protocol version accepts, named.

    Attributes:
        protocol: The version.
        cipher_suites: IANA names (SSLv2 cipher-kind names for SSLv2), in the
            server's order when it enforces one.
        server_enforces_order: As probed; ``None`` when not decidable.
    """

    protocol: TlsProtocol
    cipher_suites: tuple[str, ...]
    server_enforces_order: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfigReport:
    """The judgement on an endpoint's TLS configuration.

    Attributes:
        protocols: Accepted protocols, oldest first.
        suites: Accepted suites per accepted protocol.
        server_enforces_order: The server picks the suite by its own order in every
            version where that could be decided; ``None`` when it never could.
        forward_secrecy: ``"all"``, ``"some"`` or ``"none"`` of the accepted
            TLS suites use an ephemeral key exchange.
        supports_aead: At least one accepted suite is AEAD.
        weakest_bits: The weakest accepted suite's symmetric strength (0 for NULL).
        strongest_bits: The strongest accepted suite's symmetric strength.
        key_exchange_groups: Group names accepted (TLS 1.3 and ECDHE), deduplicated.
        dh_prime_bits: The DHE prime size, ``None`` without DHE.
        weakest_group_bits: The smallest accepted group's size, as RSA-equivalent
            bits for EC groups; ``None`` without ephemeral key exchange.
        fallback_scsv: As observed.
        secure_renegotiation: As observed.
        compression: As observed.
        heartbleed: As observed.
        hsts_max_age_s: max-age of a valid HSTS header, ``None`` without one.
        findings: Everything found, most severe first.
    """

    protocols: tuple[TlsProtocol, ...]
    suites: tuple[ProtocolSuites, ...] = ()
    server_enforces_order: bool | None = None
    forward_secrecy: str = "none"
    supports_aead: bool = False
    weakest_bits: int = 0
    strongest_bits: int = 0
    key_exchange_groups: tuple[str, ...] = ()
    dh_prime_bits: int | None = None
    weakest_group_bits: int | None = None
    fallback_scsv: bool | None = None
    secure_renegotiation: bool | None = None
    compression: bool | None = None
    heartbleed: bool | None = None
    hsts_max_age_s: int | None = None
    findings: tuple[Finding, ...] = ()


_EC_RSA_EQUIVALENT = {160: 1024, 192: 1536, 224: 2048, 253: 3072, 256: 3072,
                      384: 7680, 448: 7680, 512: 15360, 521: 15360}  # fmt: skip
"""ECC key sizes to comparable RSA/DH sizes (NIST SP 800-57 Part 1, Table 2)."""


def group_rsa_equivalent_bits(group: int) -> int:
    """A named group's strength as a comparable RSA/DH modulus size.

    Args:
        group: IANA supported-groups code.

    Returns:
        The prime size for FFDHE groups, the SP 800-57 equivalent for EC groups, 0
        for an unknown group.
    """
    bits = GROUP_BITS.get(group, 0)
    if group >= 256:
        return bits
    for ec_bits in sorted(_EC_RSA_EQUIVALENT, reverse=True):
        if bits >= ec_bits:
            return _EC_RSA_EQUIVALENT[ec_bits]
    return bits


def parse_hsts_max_age(header: str | None) -> int | None:
    """The max-age directive of a Strict-Transport-Security value (RFC 6797 §6.1).

    Args:
        header: The header value, or ``None``.

    Returns:
        max-age in seconds, ``None`` when absent or malformed.
    """
    if header is None:
        return None
    for directive in header.split(";"):
        name, sep, value = directive.strip().partition("=")
        if sep and name.strip().lower() == "max-age":
            value = value.strip().strip('"')
            return int(value) if value.isdigit() else None
    return None


def accepted_tls_suites(observation: TlsConfigObservation) -> tuple[CipherSuite, ...]:
    """Every distinct suite accepted by SSLv3 to TLS 1.3 (SSLv2 kinds excluded)."""
    seen: dict[int, CipherSuite] = {}
    for support in observation.protocols:
        if support.is_accepted and support.protocol is not TlsProtocol.SSL_2_0:
            for code in support.cipher_suites:
                seen.setdefault(code, suite_for(code))
    return tuple(seen.values())


def _suite_names(protocol: TlsProtocol, codes: tuple[int, ...]) -> tuple[str, ...]:
    if protocol is TlsProtocol.SSL_2_0:
        return tuple(SSL2_CIPHER_SPECS.get(c, f"SSL2_0x{c:06X}") for c in codes)
    return tuple(suite_for(c).iana_name for c in codes)


_PROTOCOL_FINDINGS = {
    TlsProtocol.SSL_2_0: (
        FindingCode.PROTOCOL_SSLV2,
        Severity.CRITICAL,
        "SSLv2 is accepted (DROWN)",
    ),
    TlsProtocol.SSL_3_0: (
        FindingCode.PROTOCOL_SSLV3,
        Severity.CRITICAL,
        "SSLv3 is accepted (POODLE)",
    ),
    TlsProtocol.TLS_1_0: (
        FindingCode.PROTOCOL_TLS10,
        Severity.WARNING,
        "TLS 1.0 is accepted (RFC 8996)",
    ),
    TlsProtocol.TLS_1_1: (
        FindingCode.PROTOCOL_TLS11,
        Severity.WARNING,
        "TLS 1.1 is accepted (RFC 8996)",
    ),
}

_INSECURE_FINDINGS = {
    "null_cipher": (
        FindingCode.CIPHER_NULL,
        Severity.CRITICAL,
        "NULL (unencrypted) suites are accepted",
    ),
    "anonymous": (FindingCode.CIPHER_ANONYMOUS, Severity.CRITICAL, "anonymous suites are accepted"),
    "export": (FindingCode.CIPHER_EXPORT, Severity.CRITICAL, "EXPORT suites are accepted (FREAK)"),
    "rc4": (
        FindingCode.CIPHER_RC4,
        Severity.CRITICAL,
        "RC4 suites are accepted (RFC 7465 forbids them)",
    ),
    "rc2": (FindingCode.CIPHER_RC2, Severity.CRITICAL, "RC2 suites are accepted"),
    "des": (FindingCode.CIPHER_DES, Severity.CRITICAL, "single-DES suites are accepted"),
    "3des": (
        FindingCode.CIPHER_3DES,
        Severity.WARNING,
        "3DES suites are accepted (SWEET32, 64-bit blocks)",
    ),
    "md5_mac": (
        FindingCode.CIPHER_MD5_MAC,
        Severity.CRITICAL,
        "suites with an MD5 MAC are accepted",
    ),
}


def judge_tls_config(observation: TlsConfigObservation) -> TlsConfigReport:
    """Findings and summary facts for one endpoint's TLS configuration.

    Args:
        observation: What ``observe_tls_config`` found.

    Returns:
        The report; its findings are ordered most severe first.
    """
    findings: list[Finding] = []

    def add(code: str, severity: Severity, message: str) -> None:
        findings.append(Finding(code=code, severity=severity, message=message))

    protocols = observation.accepted_protocols
    for protocol in protocols:
        if protocol in _PROTOCOL_FINDINGS:
            code, severity, message = _PROTOCOL_FINDINGS[protocol]
            add(code, severity, message)
    if not {TlsProtocol.TLS_1_2, TlsProtocol.TLS_1_3} & set(protocols):
        add(
            FindingCode.NO_TLS12_OR_TLS13,
            Severity.CRITICAL,
            "neither TLS 1.2 nor TLS 1.3 is accepted",
        )
    elif TlsProtocol.TLS_1_3 not in protocols:
        add(FindingCode.NO_TLS13, Severity.INFO, "TLS 1.3 is not accepted")

    suites = accepted_tls_suites(observation)
    sslv2_kinds = observation.support(TlsProtocol.SSL_2_0).cipher_suites
    for reason, (code, severity, message) in _INSECURE_FINDINGS.items():
        names = [s.iana_name for s in suites if reason in s.insecure_reasons]
        if names:
            add(code, severity, f"{message}: {', '.join(names)}")
    fs_count = sum(1 for s in suites if s.has_forward_secrecy)
    forward_secrecy = (
        "all" if suites and fs_count == len(suites) else "some" if fs_count else "none"
    )
    if suites and forward_secrecy == "none":
        add(
            FindingCode.NO_FORWARD_SECRECY,
            Severity.WARNING,
            "no accepted suite has forward secrecy",
        )
    elif forward_secrecy == "some":
        plain = [s.iana_name for s in suites if not s.has_forward_secrecy]
        add(
            FindingCode.PARTIAL_FORWARD_SECRECY,
            Severity.INFO,
            f"suites without forward secrecy are accepted: {', '.join(plain)}",
        )
    supports_aead = any(s.is_aead for s in suites)
    if suites and not supports_aead:
        add(
            FindingCode.NO_AEAD,
            Severity.WARNING,
            "no accepted suite is AEAD (GCM, CCM, ChaCha20-Poly1305)",
        )
    cbc = [s.iana_name for s in suites if "cbc" in s.obsolete_reasons and not s.insecure_reasons]
    if cbc:
        add(
            FindingCode.CIPHER_CBC, Severity.INFO, f"CBC-mode suites are accepted: {', '.join(cbc)}"
        )
    sha1 = [
        s.iana_name for s in suites if "sha1_mac" in s.obsolete_reasons and not s.insecure_reasons
    ]
    if sha1:
        add(
            FindingCode.CIPHER_SHA1_MAC,
            Severity.INFO,
            f"suites with a SHA-1 MAC are accepted: {', '.join(sha1)}",
        )

    orders = [
        p.server_enforces_order
        for p in observation.protocols
        if p.is_accepted
        and p.protocol is not TlsProtocol.TLS_1_3
        and p.server_enforces_order is not None
    ]
    server_order = all(orders) if orders else None
    if server_order is False:
        add(
            FindingCode.NO_SERVER_CIPHER_ORDER,
            Severity.INFO,
            "the server follows the client's suite order in TLS 1.2 and below",
        )

    dh = observation.dh_prime_bits
    if dh is not None and dh < 1024:
        add(
            FindingCode.DH_PARAMS_INSECURE, Severity.CRITICAL, f"DHE uses a {dh}-bit prime (Logjam)"
        )
    elif dh is not None and dh < 2048:
        add(
            FindingCode.DH_PARAMS_WEAK,
            Severity.WARNING,
            f"DHE uses a {dh}-bit prime (below 2048 bits)",
        )
    group_codes = tuple(dict.fromkeys((*observation.tls13_groups, *observation.ecdh_groups)))
    weak_groups = [
        GROUP_NAMES.get(g, str(g)) for g in group_codes if group_rsa_equivalent_bits(g) < 2048
    ]
    if weak_groups:
        add(
            FindingCode.WEAK_KEY_EXCHANGE_GROUP,
            Severity.WARNING,
            f"weak key-exchange groups are accepted: {', '.join(weak_groups)}",
        )
    group_bits = [group_rsa_equivalent_bits(g) for g in group_codes]
    if dh is not None:
        group_bits.append(dh)

    if observation.fallback_scsv is False:
        add(
            FindingCode.NO_FALLBACK_SCSV,
            Severity.WARNING,
            "a downgraded hello with TLS_FALLBACK_SCSV is accepted (no RFC 7507 protection)",
        )
    if observation.secure_renegotiation is False:
        add(
            FindingCode.INSECURE_RENEGOTIATION,
            Severity.CRITICAL,
            "the server does not support secure renegotiation (RFC 5746, CVE-2009-3555)",
        )
    if observation.compression:
        add(FindingCode.TLS_COMPRESSION, Severity.CRITICAL, "TLS compression is accepted (CRIME)")
    if observation.heartbleed:
        add(
            FindingCode.HEARTBLEED,
            Severity.CRITICAL,
            "the server answers malformed heartbeat requests with its own memory "
            "(Heartbleed, CVE-2014-0160): keys and passwords may have leaked",
        )
    hsts_max_age = parse_hsts_max_age(observation.http.hsts_header) if observation.http else None
    if observation.http is not None and hsts_max_age is None:
        add(
            FindingCode.NO_HSTS,
            Severity.INFO,
            "the HTTPS answer carries no valid Strict-Transport-Security",
        )
    elif hsts_max_age is not None and hsts_max_age < HSTS_MIN_MAX_AGE_S:
        add(
            FindingCode.HSTS_SHORT_MAX_AGE,
            Severity.INFO,
            f"HSTS max-age is {hsts_max_age} s, below 180 days",
        )
    for error in observation.probe_errors:
        add(FindingCode.TLS_PROBE_ANOMALY, Severity.INFO, error)

    bits = [s.strength_bits for s in suites]
    if sslv2_kinds:
        bits.append(40 if any(k in (0x020080, 0x040080) for k in sslv2_kinds) else 56)
    findings.sort(key=lambda f: -f.severity.rank)
    return TlsConfigReport(
        protocols=protocols,
        suites=tuple(
            ProtocolSuites(
                protocol=p.protocol,
                cipher_suites=_suite_names(p.protocol, p.cipher_suites),
                server_enforces_order=p.server_enforces_order,
            )
            for p in observation.protocols
            if p.is_accepted
        ),
        server_enforces_order=server_order,
        forward_secrecy=forward_secrecy,
        supports_aead=supports_aead,
        weakest_bits=min(bits, default=0),
        strongest_bits=max(bits, default=0),
        key_exchange_groups=tuple(GROUP_NAMES.get(g, str(g)) for g in group_codes),
        dh_prime_bits=dh,
        weakest_group_bits=min(group_bits, default=None),
        fallback_scsv=observation.fallback_scsv,
        secure_renegotiation=observation.secure_renegotiation,
        compression=observation.compression,
        heartbleed=observation.heartbleed,
        hsts_max_age_s=hsts_max_age,
        findings=tuple(findings),
    )
