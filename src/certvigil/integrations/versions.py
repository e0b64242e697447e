"""Protocol names as monitoring systems write them (blackbox_exporter's ``TLS 1.2``)."""

from __future__ import annotations

TLS_VERSION_NAMES: dict[str, str] = {
    "SSLv2": "SSLv2",
    "SSLv3": "SSLv3",
    "TLSv1": "TLS 1.0",
    "TLSv1.0": "TLS 1.0",
    "TLSv1.1": "TLS 1.1",
    "TLSv1.2": "TLS 1.2",
    "TLSv1.3": "TLS 1.3",
}
"""OpenSSL's protocol names (and certvigil's own) to the names the exporters label with."""
