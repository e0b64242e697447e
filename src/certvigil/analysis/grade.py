"""SSL Labs-style letter grade from the TLS configuration and the certificate verdicts.

The numeric part follows the SSL Server Rating Guide (2009 edition): protocol support
30 %, key exchange 30 %, cipher strength 40 %, then a letter.  The caps SSL Labs added
later (2013-2020) and the A+/A- adjustments are applied as listed rules, each with
its reason, so the grade always explains itself.  docs/grading.md lists every rule
and its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from certvigil.analysis.codes import FindingCode
from certvigil.analysis.model import CertificateFacts, ChainReport, EndpointReport, KeyType
from certvigil.analysis.tls_config import (
    HSTS_MIN_MAX_AGE_S,
    TlsConfigReport,
    accepted_tls_suites,
)
from certvigil.observed.tls_config import TlsConfigObservation
from certvigil.tls.cipher_suites import CipherSuite
from certvigil.tls.records import TlsProtocol

GRADES: tuple[str, ...] = ("A+", "A", "A-", "B", "C", "D", "E", "F")
"""Letter grades, best first; T and M stand outside this order."""

_PROTOCOL_SCORES = {
    TlsProtocol.SSL_2_0: 0,
    TlsProtocol.SSL_3_0: 80,
    TlsProtocol.TLS_1_0: 90,
    TlsProtocol.TLS_1_1: 95,
    TlsProtocol.TLS_1_2: 100,
    TlsProtocol.TLS_1_3: 100,
}
_EC_KEY_RSA_EQUIVALENT = ((512, 15360), (384, 7680), (256, 3072), (224, 2048), (160, 1024))


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateVerdicts:
    """The certificate facts the grade needs, as plain data.

    Attributes:
        is_trusted: A path to a trust anchor verified, with intermediates fetched from
            AIA CA-issuers URLs counting as SSL Labs counts them; ``None`` when unknown.
        hostname_matches: The leaf covers the name asked for; ``None`` when unknown.
        is_expired: The leaf is past its notAfter at evaluation time.
        is_not_yet_valid: The leaf is before its notBefore at evaluation time.
        trusted_ignoring_validity: The chain would verify but for the certificates'
            dates (``ChainReport.trusted_ignoring_validity``): the expiry is then the
            one trust issue; ``None`` when unknown.
        untrusted_causes: The codes of the findings that say why the chain is not trusted
            (``ChainReport.untrusted_causes``); a cause with a rule of its own (expiry,
            a SHA-1 or MD5 signature) is not repeated as ``certificate_not_trusted``.
        is_chain_incomplete: The server leaves out an intermediate that the AIA
            CA-issuers URL supplies (SSL Labs: "Chain issues: Incomplete", capped at B).
        is_revoked: OCSP or CRL says revoked; ``None`` when not checked or unknown.
        key_type: The leaf's key algorithm, ``None`` when unknown.
        key_bits: The leaf's key size, ``None`` when unknown.
        signature_hash: The leaf signature's hash (``"sha256"``), ``None`` when
            unknown or not applicable (Ed25519).
    """

    is_trusted: bool | None = None
    hostname_matches: bool | None = None
    is_expired: bool = False
    is_not_yet_valid: bool = False
    trusted_ignoring_validity: bool | None = None
    untrusted_causes: tuple[str, ...] = ()
    is_chain_incomplete: bool = False
    is_revoked: bool | None = None
    key_type: KeyType | None = None
    key_bits: int | None = None
    signature_hash: str | None = None


def certificate_verdicts(
    report: EndpointReport, *, revoked: bool | None = None
) -> CertificateVerdicts:
    """The grade's certificate inputs from a scan's ``EndpointReport``.

    Args:
        report: The judged endpoint.
        revoked: The revocation verdict, ``None`` when not checked.

    Returns:
        The verdicts; fields stay ``None`` where the report has no answer.
    """
    return verdicts_from(
        leaf=report.leaf,
        chain=report.chain,
        hostname_matches=report.hostname_matches,
        now=report.evaluated_at_utc,
        revoked=revoked,
    )


def verdicts_from(
    *,
    leaf: CertificateFacts | None,
    chain: ChainReport | None,
    hostname_matches: bool | None,
    now: datetime,
    revoked: bool | None,
) -> CertificateVerdicts:
    """The grade's certificate inputs from the parts of a judgement.

    Args:
        leaf: The leaf's facts, ``None`` when nothing was served.
        chain: The chain verdict, ``None`` when nothing was served.
        hostname_matches: Whether the leaf covers the name asked for.
        now: The evaluation time.
        revoked: The revocation verdict, ``None`` when not checked.

    Returns:
        The verdicts; fields stay ``None`` where there is no answer.
    """
    completed = chain is not None and not chain.is_trusted and chain.would_verify_with_fetched
    return CertificateVerdicts(
        is_trusted=(chain.is_trusted or completed) if chain is not None else None,
        hostname_matches=hostname_matches,
        is_expired=leaf is not None and now > leaf.not_after_utc,
        is_not_yet_valid=leaf is not None and now < leaf.not_before_utc,
        trusted_ignoring_validity=chain.trusted_ignoring_validity if chain is not None else None,
        untrusted_causes=chain.untrusted_causes if chain is not None else (),
        is_chain_incomplete=completed,
        is_revoked=revoked,
        key_type=leaf.key_type if leaf else None,
        key_bits=leaf.key_bits if leaf else None,
        signature_hash=leaf.signature_hash if leaf else None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class GradeRule:
    """One rule that limited (or raised) the grade.

    Attributes:
        code: Stable identifier, listed in docs/grading.md.
        grade: The cap it sets (``"B"``), ``"A-"`` for a warning, ``"A+"`` for the
            bonus, ``"T"`` or ``"M"`` for the certificate grades.
        reason: One sentence naming the fact.
    """

    code: str
    grade: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GradeReport:
    """The grade and everything that shaped it.

    Attributes:
        grade: ``A+`` .. ``F``, or ``T`` (certificate not trusted) or ``M``
            (certificate does not match the name).
        grade_ignoring_certificate: The grade the TLS configuration alone earns.
        grade_if_trusted: With grade ``T`` or ``M``, the grade the server would get once
            the trust or name issue is fixed (SSL Labs' "if trust issues are ignored"):
            the configuration's grade with the other certificate caps; ``None`` for
            every other grade.
        score: The 0-100 numeric score before caps.
        protocol_score: Protocol-support score (0-100).
        key_exchange_score: Key-exchange score (0-100).
        cipher_score: Cipher-strength score (0-100).
        rules: Every cap, warning, bonus and certificate rule applied, worst first.
    """

    grade: str
    grade_ignoring_certificate: str
    score: int
    protocol_score: int
    key_exchange_score: int
    cipher_score: int
    rules: tuple[GradeRule, ...] = ()
    grade_if_trusted: str | None = None


def _letter(score: int) -> str:
    for threshold, letter in ((80, "A"), (65, "B"), (50, "C"), (35, "D"), (20, "E")):
        if score >= threshold:
            return letter
    return "F"


def _cipher_bits_score(bits: int) -> int:
    if bits == 0:
        return 0
    if bits < 128:
        return 20
    if bits < 256:
        return 80
    return 100


def _key_exchange_bits_score(bits: int) -> int:
    if bits < 512:
        return 20
    if bits < 1024:
        return 40
    if bits < 2048:
        return 80
    if bits < 4096:
        return 90
    return 100


def _certificate_rsa_equivalent(verdicts: CertificateVerdicts) -> int | None:
    if verdicts.key_bits is None or verdicts.key_type is None:
        return None
    if verdicts.key_type in (KeyType.RSA, KeyType.DSA):
        return verdicts.key_bits
    for ec_bits, rsa_bits in _EC_KEY_RSA_EQUIVALENT:
        if verdicts.key_bits >= ec_bits:
            return rsa_bits
    return verdicts.key_bits * 4


def _worst(grades: list[str]) -> str:
    return max(grades, key=GRADES.index, default="A")


def _preferred(observation: TlsConfigObservation) -> CipherSuite | None:
    """The suite a capable client gets: the server's first choice in its best protocol."""
    suites = accepted_tls_suites(observation)
    by_code = {s.code: s for s in suites}
    for protocol in (
        TlsProtocol.TLS_1_3,
        TlsProtocol.TLS_1_2,
        TlsProtocol.TLS_1_1,
        TlsProtocol.TLS_1_0,
        TlsProtocol.SSL_3_0,
    ):
        support = observation.support(protocol)
        if support.is_accepted and support.cipher_suites:
            return by_code.get(support.cipher_suites[0])
    return None


def _caps(
    observation: TlsConfigObservation,
    config: TlsConfigReport,
    verdicts: CertificateVerdicts,
    kx_bits: int | None,
) -> list[GradeRule]:
    rules: list[GradeRule] = []

    def cap(code: str, grade: str, reason: str) -> None:
        rules.append(GradeRule(code=code, grade=grade, reason=reason))

    protocols = set(config.protocols)
    suites = accepted_tls_suites(observation)
    modern = protocols & {TlsProtocol.TLS_1_1, TlsProtocol.TLS_1_2, TlsProtocol.TLS_1_3}
    if config.heartbleed:
        cap("heartbleed", "F", "vulnerable to Heartbleed (CVE-2014-0160)")
    if TlsProtocol.SSL_2_0 in protocols:
        cap("sslv2", "F", "SSLv2 is accepted")
    if any(s.is_export for s in suites):
        cap("export_suites", "F", "EXPORT suites are accepted")
    if any(s.is_anonymous for s in suites):
        cap("anonymous_suites", "F", "anonymous suites are accepted")
    if any(s.encryption == "NULL" for s in suites):
        cap("null_suites", "F", "NULL-encryption suites are accepted")
    if config.secure_renegotiation is False:
        cap("insecure_renegotiation", "F", "secure renegotiation (RFC 5746) is not supported")
    if config.dh_prime_bits is not None and config.dh_prime_bits < 1024:
        cap("dh_below_1024", "F", f"DH parameters of {config.dh_prime_bits} bits")
    cert_bits = _certificate_rsa_equivalent(verdicts)
    if cert_bits is not None and cert_bits < 1024:
        cap("key_below_1024", "F", f"the certificate key is {verdicts.key_bits} bits")
    if TlsProtocol.SSL_3_0 in protocols:
        cap("sslv3", "C", "SSLv3 is accepted (POODLE)")
    if config.compression:
        cap("tls_compression", "C", "TLS compression is accepted (CRIME)")
    rc4 = [s for s in suites if "rc4" in s.insecure_reasons]
    if rc4 and modern:
        cap("rc4_modern", "C", "RC4 is accepted with TLS 1.1 or later")
    elif rc4:
        cap("rc4", "B", "RC4 is accepted")
    if modern and any(s.encryption.startswith(("3DES", "IDEA", "DES")) for s in suites):
        cap(
            "64bit_block_modern",
            "C",
            "a 64-bit block cipher (3DES, IDEA) is accepted with TLS 1.1 or later (SWEET32)",
        )
    if not protocols & {TlsProtocol.TLS_1_2, TlsProtocol.TLS_1_3}:
        cap("no_tls12", "C", "TLS 1.2 is not supported")
    if protocols & {TlsProtocol.TLS_1_0, TlsProtocol.TLS_1_1}:
        cap("tls10_tls11", "B", "TLS 1.0 or TLS 1.1 is accepted")
    if config.dh_prime_bits is not None and 1024 <= config.dh_prime_bits < 2048:
        cap("weak_dh", "B", f"DH parameters of {config.dh_prime_bits} bits (below 2048)")
    if cert_bits is not None and 1024 <= cert_bits < 2048:
        cap("key_below_2048", "B", f"the certificate key is {verdicts.key_bits} bits")
    preferred = _preferred(observation)
    if suites and (
        not any(s.has_forward_secrecy for s in suites)
        or (preferred is not None and not preferred.has_forward_secrecy)
    ):
        cap("no_forward_secrecy", "B", "capable clients do not get forward secrecy")
    if suites and (
        not any(s.is_aead for s in suites) or (preferred is not None and not preferred.is_aead)
    ):
        cap("no_aead", "B", "capable clients do not get an AEAD suite")
    if (
        kx_bits is not None
        and kx_bits < 2048
        and not any(r.code.startswith(("weak_dh", "key_below", "dh_below")) for r in rules)
    ):
        cap("weak_key_exchange", "B", f"key exchange of {kx_bits} RSA-equivalent bits")
    if config.fallback_scsv is False:
        cap("no_fallback_scsv", "A-", "TLS_FALLBACK_SCSV downgrade protection is missing")
    return rules


def grade_endpoint(
    observation: TlsConfigObservation,
    config: TlsConfigReport,
    verdicts: CertificateVerdicts,
) -> GradeReport:
    """The SSL Labs-style grade of one endpoint.

    Args:
        observation: The protocol and cipher facts.
        config: Their judgement (``judge_tls_config(observation)``).
        verdicts: The certificate verdicts (see ``certificate_verdicts``).

    Returns:
        The grade, its scores and every rule that shaped it.
    """
    accepted = config.protocols
    scores = [_PROTOCOL_SCORES[p] for p in accepted]
    protocol_score = (max(scores) + min(scores)) // 2 if scores else 0

    suites = accepted_tls_suites(observation)
    kx_candidates = [
        b
        for b in (_certificate_rsa_equivalent(verdicts), config.weakest_group_bits)
        if b is not None
    ]
    kx_bits = min(kx_candidates) if kx_candidates else None
    if any(s.is_anonymous for s in suites):
        kx_score = 0
    elif any(s.is_export for s in suites):
        kx_score = 40
    elif kx_bits is None:
        kx_score = 90  # nothing to measure (no certificate facts): the common 2048-bit case
    else:
        kx_score = _key_exchange_bits_score(kx_bits)

    cipher_score = (
        _cipher_bits_score(config.strongest_bits) + _cipher_bits_score(config.weakest_bits)
    ) // 2
    if 0 in (protocol_score, kx_score, cipher_score):
        score = 0
    else:
        score = round(0.3 * protocol_score + 0.3 * kx_score + 0.4 * cipher_score)

    rules = _caps(observation, config, verdicts, kx_bits)
    letter = _worst([_letter(score), *(r.grade for r in rules)])
    if letter == "A":
        hsts = config.hsts_max_age_s
        if hsts is not None and hsts >= HSTS_MIN_MAX_AGE_S:
            rules.append(
                GradeRule(code="hsts_bonus", grade="A+", reason=f"HSTS with max-age {hsts} s")
            )
            letter = "A+"

    cert_rules = _certificate_rules(verdicts)
    if_trusted = _worst([letter, *(r.grade for r in cert_rules if r.grade in GRADES)])
    final = if_trusted
    if not any(r.grade == "F" for r in cert_rules):  # a certificate F wins over T and M
        final = next((g for g in ("T", "M") if any(r.grade == g for r in cert_rules)), final)
    order = {g: i for i, g in enumerate(("F", "T", "M", "E", "D", "C", "B", "A-", "A", "A+"))}
    all_rules = sorted([*cert_rules, *rules], key=lambda r: order[r.grade])
    return GradeReport(
        grade=final,
        grade_ignoring_certificate=letter,
        grade_if_trusted=if_trusted if final in ("T", "M") else None,
        score=score,
        protocol_score=protocol_score,
        key_exchange_score=kx_score,
        cipher_score=cipher_score,
        rules=tuple(all_rules),
    )


_TIME_CAUSES = frozenset({FindingCode.EXPIRED, FindingCode.NOT_YET_VALID})


def _certificate_rules(verdicts: CertificateVerdicts) -> list[GradeRule]:
    """The certificate's rules: F for revoked or MD5/MD2, T for trust issues, M for the
    name, B for a chain completed only through AIA.

    An expired or not yet valid leaf is a trust issue (T, as SSL Labs grades it since
    2014); when the chain is otherwise trusted it is the only one, and no
    ``certificate_not_trusted`` rule repeats it. Likewise a chain broken only by the
    leaf's SHA-1 (T) or MD5 (F) signature is graded by that rule alone.
    """
    rules: list[GradeRule] = []

    def add(code: str, grade: str, reason: str) -> None:
        rules.append(GradeRule(code=code, grade=grade, reason=reason))

    if verdicts.is_revoked:
        add("certificate_revoked", "F", "the certificate is revoked")
    if verdicts.signature_hash in ("md5", "md2"):
        add("insecure_signature", "F", f"the certificate is signed with {verdicts.signature_hash}")
    if verdicts.is_expired:
        add("certificate_expired", "T", "the certificate has expired")
    if verdicts.is_not_yet_valid:
        add("certificate_not_yet_valid", "T", "the certificate is not valid yet")
    out_of_time = verdicts.is_expired or verdicts.is_not_yet_valid
    causes = set(verdicts.untrusted_causes)
    told = (
        out_of_time
        and (verdicts.trusted_ignoring_validity or (bool(causes) and causes <= _TIME_CAUSES))
    ) or (
        causes == {FindingCode.WEAK_SIGNATURE} and verdicts.signature_hash in ("sha1", "md5", "md2")
    )
    if verdicts.is_trusted is False and not told:
        add("certificate_not_trusted", "T", "no trusted path to a root was found")
    elif verdicts.signature_hash == "sha1":
        add("sha1_signature", "T", "the certificate is signed with SHA-1")
    if verdicts.hostname_matches is False:
        add("hostname_mismatch", "M", "the certificate does not cover the name asked for")
    if verdicts.is_chain_incomplete:
        add(
            "incomplete_chain",
            "B",
            "the server does not send an intermediate; it was fetched from the AIA "
            "CA-issuers URL (chain issues: incomplete)",
        )
    return rules
