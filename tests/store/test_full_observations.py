"""Observations kept whole: the compressed observation reads back equal, a CRL used by
many observations is stored once, the served certificates are named by reference, and
the check columns follow the report."""

from __future__ import annotations

import base64
import dataclasses
import zlib
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update

from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.revocation import (
    CertificateRevocationObservation,
    RevocationFetch,
    RevocationMethod,
    RevocationObservation,
)
from certvigil.store import Store
from certvigil.store.ingest import certificate_row, unpack_observation
from certvigil.store.models import CERTIFICATES, DEPLOYMENTS, ENDPOINTS, OBSERVATIONS
from certvigil.store.observations import count_documents, latest_observations
from certvigil.store.packing import unpack
from certvigil.targets.target import Target
from tests.store.factories import NOW, facts, fake_der, ok_report

CRL = b"0\x82" + bytes(range(256)) * 8  # any bytes: the store does not parse CRLs


def observed(report, crl: bytes | None):  # type: ignore[no-untyped-def]
    """``report`` carrying an observation whose revocation check used ``crl``."""
    handshake = report.observation
    revocation = None
    if crl is not None:
        fetch = RevocationFetch(
            method=RevocationMethod.CRL,
            url="http://crl.example.test/int.crl",
            fetched_at_utc=NOW,
            response_der=crl,
        )
        revocation = RevocationObservation(
            target=report.target,
            observed_at_utc=NOW,
            certificates=(
                CertificateRevocationObservation(
                    cert_index=0, certificate_der=handshake.chain_der[0], fetches=(fetch,)
                ),
            ),
        )
    observation = EndpointObservation(
        target=report.target,
        observed_at_utc=handshake.observed_at_utc,
        handshake=handshake,
        revocation=revocation,
    )
    return dataclasses.replace(report, observed=observation), observation


def test_observation_reads_back_equal_and_a_shared_crl_is_stored_once(store: Store) -> None:
    """Three endpoints under one CA: three observations read back exactly, their one
    CRL is one row with three references."""
    originals = []
    for n in range(3):
        target = Target(host=f"h{n}.example.test", port=443)
        leaf = facts(f"h{n}.example.test", not_after_utc=NOW + timedelta(days=90))
        report, observation = observed(ok_report(target, (leaf,)), CRL)
        store.record_report(report)
        originals.append(observation)
    with store.read() as connection:
        assert count_documents(connection) == (1, 3)
        back = [s.observation for s in latest_observations(connection)]
    assert back == originals


def test_report_without_observation_keeps_no_blob_and_check_columns_say_cert(
    store: Store,
) -> None:
    """A report that carries no observation stores NULL, and only ``cert`` ran."""
    target = Target(host="plain.example.test", port=443)
    leaf = facts("plain.example.test", not_after_utc=NOW + timedelta(days=90))
    store.record_report(ok_report(target, (leaf,)))
    with store.read() as connection:
        row = connection.execute(
            select(OBSERVATIONS.c.observation_z, OBSERVATIONS.c.checks, OBSERVATIONS.c.grade)
        ).one()
        assert row == (None, "cert", None)
        assert list(latest_observations(connection)) == []


def test_a_damaged_blob_is_named_not_raised(store: Store) -> None:
    """A stored observation that does not decompress is reported per endpoint."""
    target = Target(host="bad.example.test", port=443)
    leaf = facts("bad.example.test", not_after_utc=NOW + timedelta(days=90))
    report, _ = observed(ok_report(target, (leaf,)), None)
    store.record_report(report)
    with store.write() as connection:
        connection.execute(update(OBSERVATIONS).values(observation_z=b"not compressed"))
    with store.read() as connection:
        (stored,) = latest_observations(connection)
    assert stored.observation is None
    assert stored.problem is not None and "observation_z" in stored.problem


def test_a_decompression_bomb_is_refused() -> None:
    """A blob that inflates beyond the bound is refused with the field named."""
    from certvigil.errors import ObservationFormatError

    bomb = zlib.compress(b" " * (65 * 1024 * 1024), 9)
    with pytest.raises(ObservationFormatError, match="observation_z"):
        unpack_observation(bomb, {})


