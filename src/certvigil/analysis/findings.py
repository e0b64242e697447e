"""The rules that turn facts and verdicts into findings with stable codes and severities.

Codes (stable; JSON, the store and alert rules key on them):

============================  ==========  ==============================================
code                          severity    when
============================  ==========  ==============================================
``malformed_certificate``     critical    served bytes are not a certificate
``no_certificate``            critical    the handshake carried no certificate
``expired``                   critical    a certificate on the path is past notAfter
                              warning     ... a served one that the path does not need
``not_yet_valid``             critical    a certificate on the path is before notBefore
                              warning     ... a served one that the path does not need
``expires_soon``              critical    on the path, within a critical expiry
                                          threshold (7 and 1 days by default)
                              warning     ... within a warning one (30, 14 days)
``hostname_mismatch``         critical    the leaf does not cover the name
``hostname_legacy_cn``        warning     the name matched only the subject CN
``self_signed``               critical    the leaf is self-signed and not trusted
``untrusted_root``            critical    the chain ends at a root outside the store
``incomplete_chain``          warning     an intermediate is missing; fetched via AIA it
                                          completes the chain (browsers cope, most
                                          clients fail)
                              critical    ... and it could not be completed
``untrusted``                 critical    verification fails for another reason (an
                                          issuer that is not a CA, a path longer than
                                          a pathLenConstraint, an expired or SHA-1
                                          certificate that was not served, or the
                                          verifier's own reason)
``chain_misordered``          warning     served certificates out of path order
``unneeded_certificate``      info        a served certificate not on the path
``root_served``               info        the server sends the trust anchor
``duplicate_certificate``     info        a certificate is sent twice
``weak_key``                  critical    RSA < 2048 bits, EC < 256 bits, or DSA, on a
                                          served certificate
``weak_signature``            critical    MD5 or SHA-1 signature on a served certificate
                                          that is not a self-signed root
``validity_too_long``         warning     leaf validity beyond the CA/B Forum limit for
                                          its issue date (publicly trusted chains)
                              info        ... on a chain to a private anchor
``no_san``                    warning     the leaf has no subjectAltName
``leaf_is_ca``                warning     the leaf has basicConstraints cA=TRUE
``missing_server_auth_eku``   critical    the leaf's EKU does not allow serverAuth
``must_staple_not_stapled``   critical    must-staple leaf, no OCSP staple sent
``precertificate_served``     critical    the leaf carries the CT poison extension
``no_embedded_sct``           info        publicly trusted leaf without embedded SCTs
``certificate_parse_problem`` warning     part of a certificate could not be read
============================  ==========  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial

from certvigil.analysis.bounded import make_room
from certvigil.analysis.certificate import kept_certificates
from certvigil.analysis.chain import CAUSE_KINDS, ChainProblemKind, ChainVerdict
from certvigil.analysis.codes import FindingCode
from certvigil.analysis.days_remaining import days_remaining
from certvigil.analysis.hostname import HostnameMatch, MatchedBy
from certvigil.analysis.model import CertificateFacts, Finding, KeyType, Severity
from certvigil.analysis.policy import AnalysisPolicy

__all__ = [
    "certificate_findings",
    "chain_findings",
    "hostname_findings",
    "sort_findings",
    "untrusted_causes",
]

_ONE_SECOND = timedelta(seconds=1)
_MD2_MD4_RSA = {"1.2.840.113549.1.1.2", "1.2.840.113549.1.1.3"}  # OIDs cryptography cannot name
_SERVER_AUTH_NAMES = {"serverAuth", "anyExtendedKeyUsage"}


def certificate_findings(
    certificates: Sequence[CertificateFacts],
    *,
    now: datetime,
    policy: AnalysisPolicy,
    path_indexes: Sequence[int],
    is_public: bool,
    has_ocsp_staple: bool | None = None,
    trusted_ignoring_validity: bool = False,
) -> list[Finding]:
    """Findings about the served certificates themselves.

    Args:
        certificates: Facts of the served certificates, leaf first.
        now: The evaluation time.
        policy: Thresholds and minimums.
        path_indexes: Served positions on the (verified or walked) path.
        is_public: The chain ends at a public root programme's anchor.
        has_ocsp_staple: Whether the server stapled an OCSP response; ``None`` when
            unknown (offline analysis), which skips the must-staple rule.
        trusted_ignoring_validity: The chain is trusted apart from time
            (``ChainReport.trusted_ignoring_validity``): the expired or not yet valid
            finding says so, as the one cause of the failed trust.

    Returns:
        The findings, in chain order.
    """
    findings: list[Finding] = []
    on_path = set(path_indexes) | {0}
    for index, facts in enumerate(certificates):
        findings += _validity_findings(
            index, facts, now, policy, index in on_path, trusted_ignoring_validity
        )
        findings += _kept(
            (index, id(facts), id(policy)),
            facts,
            policy,
            partial(_certificate_only, index, facts, policy),
        )
    if certificates:
        leaf = certificates[0]
        findings += _kept(
            (-1, id(leaf), id(policy), is_public, has_ocsp_staple),
            leaf,
            policy,
            partial(_leaf_findings, leaf, policy, is_public, has_ocsp_staple),
        )
    return findings


# The findings that do not depend on ``now`` (key, signature, parse problems, the leaf's
# own rules) are the same for every report of a certificate: kept by the facts object
# (``parse_certificate`` hands out one per certificate while it keeps it), position and
# policy. The entry holds both objects, so their ids cannot be reused while it exists,
# and checks them on use; two entries for each certificate kept
# (``certificate.kept_certificates``), at least _KEPT_MIN, the oldest going first.
_KEPT_MIN = 4096
_KEPT: dict[tuple[object, ...], tuple[CertificateFacts, AnalysisPolicy, tuple[Finding, ...]]] = {}


def _kept(
    key: tuple[object, ...],
    facts: CertificateFacts,
    policy: AnalysisPolicy,
    compute: Callable[[], list[Finding]],
) -> tuple[Finding, ...]:
    found = _KEPT.get(key)
    if found is not None and found[0] is facts and found[1] is policy:
        return found[2]
    findings = tuple(compute())
    make_room(_KEPT, max(_KEPT_MIN, 2 * kept_certificates()))
    _KEPT[key] = (facts, policy, findings)
    return findings


def _certificate_only(index: int, facts: CertificateFacts, policy: AnalysisPolicy) -> list[Finding]:
    findings = _crypto_findings(index, facts, policy)
    for problem in facts.parse_problems:
        findings.append(
            Finding(
                code=FindingCode.CERTIFICATE_PARSE_PROBLEM,
                severity=Severity.WARNING,
                message=f"{_name(index, facts)}: {problem}",
                cert_index=index,
            )
        )
    return findings


def _validity_findings(
    index: int,
    facts: CertificateFacts,
    now: datetime,
    policy: AnalysisPolicy,
    on_path: bool,
    trusted_ignoring_validity: bool,
) -> list[Finding]:
    name = _name(index, facts)
    stale = Severity.CRITICAL if on_path else Severity.WARNING
    if not on_path:
        spare = early = " (it is not needed for the path: remove it)"
    elif trusted_ignoring_validity:
        spare = "; clients refuse it, and the chain is otherwise trusted: renewing it fixes it"
        early = "; clients refuse it until then, and the chain is otherwise trusted"
    else:
        spare = early = "; clients refuse it"
    if now > facts.not_after_utc:
        days = -days_remaining(facts.not_after_utc, now=now)
        return [
            Finding(
                code=FindingCode.EXPIRED,
                severity=stale,
                message=f"{name} expired {_ago(days)} on {_when(facts.not_after_utc)}{spare}",
                cert_index=index,
            )
        ]
    if now < facts.not_before_utc:
        return [
            Finding(
                code=FindingCode.NOT_YET_VALID,
                severity=stale,
                message=f"{name} is not valid before {_when(facts.not_before_utc)}{early}",
                cert_index=index,
            )
        ]
    if not on_path:
        return []
    remaining = facts.not_after_utc - now
    threshold = policy.expiry_crossed(remaining, facts.not_after_utc - facts.not_before_utc)
    if threshold is None:
        return []
    which = (
        f"{threshold.days:g}-day" if threshold.days is not None else f"{threshold.label} lifetime"
    )
    return [
        Finding(
            code=FindingCode.EXPIRES_SOON,
            severity=threshold.severity,
            message=(
                f"{name} expires in {_duration(remaining)} on {_when(facts.not_after_utc)} "
                f"(within the {which} threshold)"
            ),
            cert_index=index,
        )
    ]


def _crypto_findings(index: int, facts: CertificateFacts, policy: AnalysisPolicy) -> list[Finding]:
    findings: list[Finding] = []
    name = _name(index, facts)
    weak_key = (
        (facts.key_type is KeyType.RSA and facts.key_bits < policy.min_rsa_bits)
        or (facts.key_type is KeyType.EC and facts.key_bits < policy.min_ec_bits)
        or facts.key_type is KeyType.DSA
    )
    if weak_key:
        minimum = {KeyType.RSA: policy.min_rsa_bits, KeyType.EC: policy.min_ec_bits}
        rule = (
            f"at least {minimum[facts.key_type]} bits are required"
            if facts.key_type in minimum
            else "DSA keys are not accepted for TLS"
        )
        findings.append(
            Finding(
                code=FindingCode.WEAK_KEY,
                severity=Severity.CRITICAL,
                message=f"{name} has a {facts.key_bits}-bit {facts.key_type.value.upper()} key; "
                f"{rule}",
                cert_index=index,
            )
        )
    weak_hash = (
        facts.signature_hash in policy.weak_signature_hashes
        or facts.signature_algorithm
        in {
            "1.2.840.113549.1.1.2",  # md2WithRSAEncryption
            "1.2.840.113549.1.1.3",  # md4WithRSAEncryption
        }
    )
    if weak_hash and not facts.is_self_signed:
        findings.append(
            Finding(
                code=FindingCode.WEAK_SIGNATURE,
                severity=Severity.CRITICAL,
                message=f"{name} is signed with {facts.signature_algorithm}, which clients reject",
                cert_index=index,
            )
        )
    return findings


def _leaf_findings(
    leaf: CertificateFacts,
    policy: AnalysisPolicy,
    is_public: bool,
    has_ocsp_staple: bool | None,
) -> list[Finding]:
    findings: list[Finding] = []
    name = _name(0, leaf)

    def add(code: str, severity: Severity, message: str) -> None:
        findings.append(Finding(code=code, severity=severity, message=message, cert_index=0))

    limit = policy.validity_limit_days(leaf.not_before_utc)
    validity = leaf.not_after_utc - leaf.not_before_utc + _ONE_SECOND
    if limit is not None and validity > timedelta(days=limit) and not leaf.is_self_signed:
        add(
            FindingCode.VALIDITY_TOO_LONG,
            Severity.WARNING if is_public else Severity.INFO,
            f"{name} is valid for {leaf.validity_days} days; leaves issued on "
            f"{leaf.not_before_utc:%Y-%m-%d} may be valid for at most {limit} days"
            + ("" if is_public else " under the CA/B Forum rules (this chain is private)"),
        )
    if not leaf.san_dns and not leaf.san_ip:
        add(
            FindingCode.NO_SAN,
            Severity.WARNING,
            f"{name} has no DNS or IP subjectAltName; browsers ignore the subject CN",
        )
    if leaf.is_ca:
        add(
            FindingCode.LEAF_IS_CA,
            Severity.WARNING,
            f"{name} is marked as a CA (basicConstraints cA)",
        )
    if leaf.extended_key_usage and not _SERVER_AUTH_NAMES & set(leaf.extended_key_usage):
        purposes = ", ".join(leaf.extended_key_usage)
        add(
            FindingCode.MISSING_SERVER_AUTH_EKU,
            Severity.CRITICAL,
            f"{name} is for {purposes}, not serverAuth; TLS clients refuse it",
        )
    if leaf.must_staple and has_ocsp_staple is False:
        add(
            FindingCode.MUST_STAPLE_NOT_STAPLED,
            Severity.CRITICAL,
            f"{name} requires OCSP stapling (must-staple) but the server sent no staple; "
            "Firefox refuses the connection",
        )
    if leaf.is_precertificate:
        add(
            FindingCode.PRECERTIFICATE_SERVED,
            Severity.CRITICAL,
            f"{name} is a CT precertificate (poison extension), which no client accepts",
        )
    if is_public and leaf.sct_count == 0 and not leaf.is_precertificate:
        add(
            FindingCode.NO_EMBEDDED_SCT,
            Severity.INFO,
            f"{name} has no embedded SCTs; Chrome and Safari then need SCTs from the TLS "
            "handshake or the OCSP staple",
        )
    return findings


def chain_findings(verdict: ChainVerdict, stated: Sequence[Finding] = ()) -> list[Finding]:
    """Findings from the chain verdict's problems (validity is judged per certificate).

    A problem that a certificate finding already states (an expired or SHA-1-signed
    served certificate, a leaf whose extendedKeyUsage excludes serverAuth) is not said
    again: that finding is the root cause, and the untrusted chain its consequence.

    Args:
        verdict: The chain verdict.
        stated: The certificate findings already made for the same chain.

    Returns:
        The findings, in chain order.
    """
    return [f for f, is_new in _chain_judgements(verdict, stated) if is_new]


def untrusted_causes(verdict: ChainVerdict, stated: Sequence[Finding] = ()) -> tuple[str, ...]:
    """The finding codes that say why the chain is not trusted, without repeats.

    Args:
        verdict: The chain verdict.
        stated: The certificate findings made for the same chain.

    Returns:
        E.g. ``("expired",)``, ``("self_signed",)``, ``("weak_signature",)``; empty
        when the served chain is trusted.
    """
    if verdict.report.is_trusted:
        return ()
    codes = [
        f.code
        for (f, _), problem in zip(
            _chain_judgements(verdict, stated), verdict.problems, strict=True
        )
        if problem.kind in CAUSE_KINDS
    ]
    return tuple(dict.fromkeys(codes))


def _chain_judgements(
    verdict: ChainVerdict, stated: Sequence[Finding]
) -> list[tuple[Finding, bool]]:
    """For each problem, in order: the finding that states it, and whether it is new."""
    by_code_index = {(f.code, f.cert_index): f for f in stated}
    judged: list[tuple[Finding, bool]] = []
    completed = verdict.report.would_verify_with_fetched
    for problem in verdict.problems:
        kind = problem.kind
        index = problem.cert_index
        existing = None
        if index is not None:
            for code in _STATED_BY.get(kind, ()):
                existing = by_code_index.get((code, index))
                if existing is not None:
                    break
        if existing is not None:
            judged.append((existing, False))
            continue
        code, severity = _CHAIN_CODES.get(kind, (FindingCode.UNTRUSTED, Severity.CRITICAL))
        if kind is ChainProblemKind.MISSING_INTERMEDIATE and not completed:
            severity = Severity.CRITICAL
        finding = Finding(
            code=code, severity=severity, message=_capitalise(problem.message), cert_index=index
        )
        judged.append((finding, True))
    return judged


# Problems that a certificate finding on the same served certificate already states.
_STATED_BY: dict[ChainProblemKind, tuple[str, ...]] = {
    ChainProblemKind.NOT_VALID_NOW: (FindingCode.EXPIRED, FindingCode.NOT_YET_VALID),
    ChainProblemKind.FORBIDDEN_SIGNATURE: (FindingCode.WEAK_SIGNATURE,),
    ChainProblemKind.NOT_FOR_SERVERS: (FindingCode.MISSING_SERVER_AUTH_EKU,),
}

_CHAIN_CODES: dict[ChainProblemKind, tuple[str, Severity]] = {
    ChainProblemKind.SELF_SIGNED_LEAF: (FindingCode.SELF_SIGNED, Severity.CRITICAL),
    ChainProblemKind.UNTRUSTED_ROOT: (FindingCode.UNTRUSTED_ROOT, Severity.CRITICAL),
    ChainProblemKind.MISSING_INTERMEDIATE: (FindingCode.INCOMPLETE_CHAIN, Severity.WARNING),
    ChainProblemKind.VERIFICATION_FAILED: (FindingCode.UNTRUSTED, Severity.CRITICAL),
    ChainProblemKind.MISORDERED: (FindingCode.CHAIN_MISORDERED, Severity.WARNING),
    ChainProblemKind.UNNEEDED_CERTIFICATE: (FindingCode.UNNEEDED_CERTIFICATE, Severity.INFO),
    ChainProblemKind.ROOT_SERVED: (FindingCode.ROOT_SERVED, Severity.INFO),
    ChainProblemKind.DUPLICATE_CERTIFICATE: (FindingCode.DUPLICATE_CERTIFICATE, Severity.INFO),
}


def hostname_findings(match: HostnameMatch, leaf: CertificateFacts) -> list[Finding]:
    """Findings from matching the expected name against the leaf.

    Args:
        match: The match result.
        leaf: The leaf's facts (to list what it does cover).

    Returns:
        ``hostname_mismatch`` (critical), ``hostname_legacy_cn`` (warning) or nothing.
    """
    if not match.matches:
        covered = [*leaf.san_dns, *leaf.san_ip]
        shown = ", ".join(covered[:5]) + (
            f" and {len(covered) - 5} more" if len(covered) > 5 else ""
        )
        what = f"it covers {shown}" if covered else f'it has no SAN (CN "{leaf.subject_cn}")'
        return [
            Finding(
                code=FindingCode.HOSTNAME_MISMATCH,
                severity=Severity.CRITICAL,
                message=f'The certificate does not cover "{match.name}": {what}',
                cert_index=0,
            )
        ]
    if match.matched_by is MatchedBy.LEGACY_CN:
        return [
            Finding(
                code=FindingCode.HOSTNAME_LEGACY_CN,
                severity=Severity.WARNING,
                message=f'"{match.name}" matched only by legacy CN "{match.matched_identifier}" '
                "(no SAN); browsers reject this",
                cert_index=0,
            )
        ]
    return []


def sort_findings(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """Most severe first; equal severities keep their order (chain order)."""
    return tuple(sorted(findings, key=lambda f: -f.severity.rank))


def _name(index: int, facts: CertificateFacts) -> str:
    label = facts.subject_cn or facts.subject or f"serial {facts.serial_hex}"
    role = "The leaf" if index == 0 else f"Certificate {index}"
    return f'{role} "{label}"'


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _ago(days: int) -> str:
    return "today" if days == 0 else f"{days} day{'s' if days != 1 else ''} ago"


def _duration(remaining: timedelta) -> str:
    if remaining >= timedelta(days=1):
        days = int(remaining.total_seconds() // 86400)  # = days_remaining, as it is positive
        return f"{days} day{'s' if days != 1 else ''}"
    hours = int(remaining.total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}" if hours else "less than an hour"


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]
