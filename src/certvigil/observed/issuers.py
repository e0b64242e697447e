"""What the AIA CA-issuers fetches gave: raw certificate bytes per URL, or why not."""

from __future__ import annotations

from dataclasses import dataclass

NOT_ALLOWED_PREFIX = "not checked: "
"""How an ``IssuerFetch.error`` starts when the fetch was refused by an allow-list
(``certvigil.probe.fenced_http``): ``not checked: <url> outside the allow-list``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuerFetch:
    """What one AIA CA-issuers URL gave.

    Attributes:
        url: The URL fetched.
        certificates_der: The certificates found, DER; empty when the fetch failed.
        error: Why nothing was found (HTTP status, time-out, unreadable body, or
            :data:`NOT_ALLOWED_PREFIX` and the URL refused by an allow-list); ``None``
            on success.
    """

    url: str
    certificates_der: tuple[bytes, ...] = ()
    error: str | None = None

    @property
    def was_not_allowed(self) -> bool:
        """The fetch (or one of its redirects) was refused by an allow-list."""
        return self.error is not None and self.error.startswith(NOT_ALLOWED_PREFIX)
