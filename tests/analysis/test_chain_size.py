"""The chain_oversized finding: a served certificate list over OpenSSL's default limit."""

from __future__ import annotations

from certvigil.analysis.chain_size import (
    OPENSSL_DEFAULT_MAX_CERT_LIST,
    certificate_list_bytes,
    chain_size_findings,
)
from certvigil.analysis.model import Severity


def test_list_size_counts_the_length_fields() -> None:
    """The list costs 3 bytes of length plus 3 per certificate, as TLS 1.2 encodes it."""
    assert certificate_list_bytes([b"a" * 10, b"b" * 20]) == 3 + 13 + 23


def test_list_at_the_limit_is_fine() -> None:
    """Exactly 102,400 bytes is what OpenSSL still accepts: no finding."""
    der = b"x" * (OPENSSL_DEFAULT_MAX_CERT_LIST - 6)
    assert certificate_list_bytes([der]) == OPENSSL_DEFAULT_MAX_CERT_LIST
    assert chain_size_findings([der]) == []


def test_list_over_the_limit_warns() -> None:
    """One byte more is a warning that names the size, the count and the limit."""
    der = b"x" * (OPENSSL_DEFAULT_MAX_CERT_LIST - 5)
    (finding,) = chain_size_findings([der])
    assert finding.code == "chain_oversized"
    assert finding.severity is Severity.WARNING
    assert "102,401 bytes" in finding.message and "1 certificate," in finding.message
    assert finding.cert_index is None