def test_endpoint_keeps_latest_grade_when_a_scan_did_not_grade(store: Store) -> None:
    """Endpoints keep the last grade and revocation status across certificate-only scans."""
    target = Target(host="g.example.test", port=443)
    leaf = facts("g.example.test", not_after_utc=NOW + timedelta(days=90))
    store.record_report(ok_report(target, (leaf,)))
    with store.write() as connection:
        connection.execute(update(ENDPOINTS).values(grade="A", revocation_status="good"))
    store.record_report(ok_report(target, (leaf,), at=NOW + timedelta(hours=1)))
    with store.read() as connection:
        assert connection.execute(
            select(ENDPOINTS.c.grade, ENDPOINTS.c.revocation_status)
        ).one() == (
            "A",
            "good",
        )


def test_retention_drops_crls_no_kept_observation_uses(store: Store) -> None:
    """Pruned observations take their CRL references along; a CRL still referenced by a
    kept observation stays, one referenced by none goes."""
    old_crl, shared_crl = CRL + b"old", CRL + b"shared"
    target = Target(host="r.example.test", port=443)
    leaf = facts("r.example.test", not_after_utc=NOW + timedelta(days=900))
    for hours, crl in ((0, old_crl), (1, shared_crl), (24 * 30, shared_crl)):
        report, _ = observed(ok_report(target, (leaf,), at=NOW + timedelta(hours=hours)), crl)
        store.record_report(report)
    with store.read() as connection:
        assert count_documents(connection) == (2, 3)
    pruned = store.prune_observations(now=NOW + timedelta(days=40), keep_days=20)
    assert pruned == 2
    with store.read() as connection:
        assert count_documents(connection) == (1, 1)


def test_a_stored_crl_keeps_its_next_update(store: Store) -> None:
    """A real CRL's nextUpdate is kept with it (unparseable bytes keep none)."""

    from certvigil.demo.pki import ThrowawayPki
    from certvigil.store.revocation_models import REVOCATION_DOCUMENTS
    from tests.support.ocsp_responder import build_crl

    pki = ThrowawayPki.create()
    next_update = NOW.replace(microsecond=0) + timedelta(days=3)
    crl = build_crl(
        issuer=pki.intermediate,
        this_update_utc=NOW - timedelta(hours=1),
        next_update_utc=next_update,
    )
    for n, der in enumerate((crl, CRL)):
        target = Target(host=f"n{n}.example.test", port=443)
        leaf = facts(f"n{n}.example.test", not_after_utc=NOW + timedelta(days=90))
        store.record_report(observed(ok_report(target, (leaf,)), der)[0])
    with store.read() as connection:
        rows = connection.execute(
            select(REVOCATION_DOCUMENTS.c.der_z, REVOCATION_DOCUMENTS.c.next_update_utc)
        ).all()
    kept = {unpack(row.der_z, 1 << 20): row.next_update_utc for row in rows}
    assert kept == {crl: next_update, CRL: None}


def test_rows_written_with_zlib_are_still_read(store: Store) -> None:
    """Observations and CRLs stored zlib-compressed (by earlier versions) read back
    exactly as the ones stored now."""
    from certvigil.store.revocation_models import REVOCATION_DOCUMENTS

    target = Target(host="old.example.test", port=443)
    leaf = facts("old.example.test", not_after_utc=NOW + timedelta(days=90))
    report, observation = observed(ok_report(target, (leaf,)), CRL)
    store.record_report(report)
    with store.write() as connection:
        blob = connection.execute(select(OBSERVATIONS.c.observation_z)).scalar_one()
        der_z = connection.execute(select(REVOCATION_DOCUMENTS.c.der_z)).scalar_one()
        assert unpack(der_z, 1 << 20) == CRL
        connection.execute(
            update(OBSERVATIONS).values(observation_z=zlib.compress(unpack(blob, 1 << 26), 1))
        )
        connection.execute(update(REVOCATION_DOCUMENTS).values(der_z=zlib.compress(CRL, 1)))
    with store.read() as connection:
        (stored,) = latest_observations(connection)
    assert stored.problem is None
    assert stored.observation == observation


