"""What the AIA CA-issuers fetches gave: raw certificate bytes per URL, or why not."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuerFetch:
    """What one AIA CA-issuers URL gave.

    Attributes:
        url: The URL fetched.
        certificates_der: The certificates found, DER; empty when the fetch failed.
        error: Why nothing was found (HTTP status, time-out, unreadable body); ``None``
            on success.
    """

    url: str
    certificates_der: tuple[bytes, ...] = ()
    error: str | None = None
