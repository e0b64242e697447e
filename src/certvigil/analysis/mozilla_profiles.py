"""Compliance with Mozilla's server-side TLS profiles (modern, intermediate, old).

The profiles are those of Mozilla's Server Side TLS guidelines, version 5.7
(https://ssl-config.mozilla.org/guidelines/5.7.json), written out here so that the
check is pure and reproducible.  Each failing point is reported on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from certvigil.analysis.grade import CertificateVerdicts
from certvigil.analysis.model import KeyType
from certvigil.analysis.tls_config import TlsConfigReport, accepted_tls_suites
from certvigil.observed.tls_config import TlsConfigObservation
from certvigil.tls.records import TlsProtocol

MOZILLA_GUIDELINES_VERSION = "5.7"
"""The version of Mozilla's Server Side TLS guidelines these profiles follow."""


class MozillaProfile(StrEnum):
    """Mozilla's three server-side configurations."""

    MODERN = "modern"
    INTERMEDIATE = "intermediate"
    OLD = "old"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Profile:
    protocols: frozenset[TlsProtocol]
    tls13_suites: frozenset[str]
    tls12_suites: frozenset[str]
    groups: frozenset[str]
    certificate_types: frozenset[KeyType]
    rsa_key_min_bits: int | None
    ecdsa_curves_bits: frozenset[int]
    dh_min_bits: int | None
    certificate_lifespan_days: int
    server_preference: bool
    hsts_min_age_s: int


_TLS13 = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)
_INTERMEDIATE_TLS12 = frozenset(
    {
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-CHACHA20-POLY1305",
    }
)
_OLD_TLS12 = _INTERMEDIATE_TLS12 | frozenset(
    {
        "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-RSA-AES128-SHA256",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA384",
        "ECDHE-RSA-AES256-SHA384",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA",
        "DHE-RSA-AES128-SHA256",
        "DHE-RSA-AES256-SHA256",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-SHA256",
        "AES256-SHA256",
        "AES128-SHA",
        "AES256-SHA",
        "DES-CBC3-SHA",
    }
)
_GROUPS = frozenset({"x25519", "secp256r1", "secp384r1"})