def test_a_damaged_stored_crl_is_named_not_raised(store: Store) -> None:
    """A CRL row that does not decompress leaves its observation unreadable, with the
    reason, and the other endpoints' observations readable."""
    from certvigil.store.revocation_models import REVOCATION_DOCUMENTS

    target = Target(host="crl.example.test", port=443)
    leaf = facts("crl.example.test", not_after_utc=NOW + timedelta(days=90))
    store.record_report(observed(ok_report(target, (leaf,)), CRL)[0])
    other = Target(host="fine.example.test", port=443)
    fine, fine_observation = observed(
        ok_report(other, (facts("fine.example.test", not_after_utc=NOW + timedelta(days=90)),)),
        None,
    )
    store.record_report(fine)
    with store.write() as connection:
        connection.execute(update(REVOCATION_DOCUMENTS).values(der_z=b"\x28\xb5\x2f\xfd cut"))
    with store.read() as connection:
        stored = {s.target.host: s for s in latest_observations(connection)}
    assert stored["crl.example.test"].observation is None
    assert "response_sha256" in (stored["crl.example.test"].problem or "")
    assert stored["fine.example.test"].observation == fine_observation


def _stored_document(store: Store) -> str:
    with store.read() as connection:
        blob = connection.execute(select(OBSERVATIONS.c.observation_z)).scalar_one()
    return unpack(blob, 1 << 26).decode()


def test_the_served_chain_is_kept_once_and_named_by_reference(store: Store) -> None:
    """The stored observation names its leaf and intermediate by SHA-256 (their bytes
    are the certificates table's), in the chain and in the revocation check alike, and
    reads back with the bytes as served."""
    target = Target(host="chain.example.test", port=443)
    leaf = facts("chain.example.test", not_after_utc=NOW + timedelta(days=90))
    issuer = facts("Issuing CA", not_after_utc=NOW + timedelta(days=900), is_ca=True)
    report, observation = observed(ok_report(target, (leaf, issuer)), CRL)
    store.record_report(report)

    text = _stored_document(store)
    for der, sha in (
        (fake_der("chain.example.test"), leaf.sha256_hex),
        (fake_der("Issuing CA"), issuer.sha256_hex),
    ):
        assert base64.b64encode(der).decode() not in text
        assert f'{{"sha256":"{sha}"}}' in text
    assert text.count(f'{{"sha256":"{leaf.sha256_hex}"}}') == 2  # served and checked
    with store.read() as connection:
        (stored,) = latest_observations(connection)
    assert stored.problem is None
    assert stored.observation == observation


def test_a_certificate_stored_without_its_bytes_gets_them(store: Store) -> None:
    """A certificate row written without bytes (its facts came alone) gets them when
    the certificate is served, so the observation that names it reads back."""
    target = Target(host="late.example.test", port=443)
    leaf = facts("late.example.test", not_after_utc=NOW + timedelta(days=90))
    with store.write() as connection:
        connection.execute(insert(CERTIFICATES), [certificate_row(leaf, None, NOW)])
    report, observation = observed(ok_report(target, (leaf,)), None)
    store.record_report(report)

    with store.read() as connection:
        der = connection.execute(select(CERTIFICATES.c.der)).scalar_one()
        (stored,) = latest_observations(connection)
    assert der == fake_der("late.example.test")
    assert stored.observation == observation


def test_an_unreadable_certificate_in_the_chain_shifts_nothing(store: Store) -> None:
    """Served leaf, garbage, intermediate: the intermediate's facts come second (only
    parsed certificates have facts), but its row keeps its own bytes and its
    deployment the position it was served at; the garbage stays in the observation."""
    target = Target(host="odd.example.test", port=443)
    leaf = facts("odd.example.test", not_after_utc=NOW + timedelta(days=90))
    issuer = facts("Odd CA", not_after_utc=NOW + timedelta(days=900), is_ca=True)
    report = ok_report(target, (leaf, issuer))
    assert report.observation is not None
    served = (fake_der("odd.example.test"), b"not a certificate", fake_der("Odd CA"))
    report = dataclasses.replace(
        report, observation=dataclasses.replace(report.observation, chain_der=served)
    )
    report, observation = observed(report, None)
    store.record_report(report)

    with store.read() as connection:
        c, d = CERTIFICATES.c, DEPLOYMENTS.c
        ders = {sha: der for sha, der in connection.execute(select(c.sha256_hex, c.der))}
        positions = {
            sha: position
            for sha, position in connection.execute(select(d.certificate_sha256, d.chain_position))
        }
        (stored,) = latest_observations(connection)
    assert ders == {leaf.sha256_hex: served[0], issuer.sha256_hex: served[2]}
    assert positions == {leaf.sha256_hex: 0, issuer.sha256_hex: 2}
    assert stored.observation == observation
