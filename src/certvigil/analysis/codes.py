"""Every finding code, one enumeration, with its severity rule, meaning and fix; pure.

Findings, alert rules, alert policies, grade rules and outputs name codes through
:class:`FindingCode` members. A member is a ``str`` (``StrEnum``), so JSON, the store
and the ``--json`` documents carry the same strings as before. ``docs/finding-codes.md``
is the table :data:`CODE_DOCS` makes (``python -m certvigil.output.finding_codes``),
and ``tests/analysis/test_codes.py`` fails when a rule or policy refers to a code that
no analysis module emits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["CODE_DOCS", "CodeDoc", "FindingCode"]


class FindingCode(StrEnum):
    """The stable identifier of a finding, as JSON, the store and alerts carry it."""

    MALFORMED_CERTIFICATE = "malformed_certificate"
    NO_CERTIFICATE = "no_certificate"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRES_SOON = "expires_soon"
    HOSTNAME_MISMATCH = "hostname_mismatch"
    HOSTNAME_LEGACY_CN = "hostname_legacy_cn"
    SELF_SIGNED = "self_signed"
    UNTRUSTED_ROOT = "untrusted_root"
    INCOMPLETE_CHAIN = "incomplete_chain"
    UNTRUSTED = "untrusted"
    CHAIN_MISORDERED = "chain_misordered"
    CHAIN_OVERSIZED = "chain_oversized"
    UNNEEDED_CERTIFICATE = "unneeded_certificate"
    ROOT_SERVED = "root_served"
    DUPLICATE_CERTIFICATE = "duplicate_certificate"
    WEAK_KEY = "weak_key"
    WEAK_SIGNATURE = "weak_signature"
    VALIDITY_TOO_LONG = "validity_too_long"
    NO_SAN = "no_san"
    LEAF_IS_CA = "leaf_is_ca"
    MISSING_SERVER_AUTH_EKU = "missing_server_auth_eku"
    MUST_STAPLE_NOT_STAPLED = "must_staple_not_stapled"
    PRECERTIFICATE_SERVED = "precertificate_served"
    NO_EMBEDDED_SCT = "no_embedded_sct"
    CERTIFICATE_PARSE_PROBLEM = "certificate_parse_problem"
    REVOKED = "revoked"
    MUST_STAPLE_WITHOUT_STAPLE = "must_staple_without_staple"
    NO_REVOCATION_INFO = "no_revocation_info"
    OCSP_RESPONDER_UNREACHABLE = "ocsp_responder_unreachable"
    CRL_UNREACHABLE = "crl_unreachable"
    OCSP_RESPONSE_STALE = "ocsp_response_stale"
    CRL_STALE = "crl_stale"
    OCSP_RESPONSE_INVALID = "ocsp_response_invalid"
    CRL_INVALID = "crl_invalid"
    OCSP_STATUS_UNKNOWN = "ocsp_status_unknown"
    REVOCATION_ISSUER_MISSING = "revocation_issuer_missing"
    OCSP_STAPLE_INVALID = "ocsp_staple_invalid"
    OCSP_STAPLE_STALE = "ocsp_staple_stale"
    OCSP_STAPLE_UNKNOWN = "ocsp_staple_unknown"
    DEADLINE_REACHED = "deadline_reached"
    FETCH_NOT_ALLOWED = "fetch_not_allowed"
    TLS_CONFIG_NOT_ASSESSED = "tls_config_not_assessed"
    PROTOCOL_SSLV2 = "protocol_sslv2"
    PROTOCOL_SSLV3 = "protocol_sslv3"
    PROTOCOL_TLS10 = "protocol_tls10"
    PROTOCOL_TLS11 = "protocol_tls11"
    NO_TLS12_OR_TLS13 = "no_tls12_or_tls13"
    NO_TLS13 = "no_tls13"
    CIPHER_NULL = "cipher_null"
    CIPHER_ANONYMOUS = "cipher_anonymous"
    CIPHER_EXPORT = "cipher_export"
    CIPHER_RC4 = "cipher_rc4"
    CIPHER_RC2 = "cipher_rc2"
    CIPHER_DES = "cipher_des"
    CIPHER_MD5_MAC = "cipher_md5_mac"
    CIPHER_3DES = "cipher_3des"
    NO_FORWARD_SECRECY = "no_forward_secrecy"
    PARTIAL_FORWARD_SECRECY = "partial_forward_secrecy"
    NO_AEAD = "no_aead"
    CIPHER_CBC = "cipher_cbc"
    CIPHER_SHA1_MAC = "cipher_sha1_mac"
    NO_SERVER_CIPHER_ORDER = "no_server_cipher_order"
    DH_PARAMS_INSECURE = "dh_params_insecure"
    DH_PARAMS_WEAK = "dh_params_weak"
    WEAK_KEY_EXCHANGE_GROUP = "weak_key_exchange_group"
    NO_FALLBACK_SCSV = "no_fallback_scsv"
    INSECURE_RENEGOTIATION = "insecure_renegotiation"
    TLS_COMPRESSION = "tls_compression"
    HEARTBLEED = "heartbleed"
    NO_HSTS = "no_hsts"
    HSTS_SHORT_MAX_AGE = "hsts_short_max_age"
    TLS_PROBE_ANOMALY = "tls_probe_anomaly"


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeDoc:
    """What one finding code means, for the documentation table.

    Attributes:
        severity: The severity the default policy gives, and when it differs.
        meaning: What was found, one sentence.
        action: What to do about it, one sentence.
    """

    severity: str
    meaning: str
    action: str


CODE_DOCS: Mapping[FindingCode, CodeDoc] = {
    FindingCode.MALFORMED_CERTIFICATE: CodeDoc(
        severity="critical",
        meaning="Served bytes are not a certificate.",
        action=(
            "Fix the server's certificate file: it holds something that is not a DER/PEM "
            "certificate."
        ),
    ),
    FindingCode.NO_CERTIFICATE: CodeDoc(
        severity="critical",
        meaning="The handshake carried no certificate.",
        action=(
            "Configure a certificate for this name and port (check SNI: the server may have no "
            "default certificate)."
        ),
    ),
    FindingCode.EXPIRED: CodeDoc(
        severity=(
            "critical on the verified path; warning for a served certificate the path does not need"
        ),
        meaning="A certificate is past its notAfter.",
        action=(
            "Renew the certificate and reload the server; remove an expired certificate the path "
            "does not need."
        ),
    ),
    FindingCode.NOT_YET_VALID: CodeDoc(
        severity="critical on the path; warning when not needed",
        meaning="A certificate is before its notBefore.",
        action=(
            "Check the issuing CA's and the server's clocks; serve a certificate that is valid now."
        ),
    ),
    FindingCode.EXPIRES_SOON: CodeDoc(
        severity=(
            "critical within the smallest threshold (7 days by default); warning within the largest"
            " (30 days)"
        ),
        meaning="A certificate on the path expires within a configured threshold.",
        action="Renew before the date in the message; check that automatic renewal runs.",
    ),
    FindingCode.HOSTNAME_MISMATCH: CodeDoc(
        severity="critical",
        meaning="The leaf does not cover the name asked for.",
        action=(
            "Issue a certificate whose subjectAltName lists this name, or fix the SNI/virtual host "
            "that serves it."
        ),
    ),
    FindingCode.HOSTNAME_LEGACY_CN: CodeDoc(
        severity="warning",
        meaning="The name matched only the subject CN (no SAN); browsers reject this.",
        action="Reissue the certificate with the name in subjectAltName.",
    ),
    FindingCode.SELF_SIGNED: CodeDoc(
        severity="critical",
        meaning="The leaf is self-signed and not trusted.",
        action=(
            "Use a certificate from a trusted CA, or add it to the trust store (--ca-file) if it is"
            " an internal endpoint."
        ),
    ),
    FindingCode.UNTRUSTED_ROOT: CodeDoc(
        severity="critical",
        meaning="The chain ends at a root outside the trust store.",
        action=(
            "Use a publicly trusted CA, or add the internal root with --ca-file / the configured "
            "trust store."
        ),
    ),
    FindingCode.INCOMPLETE_CHAIN: CodeDoc(
        severity=(
            "warning when the AIA-fetched intermediate completes a trusted chain; critical when it "
            "cannot be completed"
        ),
        meaning="The server does not send an intermediate it needs.",
        action="Serve the full chain (leaf then intermediates), e.g. fullchain.pem.",
    ),
    FindingCode.UNTRUSTED: CodeDoc(
        severity="critical",
        meaning=(
            "Verification fails for a reason no other finding states (issuer not a CA, path length,"
            " verifier's own reason)."
        ),
        action=(
            "Read the message and the chain's error_detail; usually reissue from a proper CA chain."
        ),
    ),
    FindingCode.CHAIN_MISORDERED: CodeDoc(
        severity="warning",
        meaning="Served certificates are out of path order.",
        action="Serve the leaf first, then each issuer in order.",
    ),
    FindingCode.CHAIN_OVERSIZED: CodeDoc(
        severity="warning",
        meaning="The certificate list exceeds 102,400 bytes (OpenSSL's default max_cert_list).",
        action="Serve only the leaf and the intermediates the path needs.",
    ),
    FindingCode.UNNEEDED_CERTIFICATE: CodeDoc(
        severity="info",
        meaning="A served certificate is not on the verified path.",
        action="Remove it from the served chain.",
    ),
    FindingCode.ROOT_SERVED: CodeDoc(
        severity="info",
        meaning="The server sends the trust anchor itself.",
        action="Remove the root from the served chain (clients have it).",
    ),
    FindingCode.DUPLICATE_CERTIFICATE: CodeDoc(
        severity="info",
        meaning="A certificate is sent twice.",
        action="Remove the duplicate from the chain file.",
    ),
    FindingCode.WEAK_KEY: CodeDoc(
        severity="critical",
        meaning="RSA < 2048 bits, EC < 256 bits (policy minimums) or DSA on a served certificate.",
        action="Reissue with an RSA 2048+ or EC P-256+ key.",
    ),
    FindingCode.WEAK_SIGNATURE: CodeDoc(
        severity="critical",
        meaning="A served certificate (not a self-signed root) is signed with MD5 or SHA-1.",
        action="Reissue with a SHA-256 (or better) signature.",
    ),
    FindingCode.VALIDITY_TOO_LONG: CodeDoc(
        severity="warning for publicly trusted chains; info for private ones",
        meaning="The leaf is valid longer than the CA/B Forum limit for its issue date.",
        action="Reissue with a shorter validity (398 days or less today).",
    ),
    FindingCode.NO_SAN: CodeDoc(
        severity="warning",
        meaning="The leaf has no DNS or IP subjectAltName.",
        action="Reissue with the names in subjectAltName.",
    ),
    FindingCode.LEAF_IS_CA: CodeDoc(
        severity="warning",
        meaning="The leaf has basicConstraints cA=TRUE.",
        action="Reissue the leaf as an end-entity certificate.",
    ),
    FindingCode.MISSING_SERVER_AUTH_EKU: CodeDoc(
        severity="critical",
        meaning="The leaf's extendedKeyUsage excludes serverAuth; no TLS client accepts it.",
        action="Reissue with the serverAuth purpose.",
    ),
    FindingCode.MUST_STAPLE_NOT_STAPLED: CodeDoc(
        severity="critical",
        meaning="A must-staple leaf was served without an OCSP staple.",
        action="Enable OCSP stapling on the server (nginx ssl_stapling on).",
    ),
    FindingCode.PRECERTIFICATE_SERVED: CodeDoc(
        severity="critical",
        meaning="The leaf is a CT precertificate (poison extension).",
        action="Serve the final certificate the CA issued, not the precertificate.",
    ),
    FindingCode.NO_EMBEDDED_SCT: CodeDoc(
        severity="info",
        meaning="A publicly trusted leaf carries no embedded SCTs.",
        action=(
            "Nothing, if SCTs come by TLS extension or staple; else ask the CA for a certificate "
            "with SCTs."
        ),
    ),
    FindingCode.CERTIFICATE_PARSE_PROBLEM: CodeDoc(
        severity="warning",
        meaning="Part of a certificate could not be read.",
        action="Reissue the certificate; tell the CA which field the message names.",
    ),
    FindingCode.REVOKED: CodeDoc(
        severity="critical",
        meaning="A served certificate is revoked (OCSP, CRL or staple).",
        action="Replace the certificate at once with a newly issued one.",
    ),
    FindingCode.MUST_STAPLE_WITHOUT_STAPLE: CodeDoc(
        severity="critical",
        meaning="A must-staple leaf and no staple (revocation check).",
        action="Enable OCSP stapling on the server.",
    ),
    FindingCode.NO_REVOCATION_INFO: CodeDoc(
        severity="warning for the leaf; info for intermediates",
        meaning="The certificate names neither an OCSP responder nor a CRL.",
        action="Nothing to do on the server; prefer a CA that publishes revocation.",
    ),
    FindingCode.OCSP_RESPONDER_UNREACHABLE: CodeDoc(
        severity="warning; info when another method established the certificate as good",
        meaning="The OCSP responder could not be reached.",
        action="Check outbound HTTP to the responder; if it persists, tell the CA.",
    ),
    FindingCode.CRL_UNREACHABLE: CodeDoc(
        severity="warning; info when another method established the certificate as good",
        meaning="The CRL could not be downloaded.",
        action="Check outbound HTTP to the distribution point; if it persists, tell the CA.",
    ),
    FindingCode.OCSP_RESPONSE_STALE: CodeDoc(
        severity="warning; info when another method decided",
        meaning="The OCSP answer is past its nextUpdate.",
        action="Tell the CA; a staple that is stale means the server's stapling cache is stuck.",
    ),
    FindingCode.CRL_STALE: CodeDoc(
        severity="warning; info when another method decided",
        meaning="The CRL is past its nextUpdate.",
        action="Tell the CA; check for a caching proxy serving an old CRL.",
    ),
    FindingCode.OCSP_RESPONSE_INVALID: CodeDoc(
        severity="warning; info when another method decided",
        meaning="The OCSP answer does not parse or verify.",
        action="Tell the CA (or fix the proxy in between).",
    ),
    FindingCode.CRL_INVALID: CodeDoc(
        severity="warning; info when another method decided",
        meaning="The CRL does not parse or verify.",
        action="Tell the CA (or fix the proxy in between).",
    ),
    FindingCode.OCSP_STATUS_UNKNOWN: CodeDoc(
        severity="warning; info when another method decided",
        meaning="The OCSP responder does not know the certificate.",
        action="Check the certificate was issued by that CA; tell the CA.",
    ),
    FindingCode.REVOCATION_ISSUER_MISSING: CodeDoc(
        severity="warning; info when another method decided",
        meaning="The issuer was not available to verify an answer.",
        action="Serve the full chain so the issuer is known.",
    ),
    FindingCode.OCSP_STAPLE_INVALID: CodeDoc(
        severity="warning",
        meaning="The stapled OCSP response does not parse or verify.",
        action="Restart or fix the server's stapling; check its issuer file.",
    ),
    FindingCode.OCSP_STAPLE_STALE: CodeDoc(
        severity="warning",
        meaning="The stapled OCSP response is past its nextUpdate.",
        action=(
            "The server's stapling cache is stuck: reload it and check it can reach the responder."
        ),
    ),
    FindingCode.OCSP_STAPLE_UNKNOWN: CodeDoc(
        severity="warning",
        meaning="The stapled response says the responder does not know the certificate.",
        action="Check the server staples for the right certificate.",
    ),
    FindingCode.DEADLINE_REACHED: CodeDoc(
        severity="info",
        meaning=(
            "The endpoint's deadline ran out while its missing issuers were fetched or its "
            "revocation was checked."
        ),
        action="Raise --deadline, or look at why the AIA/OCSP/CRL servers are slow.",
    ),
    FindingCode.FETCH_NOT_ALLOWED: CodeDoc(
        severity="warning, or info when another method established the certificate as good",
        meaning=(
            "A scan on request did not fetch an AIA issuer, OCSP answer or CRL: its URL, one "
            "of its redirects or the address its name resolves to is outside the server's "
            "serve.scan_allow. What it would have told is not checked."
        ),
        action="Add the responder's or distribution point's network to serve.scan_allow, "
        "or check the endpoint from an agent inside its network.",
    ),
    FindingCode.TLS_CONFIG_NOT_ASSESSED: CodeDoc(
        severity="info",
        meaning=(
            "The protocol and cipher probes did not run to the end (no protocol accepted, or the "
            "deadline ran out)."
        ),
        action="Read the message; raise --deadline if it was cut.",
    ),
    FindingCode.PROTOCOL_SSLV2: CodeDoc(
        severity="critical",
        meaning="SSLv2 is accepted (RFC 6176; DROWN).",
        action="Disable SSLv2.",
    ),
    FindingCode.PROTOCOL_SSLV3: CodeDoc(
        severity="critical",
        meaning="SSLv3 is accepted (RFC 7568; POODLE).",
        action="Disable SSLv3.",
    ),
    FindingCode.PROTOCOL_TLS10: CodeDoc(
        severity="warning",
        meaning="TLS 1.0 is accepted (RFC 8996).",
        action="Disable TLS 1.0 (nginx: ssl_protocols TLSv1.2 TLSv1.3).",
    ),
    FindingCode.PROTOCOL_TLS11: CodeDoc(
        severity="warning",
        meaning="TLS 1.1 is accepted (RFC 8996).",
        action="Disable TLS 1.1.",
    ),
    FindingCode.NO_TLS12_OR_TLS13: CodeDoc(
        severity="critical",
        meaning="Neither TLS 1.2 nor TLS 1.3 is accepted.",
        action="Enable TLS 1.2 and 1.3.",
    ),
    FindingCode.NO_TLS13: CodeDoc(
        severity="info",
        meaning="TLS 1.3 is not accepted (RFC 8446).",
        action="Enable TLS 1.3.",
    ),
    FindingCode.CIPHER_NULL: CodeDoc(
        severity="critical",
        meaning="NULL (unencrypted) suites are accepted.",
        action="Remove the NULL suites from the cipher list.",
    ),
    FindingCode.CIPHER_ANONYMOUS: CodeDoc(
        severity="critical",
        meaning="Anonymous (unauthenticated) suites are accepted.",
        action="Remove the aNULL suites from the cipher list.",
    ),
    FindingCode.CIPHER_EXPORT: CodeDoc(
        severity="critical",
        meaning="EXPORT suites are accepted (FREAK).",
        action="Remove the EXPORT suites from the cipher list.",
    ),
    FindingCode.CIPHER_RC4: CodeDoc(
        severity="critical",
        meaning="RC4 suites are accepted (RFC 7465).",
        action="Remove the RC4 suites.",
    ),
    FindingCode.CIPHER_RC2: CodeDoc(
        severity="critical",
        meaning="RC2 suites are accepted.",
        action="Remove the RC2 suites.",
    ),
    FindingCode.CIPHER_DES: CodeDoc(
        severity="critical",
        meaning="Single-DES suites are accepted.",
        action="Remove the DES suites.",
    ),
    FindingCode.CIPHER_MD5_MAC: CodeDoc(
        severity="critical",
        meaning="Suites with an MD5 MAC are accepted.",
        action="Remove the MD5 suites.",
    ),
    FindingCode.CIPHER_3DES: CodeDoc(
        severity="warning",
        meaning="3DES suites are accepted (SWEET32).",
        action="Remove the 3DES suites.",
    ),
    FindingCode.NO_FORWARD_SECRECY: CodeDoc(
        severity="warning",
        meaning="No accepted suite has forward secrecy.",
        action="Offer ECDHE suites (Mozilla intermediate profile).",
    ),
    FindingCode.PARTIAL_FORWARD_SECRECY: CodeDoc(
        severity="info",
        meaning="Some accepted suites lack forward secrecy.",
        action="Drop the static-RSA key exchange suites.",
    ),
    FindingCode.NO_AEAD: CodeDoc(
        severity="warning",
        meaning="No accepted suite is AEAD (GCM, CCM, ChaCha20-Poly1305).",
        action="Offer AEAD suites.",
    ),
    FindingCode.CIPHER_CBC: CodeDoc(
        severity="info",
        meaning="CBC-mode suites are accepted.",
        action="Drop the CBC suites where clients allow (Mozilla intermediate).",
    ),
    FindingCode.CIPHER_SHA1_MAC: CodeDoc(
        severity="info",
        meaning="Suites with a SHA-1 MAC are accepted.",
        action="Drop them where clients allow.",
    ),
    FindingCode.NO_SERVER_CIPHER_ORDER: CodeDoc(
        severity="info",
        meaning="The server follows the client's suite order (TLS 1.2 and below).",
        action=(
            "Enable server cipher preference (nginx ssl_prefer_server_ciphers on) if you keep weak "
            "suites."
        ),
    ),
    FindingCode.DH_PARAMS_INSECURE: CodeDoc(
        severity="critical",
        meaning="DHE uses a prime below 1024 bits (Logjam).",
        action="Use 2048-bit or larger DH parameters, or drop DHE.",
    ),
    FindingCode.DH_PARAMS_WEAK: CodeDoc(
        severity="warning",
        meaning="DHE uses a prime below 2048 bits.",
        action="Use 2048-bit or larger DH parameters (RFC 7919 ffdhe2048).",
    ),
    FindingCode.WEAK_KEY_EXCHANGE_GROUP: CodeDoc(
        severity="warning",
        meaning="A key-exchange group weaker than 2048-bit RSA is accepted (NIST SP 800-57).",
        action="Restrict the groups to X25519, P-256 and stronger.",
    ),
    FindingCode.NO_FALLBACK_SCSV: CodeDoc(
        severity="warning",
        meaning="A downgraded hello with TLS_FALLBACK_SCSV is accepted (RFC 7507).",
        action="Upgrade the TLS library (any current OpenSSL honours the SCSV).",
    ),
    FindingCode.INSECURE_RENEGOTIATION: CodeDoc(
        severity="critical",
        meaning="The server does not answer renegotiation_info (RFC 5746; CVE-2009-3555).",
        action="Upgrade the TLS library.",
    ),
    FindingCode.TLS_COMPRESSION: CodeDoc(
        severity="critical",
        meaning="TLS (DEFLATE) compression is accepted (CRIME).",
        action="Disable TLS compression.",
    ),
    FindingCode.HEARTBLEED: CodeDoc(
        severity="critical",
        meaning="The server answers a heartbeat that claims more than it carries (CVE-2014-0160).",
        action="Upgrade OpenSSL at once, then rekey and revoke the certificate.",
    ),
    FindingCode.NO_HSTS: CodeDoc(
        severity="info",
        meaning="The HTTPS answer carries no valid Strict-Transport-Security header (RFC 6797).",
        action="Send Strict-Transport-Security: max-age=31536000.",
    ),
    FindingCode.HSTS_SHORT_MAX_AGE: CodeDoc(
        severity="info",
        meaning="HSTS max-age is below 180 days.",
        action="Raise max-age to at least 15552000 (A+ needs it).",
    ),
    FindingCode.TLS_PROBE_ANOMALY: CodeDoc(
        severity="info",
        meaning="A malformed reply or a suite that was not offered was met while probing.",
        action="Nothing, usually; report it if the grade looks wrong.",
    ),
}
"""The documentation of every code, in the order of the table in docs/finding-codes.md."""
