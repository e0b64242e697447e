"""Certificate files: PEM bundles, DER, PKCS#7, and clear errors for everything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from certvigil.demo.pki import ThrowawayPki
from certvigil.errors import CertificateLoadError
from certvigil.files.certificates import load_certificate_bytes, load_certificate_file

DATA = Path(__file__).resolve().parent / "data" / "certs"


def test_real_pem_bundle() -> None:
    """A real served chain loads as DER in file order."""
    ders = load_certificate_file(DATA / "real-sites" / "microsoft.com.chain.pem")
    assert len(ders) == 3
    assert all(d[0] == 0x30 for d in ders)


def test_pem_with_text_dump() -> None:
    """Text around PEM blocks (openssl -text output) is ignored."""
    ders = load_certificate_file(DATA / "zlint" / "idnCorrectUnicode.pem")
    assert len(ders) == 1


def test_der_file(pki: ThrowawayPki, tmp_path: Path) -> None:
    """A single DER certificate loads as itself."""
    path = tmp_path / "leaf.der"
    path.write_bytes(pki.intermediate.der)
    assert load_certificate_file(path) == (pki.intermediate.der,)


@pytest.mark.parametrize("encoding", [serialization.Encoding.DER, serialization.Encoding.PEM])
def test_pkcs7_bundle(pki: ThrowawayPki, tmp_path: Path, encoding: serialization.Encoding) -> None:
    """PKCS#7 certs-only bundles in DER and PEM load every certificate."""
    data = pkcs7.serialize_certificates(
        [pki.intermediate.certificate, pki.root.certificate], encoding
    )
    path = tmp_path / "bundle.p7b"
    path.write_bytes(data)
    assert set(load_certificate_file(path)) == {pki.intermediate.der, pki.root.der}


def test_key_in_bundle_is_skipped(pki: ThrowawayPki, tmp_path: Path) -> None:
    """A server's combined cert + key file yields the certificates only."""
    leaf = pki.issue_leaf()
    path = tmp_path / "combined.pem"
    path.write_bytes(leaf.pem + leaf.key_pem + pki.intermediate.pem)
    assert load_certificate_file(path) == (leaf.der, pki.intermediate.der)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        (b"hello\n", "neither PEM text nor a DER certificate"),
        (b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", "PEM block 1 is a FOO"),
        (b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "not valid base64"),
        (
            b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
            "PEM block 1 is not a certificate",
        ),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no certificate"),
    ],
)
def test_errors_name_file_and_problem(tmp_path: Path, content: bytes, reason: str) -> None:
    """Unusable files raise CertificateLoadError naming the file and what is wrong."""
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    with pytest.raises(CertificateLoadError) as caught:
        load_certificate_file(path)
    assert reason in str(caught.value)
    assert str(path) in str(caught.value)


def test_third_block_named(pki: ThrowawayPki, tmp_path: Path) -> None:
    """The position of the broken block is given."""
    broken = b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n"
    path = tmp_path / "chain.pem"
    path.write_bytes(pki.intermediate.pem + pki.root.pem + broken)
    with pytest.raises(CertificateLoadError, match="PEM block 3 is not a certificate"):
        load_certificate_file(path)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a CertificateLoadError with the OS reason."""
    with pytest.raises(CertificateLoadError, match="no such file"):
        load_certificate_file(tmp_path / "absent.pem")


def test_bytes_from_a_url(pki: ThrowawayPki) -> None:
    """Bytes from an AIA download load the same way, naming the URL on error."""
    assert load_certificate_bytes(pki.root.der, source="http://127.0.0.1/r.der") == (pki.root.der,)
    with pytest.raises(CertificateLoadError, match=r"http://127\.0\.0\.1/x"):
        load_certificate_bytes(b"<html>", source="http://127.0.0.1/x")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a DER-encoded"),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "truncated"),
        (b"-----BEGIN CERTIFICATE-----\nA!A\n-----END CERTIFICATE-----\n", "not valid base64"),
        (b"-----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----\n", "not a valid PKCS#7 bundle"),
        (b"\x30\x82\x01\x00garbage", "neither PEM text nor a DER certificate"),
    ],
)
def test_errors_are_in_words_with_the_library_text_as_detail(data: bytes, words: str) -> None:
    """A malformed certificate is described in words; the parsing library's text (Rust
    debug output such as "ParseError { kind: ... }") is only the error's detail."""
    with pytest.raises(CertificateLoadError) as raised:
        load_certificate_bytes(data, source="x.pem")
    message = str(raised.value)
    assert words in message
    for internal in ("ParseError", "{", "asn1", "Only base64", "Unable to parse"):
        assert internal not in message
    assert raised.value.detail


def test_debug_shows_the_library_text_of_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cert --debug`` adds the library's text under the one-line error; without it
    the line stays in words."""
    from certvigil.cli.app import main

    path = tmp_path / "bad.pem"
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    for argv, shown in ((["cert", str(path)], False), (["cert", str(path), "--debug"], True)):
        with pytest.raises(SystemExit):
            main(argv)
        err = capsys.readouterr().err
        assert "not a DER-encoded X.509 certificate" in err
        assert ("detail: " in err and "ParseError" in err) is shown
