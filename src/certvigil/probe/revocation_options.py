"""The options of a revocation check: what to fetch and the limits on fetching it.

A module of its own, free of HTTP imports, so that a scan that does not check
revocation need not import the HTTP client to hold its options.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_CRL_MAX_BYTES", "DEFAULT_OCSP_MAX_BYTES", "RevocationOptions"]

DEFAULT_CRL_MAX_BYTES = 20 * 1024 * 1024
"""Largest CRL accepted by default: the biggest public CRLs are a few MiB."""

DEFAULT_OCSP_MAX_BYTES = 1024 * 1024
"""Largest OCSP response accepted: a real one is a few KB."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationOptions:
    """What to fetch and the limits on fetching it.

    Attributes:
        use_crl: Download CRLs from the distribution points certificates name.
        use_ocsp: Ask the OCSP responders certificates name.
        ocsp_for_intermediates: Ask OCSP about intermediates too, not only the leaf
            (CRLs are always checked for every certificate that names one).
        timeout_s: Limit on each HTTP phase (connect, write, read between bytes).
        total_timeout_s: Limit on one whole fetch, body included.
        crl_max_bytes: Largest CRL accepted.
        ocsp_max_bytes: Largest OCSP response accepted.
        ocsp_prefer_post: POST every OCSP request, even those short enough for GET
            (for responders that mishandle GET).
    """

    use_crl: bool = True
    use_ocsp: bool = True
    ocsp_for_intermediates: bool = False
    timeout_s: float = 5.0
    total_timeout_s: float = 15.0
    crl_max_bytes: int = DEFAULT_CRL_MAX_BYTES
    ocsp_max_bytes: int = DEFAULT_OCSP_MAX_BYTES
    ocsp_prefer_post: bool = False

    def __post_init__(self) -> None:
        for name in ("timeout_s", "total_timeout_s", "crl_max_bytes", "ocsp_max_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
