"""Which checks ``certvigil scan --checks`` selects, and what each one switches on."""

from __future__ import annotations

from dataclasses import dataclass

CHECK_NAMES: tuple[str, ...] = ("cert", "revocation", "protocols", "ciphers", "grade")
"""The names ``--checks`` accepts, in the order the help lists them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanChecks:
    """The optional parts of a scan a ``--checks`` list switches on.

    The certificate checks (expiry, chain, trust, hostname, key, signature) always run.

    Attributes:
        revocation: Check OCSP/CRL for the served chain and judge the staple
            (``revocation``, ``grade``).
        tls_config: Probe protocols, cipher suites, groups and TLS options and grade
            the endpoint (``protocols``, ``ciphers``, ``grade``). Protocols and suites
            are learnt from the same hand-built hellos (the suites a version accepts
            come from the probe that tests the version), so they run together.
    """

    revocation: bool = False
    tls_config: bool = False


ALL_CHECKS = ScanChecks(revocation=True, tls_config=True)
"""What ``--deep`` selects: every check."""


def parse_checks(text: str) -> ScanChecks:
    """The checks a comma-separated ``--checks`` value selects.

    ``grade`` implies ``protocols``, ``ciphers`` and ``revocation``: a revoked
    certificate grades F, as SSL Labs grades it.

    Args:
        text: E.g. ``"cert,revocation"``; spaces around names and empty items are
            ignored, names are case-insensitive.

    Returns:
        The selection.

    Raises:
        ValueError: A name is not one of :data:`CHECK_NAMES` (the message names it
            and the valid ones), or the list is empty.
    """
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(f"no check named; choose from {', '.join(CHECK_NAMES)}")
    unknown = [name for name in names if name not in CHECK_NAMES]
    if unknown:
        raise ValueError(f'unknown check "{unknown[0]}"; choose from {", ".join(CHECK_NAMES)}')
    chosen = set(names)
    return ScanChecks(
        revocation=bool(chosen & {"revocation", "grade"}),
        tls_config=bool(chosen & {"protocols", "ciphers", "grade"}),
    )
