"""Outside text holding a NUL is recorded on both databases, never refused.

A null-prefix certificate (its common name ``www.bank.test\\0.evil.test``) or a server
whose reply holds a NUL must not cost the batch it is recorded with: PostgreSQL's text
cannot hold a NUL, so there it is kept as the escape ``\\x00`` (a batch's rows by
``store.driver.rows_as_json``, other bound text by ``store.pg_text``); SQLite keeps it
as it is.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import text

from certvigil.alerts.engine import AlertEngine
from certvigil.analysis.certificate import certificate_facts
from certvigil.analysis.model import CertificateFacts
from certvigil.demo.pki import ThrowawayPki
from certvigil.store import Store
from certvigil.targets.target import Target
from tests.store.factories import NOW, facts, failed_report, ok_report

NULL_PREFIX_CN = "www.bank.test\x00.evil.test"
BANK = Target(host="www.bank.test", port=443)
PLAIN = Target(host="www.plain.test", port=443)
DOWN = Target(host="down.test", port=443)


def _as_stored(store: Store, text: str) -> str:
    return text.replace("\x00", "\\x00") if store.dialect_name == "postgresql" else text


def _null_prefix_facts(pki: ThrowawayPki, *, days_left: int) -> CertificateFacts:
    """Facts of a real certificate whose CN and DNS name hold a NUL, as the analysis reads it."""
    issuer = pki.intermediate
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NULL_PREFIX_CN)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.certificate.subject)
        .public_key(issuer.private_key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW + timedelta(days=days_left))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("www.bank.test")]), False)
        .sign(issuer.private_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    _digest, found = certificate_facts(certificate.public_bytes(Encoding.DER))
    assert found is not None
    assert found.subject_cn == NULL_PREFIX_CN
    return found


def test_a_null_prefix_certificate_is_recorded_with_its_batch(
    store: Store, pki: ThrowawayPki
) -> None:
    """The batch holding the certificate, a plain one and a failure with a NUL all land."""
    bank = _null_prefix_facts(pki, days_left=200)
    plain = facts("www.plain.test", not_after_utc=NOW + timedelta(days=200))
    failure = failed_report(DOWN)
    assert failure.failure is not None
    # A NUL, and the six characters a NUL is written as in JSON, which stay as they are.
    banner = "220 mail\x00\x1b[2J ready \\u0000 \\\x00"
    failure = dataclasses.replace(
        failure, failure=dataclasses.replace(failure.failure, detail=banner)
    )

    ids = store.record_reports([ok_report(BANK, (bank,)), ok_report(PLAIN, (plain,)), failure])

    assert len(ids) == 3
    assert {e.target for e in store.list_endpoints()} == {BANK, PLAIN, DOWN}
    # The facts are kept whole (JSON escapes the NUL); the searchable column as stored.
    stored = store.get_certificate(bank.sha256_hex)
    assert stored is not None
    assert stored.subject_cn == NULL_PREFIX_CN
    with store.read() as connection:
        column = connection.execute(
            text("SELECT subject_cn FROM certificates WHERE sha256_hex = :sha"),
            {"sha": bank.sha256_hex},
        ).scalar_one()
    assert column == _as_stored(store, NULL_PREFIX_CN)
    observation = store.get_observation(ids[2])
    assert observation is not None
    assert observation.failure_detail == _as_stored(store, banner)


def test_an_alert_naming_a_null_prefix_certificate_is_raised(
    store: Store, pki: ThrowawayPki
) -> None:
    """The expiry alert is raised, its message naming the certificate with the NUL shown."""
    bank = _null_prefix_facts(pki, days_left=3)

    _id, events = AlertEngine(store).record_and_process(ok_report(BANK, (bank,)), NOW)

    assert events
    (alert,) = store.list_alerts()
    assert alert.kind == "expiry_threshold"
    assert "www.bank.test\\x00.evil.test" in alert.details["message"]


def test_a_nul_bound_outside_a_batch_is_stored(store: Store, pki: ThrowawayPki) -> None:
    """Text bound as a parameter rather than in a batch's rows (who acknowledged an
    alert, as an API caller gives it) goes through the same rule."""
    bank = _null_prefix_facts(pki, days_left=3)
    AlertEngine(store).record_and_process(ok_report(BANK, (bank,)), NOW)
    (alert,) = store.list_alerts()
    who = "ops\x00\x1b[2J"

    assert store.acknowledge_alert(alert.id, by=who, now=NOW)

    acknowledged = store.get_alert(alert.id)
    assert acknowledged is not None
    assert acknowledged.acknowledged_by == _as_stored(store, who)
