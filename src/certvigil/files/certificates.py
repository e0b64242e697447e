"""Read certificates from files and bytes: PEM bundles, DER, PKCS#7 (.p7b/.p7c)."""

from __future__ import annotations

import base64
import binascii
import re
import warnings
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from certvigil.analysis.certificate import PARSE_ERRORS, parse_certificate
from certvigil.errors import CertificateLoadError

__all__ = ["load_certificate_bytes", "load_certificate_file"]

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
_CERTIFICATE_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}
_PKCS7_LABELS = {b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS"}
# Blocks that share a file with certificates by habit (a server's cert + key bundle);
# they are skipped rather than refused.
_SKIPPED_LABELS = {
    b"PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
    b"ENCRYPTED PRIVATE KEY",
    b"DH PARAMETERS",
    b"EC PARAMETERS",
    b"X509 CRL",
}


def load_certificate_file(path: Path) -> tuple[bytes, ...]:
    """The certificates in a file, in file order, as DER.

    Accepts PEM files with one or more certificates (private keys and parameters in the
    same file are skipped), a single DER certificate, and PKCS#7 bundles in PEM or DER.

    Args:
        path: The file.

    Returns:
        The DER of each certificate, at least one.

    Raises:
        CertificateLoadError: The file cannot be read or holds no usable certificate;
            the message names the file and what is wrong ("PEM block 3 is not a
            certificate: ...").
    """
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_CERTIFICATE_FILE_BYTES + 1)
    except FileNotFoundError as exc:
        raise CertificateLoadError(str(path), "no such file") from exc
    except IsADirectoryError as exc:
        raise CertificateLoadError(str(path), "is a directory") from exc
    except PermissionError as exc:
        raise CertificateLoadError(str(path), "cannot be read: permission denied") from exc
    except OSError as exc:
        reason = (exc.strerror or "error").lower()
        raise CertificateLoadError(str(path), f"cannot be read: {reason}") from exc
    if len(data) > MAX_CERTIFICATE_FILE_BYTES:
        limit = MAX_CERTIFICATE_FILE_BYTES // (1024 * 1024)
        raise CertificateLoadError(str(path), f"larger than {limit} MiB")
    return load_certificate_bytes(data, source=str(path))


MAX_CERTIFICATE_FILE_BYTES = 64 * 1024 * 1024
"""The largest certificate file read (a CA bundle is a few hundred KiB)."""


def in_words(library_text: str) -> str:
    """What a parsing library's complaint about a certificate means, in words.

    cryptography reports DER mistakes as Rust debug output (``ParseError { kind:
    ShortData { needed: 92 } }``); people are told what it means, and the text itself
    is kept as the error's ``detail`` for ``--debug``.
    """
    text = library_text.strip()
    if "ShortData" in text:
        return "the data ends before the certificate does (truncated)"
    if "ExtraData" in text:
        return "there are stray bytes after the certificate"
    if "UnexpectedTag" in text or "asn1" in text.lower() or "ParseError" in text:
        return "the bytes are not a DER-encoded X.509 certificate"
    if "{" in text or "::" in text:
        return "the certificate's encoding is malformed"
    return text


def load_certificate_bytes(data: bytes, *, source: str) -> tuple[bytes, ...]:
    """The certificates in ``data`` (PEM, DER or PKCS#7), as DER.

    Also suits an AIA CA Issuers download, which may be a DER certificate or a
    PKCS#7 "certs-only" bundle.

    Args:
        data: The bytes.
        source: Where they came from (a path or URL), for error messages.

    Returns:
        The DER of each certificate, at least one.

    Raises:
        CertificateLoadError: No certificate could be read, naming ``source`` and why.
    """
    if not data.strip():
        raise CertificateLoadError(source, "the file is empty")
    if b"-----BEGIN " in data:
        return _from_pem(data, source)
    return _from_der(data, source)


def _from_pem(data: bytes, source: str) -> tuple[bytes, ...]:
    found: list[bytes] = []
    for number, match in enumerate(_PEM_BLOCK.finditer(data), start=1):
        label, body = match.group(1), match.group(2)
        if label in _SKIPPED_LABELS:
            continue
        where = f"PEM block {number}"
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CertificateLoadError(
                source, f"{where} is not valid base64 text", detail=str(exc)
            ) from exc
        if label in _PKCS7_LABELS:
            found += _pkcs7(der, source, where)
        elif label in _CERTIFICATE_LABELS:
            if label == b"TRUSTED CERTIFICATE":
                der = _first_element(der)
            found.append(_checked(der, source, where))
        else:
            kind = label.decode("ascii")
            raise CertificateLoadError(source, f"{where} is a {kind}, not a certificate")
    if not found:
        raise CertificateLoadError(source, "no certificate found")
    return tuple(found)


def _from_der(data: bytes, source: str) -> tuple[bytes, ...]:
    try:
        parse_certificate(data)
    except CertificateLoadError as exc:
        cert_reason = exc.reason
    else:
        return (data,)
    try:
        return tuple(_pkcs7(data, source, "DER"))
    except CertificateLoadError:
        pass
    raise CertificateLoadError(
        source,
        "neither PEM text nor a DER certificate or PKCS#7 bundle",
        detail=cert_reason,
    )


def _pkcs7(der: bytes, source: str, where: str) -> list[bytes]:
    try:
        # cryptography warns on a zero serial or a BER bundle: each certificate is read
        # again by the analysis, which reports such defects as parse problems.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            certificates = pkcs7.load_der_pkcs7_certificates(der)
    except PARSE_ERRORS as exc:
        raise CertificateLoadError(
            source, f"{where} is not a valid PKCS#7 bundle", detail=str(exc)
        ) from exc
    if not certificates:
        raise CertificateLoadError(source, f"{where} is a PKCS#7 bundle with no certificate")
    return [c.public_bytes(serialization.Encoding.DER) for c in certificates]


def _checked(der: bytes, source: str, where: str) -> bytes:
    try:
        parse_certificate(der)
    except CertificateLoadError as exc:
        raise CertificateLoadError(
            source, f"{where} is not a certificate: {in_words(exc.reason)}", detail=exc.reason
        ) from exc
    return der


def _first_element(der: bytes) -> bytes:
    """The certificate at the start of an OpenSSL "TRUSTED CERTIFICATE" (cert + aux)."""
    if len(der) < 2 or der[0] != 0x30:
        return der
    if der[1] < 0x80:
        return der[: 2 + der[1]]
    size = der[1] & 0x7F
    return der[: 2 + size + int.from_bytes(der[2 : 2 + size], "big")]
