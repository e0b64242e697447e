"""RFC 5246 ``DigitallySigned`` as CT uses it: SHA-256 with ECDSA P-256 or RSA PKCS#1 v1.5.

A log's key is the base64 DER SubjectPublicKeyInfo the log list gives; its LogID is the
SHA-256 of that DER.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from certvigil.ct.codec import DecodeError, Reader
from certvigil.ct.errors import SignatureError

HASH_SHA256 = 4
SIG_RSA = 1
SIG_ECDSA = 3
_MIN_RSA_BITS = 2048

LogKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, slots=True)
class DigitallySigned:
    """A decoded ``DigitallySigned``: algorithm codes and the signature bytes."""

    hash_algorithm: int
    signature_algorithm: int
    signature: bytes


def parse_digitally_signed(data: bytes, what: str) -> DigitallySigned:
    """Decode a ``DigitallySigned`` that must fill ``data`` exactly.

    Raises:
        SignatureError: The structure is truncated, has trailing bytes or names an
            algorithm other than SHA-256 with ECDSA or RSA.
    """
    reader = Reader(data)
    try:
        hash_alg = reader.uint(1, "hash algorithm")
        sig_alg = reader.uint(1, "signature algorithm")
        signature = reader.opaque(2, "signature", minimum=1)
        reader.expect_end("the signature")
    except DecodeError as exc:
        raise SignatureError(f"{what}: malformed DigitallySigned: {exc}") from None
    if hash_alg != HASH_SHA256:
        raise SignatureError(f"{what}: hash algorithm {hash_alg} is not SHA-256 (4)")
    if sig_alg not in (SIG_RSA, SIG_ECDSA):
        raise SignatureError(
            f"{what}: signature algorithm {sig_alg} is neither RSA (1) nor ECDSA (3)"
        )
    return DigitallySigned(hash_alg, sig_alg, signature)


@lru_cache(maxsize=512)
def load_log_key(der: bytes) -> LogKey:
    """The public key of a log from its DER SubjectPublicKeyInfo (cached).

    Raises:
        SignatureError: Not a DER public key, or not an ECDSA P-256 / RSA ≥ 2048 key.
    """
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"the log key is not a DER public key: {exc}") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise SignatureError(f"the log key is on {key.curve.name}, not P-256")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise SignatureError(f"the log's RSA key has {key.key_size} bits, under 2048")
        return key
    raise SignatureError(f"the log key is a {type(key).__name__}, not ECDSA or RSA")


def log_id(key_der: bytes) -> bytes:
    """The LogID of a log: SHA-256 of its DER SubjectPublicKeyInfo."""
    return hashlib.sha256(key_der).digest()


def verify_digitally_signed(
    key_der: bytes, signed: DigitallySigned, message: bytes, what: str
) -> None:
    """Check ``signed`` over ``message`` with the log key ``key_der``.

    Raises:
        SignatureError: The key cannot be used, its type does not match the signature
            algorithm, or the signature does not verify.
    """
    key = load_log_key(key_der)
    try:
        if signed.signature_algorithm == SIG_ECDSA:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise SignatureError(f"{what}: ECDSA signature but the log key is RSA")
            key.verify(signed.signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            if not isinstance(key, rsa.RSAPublicKey):
                raise SignatureError(f"{what}: RSA signature but the log key is ECDSA")
            key.verify(signed.signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureError(f"{what}: the signature does not verify with the log's key") from None


def tree_head_message(timestamp: int, tree_size: int, root_hash: bytes) -> bytes:
    """The RFC 6962 §3.5 TreeHeadSignature input (v1, tree_hash) for a tree head."""
    return b"\x00\x01" + timestamp.to_bytes(8, "big") + tree_size.to_bytes(8, "big") + root_hash
