"""How large the served certificate list is, against what clients accept.

OpenSSL, and every client built on it with its defaults (curl, Python, most agents and
libraries), refuses a Certificate message over 102,400 bytes (``max_cert_list``) with
"excessive message size"; other stacks have similar limits. A server that sends more
works only for clients that raised the limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from certvigil.analysis.codes import FindingCode
from certvigil.analysis.model import Finding, Severity

OPENSSL_DEFAULT_MAX_CERT_LIST = 102400
"""OpenSSL's default limit on a Certificate message, in bytes."""


def certificate_list_bytes(chain_der: Sequence[bytes]) -> int:
    """The size of the certificate list as TLS 1.2 carries it (3-byte length per entry)."""
    return 3 + sum(3 + len(der) for der in chain_der)


def chain_size_findings(chain_der: Sequence[bytes]) -> list[Finding]:
    """A ``chain_oversized`` warning when the served list exceeds OpenSSL's default limit.

    Args:
        chain_der: The certificates as the server sent them.

    Returns:
        The finding, or nothing.
    """
    size = certificate_list_bytes(chain_der)
    if size <= OPENSSL_DEFAULT_MAX_CERT_LIST:
        return []
    largest = max(len(der) for der in chain_der)
    count = len(chain_der)
    return [
        Finding(
            code=FindingCode.CHAIN_OVERSIZED,
            severity=Severity.WARNING,
            message=(
                f"The server sends {size:,} bytes of certificates ({count} "
                f"certificate{'s' if count != 1 else ''}, the largest {largest:,} bytes): "
                f"clients with OpenSSL's default limit of {OPENSSL_DEFAULT_MAX_CERT_LIST:,} "
                "bytes refuse the handshake"
            ),
        )
    ]
