"""Interoperability: certvigil's OCSP client against Debian's ``openssl ocsp`` responder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cryptography import x509

from certvigil.analysis.revocation_model import RevocationStatus
from certvigil.demo.pki import ThrowawayPki
from certvigil.probe.revocation import RevocationOptions
from tests.revocation.helpers import check, utc_now
from tests.revocation.openssl_tools import index_line, openssl_ocsp_responder


def test_openssl_responder_good_revoked_unknown(tmp_path: Path, pki: ThrowawayPki) -> None:
    """openssl's answers read good, revoked (with reason) and unknown, by GET and POST."""
    # Given: a responder for the intermediate, signed by the intermediate itself, that
    # knows one good and one revoked serial.
    revoked_at = (utc_now() - timedelta(days=1)).replace(microsecond=0)
    not_after = utc_now() + timedelta(days=30)
    good_serial, revoked_serial, unknown_serial = (x509.random_serial_number() for _ in "abc")
    index = index_line(good_serial, not_after_utc=not_after) + index_line(
        revoked_serial, not_after_utc=not_after, revoked_at_utc=revoked_at, reason="keyCompromise"
    )
    with openssl_ocsp_responder(
        tmp_path,
        index=index,
        ca_pem=pki.intermediate.pem,
        signer_pem=pki.intermediate.pem,
        signer_key_pem=pki.intermediate.issued.key_pem,
    ) as url:
        good, revoked, unknown = (
            pki.issue_leaf(ocsp_urls=[url], serial_number=serial)
            for serial in (good_serial, revoked_serial, unknown_serial)
        )
        # When: each leaf is checked (once by POST too).
        results = {
            name: check(pki.served_chain_der(leaf)).certificates[0]
            for name, leaf in (("good", good), ("revoked", revoked), ("unknown", unknown))
        }
        by_post = check(
            pki.served_chain_der(good),
            options=RevocationOptions(ocsp_prefer_post=True, timeout_s=2.0),
        ).certificates[0]
    # Then:
    assert results["good"].status is RevocationStatus.GOOD
    assert results["revoked"].status is RevocationStatus.REVOKED
    assert results["revoked"].revoked_at_utc == revoked_at
    assert results["revoked"].revocation_reason == "key_compromise"
    assert results["unknown"].status is RevocationStatus.UNKNOWN
    assert by_post.status is RevocationStatus.GOOD