PROFILES: dict[MozillaProfile, _Profile] = {
    MozillaProfile.MODERN: _Profile(
        protocols=frozenset({TlsProtocol.TLS_1_3}),
        tls13_suites=_TLS13,
        tls12_suites=frozenset(),
        groups=_GROUPS,
        certificate_types=frozenset({KeyType.EC}),
        rsa_key_min_bits=None,
        ecdsa_curves_bits=frozenset({256}),
        dh_min_bits=None,
        certificate_lifespan_days=90,
        server_preference=False,
        hsts_min_age_s=63_072_000,
    ),
    MozillaProfile.INTERMEDIATE: _Profile(
        protocols=frozenset({TlsProtocol.TLS_1_2, TlsProtocol.TLS_1_3}),
        tls13_suites=_TLS13,
        tls12_suites=_INTERMEDIATE_TLS12,
        groups=_GROUPS,
        certificate_types=frozenset({KeyType.EC, KeyType.RSA}),
        rsa_key_min_bits=2048,
        ecdsa_curves_bits=frozenset({256}),
        dh_min_bits=2048,
        certificate_lifespan_days=366,
        server_preference=False,
        hsts_min_age_s=63_072_000,
    ),
    MozillaProfile.OLD: _Profile(
        protocols=frozenset(
            {TlsProtocol.TLS_1_0, TlsProtocol.TLS_1_1, TlsProtocol.TLS_1_2, TlsProtocol.TLS_1_3}
        ),
        tls13_suites=_TLS13,
        tls12_suites=_OLD_TLS12,
        groups=_GROUPS,
        certificate_types=frozenset({KeyType.RSA}),
        rsa_key_min_bits=2048,
        ecdsa_curves_bits=frozenset(),
        dh_min_bits=1024,
        certificate_lifespan_days=366,
        server_preference=True,
        hsts_min_age_s=63_072_000,
    ),
}
"""Each profile's requirements, from guidelines 5.7."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileCompliance:
    """Whether an endpoint meets one Mozilla profile, and each point where it does not.

    Attributes:
        profile: The profile checked.
        guidelines_version: The guidelines version (``"5.7"``).
        is_compliant: No point fails.
        failures: One sentence per failing point.
    """

    profile: MozillaProfile
    guidelines_version: str = MOZILLA_GUIDELINES_VERSION
    is_compliant: bool
    failures: tuple[str, ...] = ()


def check_mozilla_profile(
    profile: MozillaProfile,
    observation: TlsConfigObservation,
    config: TlsConfigReport,
    verdicts: CertificateVerdicts | None = None,
    *,
    certificate_lifespan_days: int | None = None,
) -> ProfileCompliance:
    """Check an endpoint against one profile.

    Args:
        profile: Which profile.
        observation: The protocol and cipher facts.
        config: Their judgement.
        verdicts: The leaf's key facts; certificate points are skipped when ``None``.
        certificate_lifespan_days: The leaf's validity period in days; skipped when
            ``None``.

    Returns:
        The compliance verdict listing every failing point.
    """
    spec = PROFILES[profile]
    failures: list[str] = []
    protocols = set(config.protocols)
    extra = sorted(protocols - spec.protocols)
    if extra:
        failures.append(f"must not accept {', '.join(extra)}")
    if TlsProtocol.TLS_1_3 in spec.protocols and spec.protocols <= {TlsProtocol.TLS_1_3}:
        if TlsProtocol.TLS_1_3 not in protocols:
            failures.append("must accept TLSv1.3")
    elif not protocols & spec.protocols:
        failures.append(f"must accept one of {', '.join(sorted(spec.protocols))}")
    allowed = spec.tls13_suites | spec.tls12_suites
    bad = sorted({s.openssl_name for s in accepted_tls_suites(observation)} - allowed)
    if bad:
        failures.append(f"must not accept the suites {', '.join(bad)}")
    groups = set(config.key_exchange_groups) - spec.groups
    if groups:
        failures.append(f"must not accept the groups {', '.join(sorted(groups))}")
    if config.dh_prime_bits is not None:
        if spec.dh_min_bits is None:
            failures.append("must not use finite-field DHE")
        elif config.dh_prime_bits < spec.dh_min_bits:
            failures.append(
                f"DH parameters must be at least {spec.dh_min_bits} bits, "
                f"not {config.dh_prime_bits}"
            )
    if spec.server_preference and config.server_enforces_order is False:
        failures.append("the server must enforce its own cipher order")
    if verdicts is not None and verdicts.key_type is not None:
        if verdicts.key_type not in spec.certificate_types:
            kinds = " or ".join(sorted(k.value.upper() for k in spec.certificate_types))
            failures.append(f"the certificate key must be {kinds}, not {verdicts.key_type.upper()}")
        elif (
            verdicts.key_type is KeyType.RSA
            and spec.rsa_key_min_bits is not None
            and (verdicts.key_bits or 0) < spec.rsa_key_min_bits
        ):
            failures.append(
                f"the RSA key must be at least {spec.rsa_key_min_bits} bits, "
                f"not {verdicts.key_bits}"
            )
        elif (
            verdicts.key_type is KeyType.EC
            and spec.ecdsa_curves_bits
            and verdicts.key_bits not in spec.ecdsa_curves_bits
        ):
            failures.append(f"the ECDSA key must be on P-256, not a {verdicts.key_bits}-bit curve")
    if (
        certificate_lifespan_days is not None
        and certificate_lifespan_days > spec.certificate_lifespan_days
    ):
        failures.append(
            f"the certificate lifespan must be at most {spec.certificate_lifespan_days} days, "
            f"not {certificate_lifespan_days}"
        )
    return ProfileCompliance(profile=profile, is_compliant=not failures, failures=tuple(failures))


def check_mozilla_profiles(
    observation: TlsConfigObservation,
    config: TlsConfigReport,
    verdicts: CertificateVerdicts | None = None,
    *,
    certificate_lifespan_days: int | None = None,
) -> tuple[ProfileCompliance, ...]:
    """Check an endpoint against modern, intermediate and old, in that order."""
    return tuple(
        check_mozilla_profile(
            p, observation, config, verdicts, certificate_lifespan_days=certificate_lifespan_days
        )
        for p in MozillaProfile
    )
