"""Chain verdicts: path building and verification, and what exactly is wrong.

The verdict comes from cryptography's WebPKI verifier (``cryptography.x509.verification``)
run against a :class:`TrustStore`. The hostname is judged separately (``hostname.py``):
the verifier is asked for one of the leaf's own names, so a certificate for the wrong
host is reported as a hostname mismatch and not as untrusted. A leaf with no usable SAN
is verified with a client verifier whose EKU rules are set back to serverAuth.

When the verifier refuses, a structural walk (issuer name and key identifier, no
signature checks) over the served, fetched and trusted certificates says why in terms
an operator can act on: which root is untrusted, which intermediate is missing and
where to fetch it, which certificate on the path is expired, signed with SHA-1 or not a
CA, which pathLenConstraint is exceeded. That sentence is ``ChainReport.error``; the
verifier's own words stay in ``error_detail``. When a certificate on the path is outside
its validity period, the chain is verified once more at a moment inside every period:
``trusted_ignoring_validity`` then says whether renewing alone fixes it. Order and
unneeded certificates are read off the verified path, or the walked one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from certvigil.analysis.bounded import make_room
from certvigil.analysis.certificate import (
    PARSE_ERRORS,
    ParsedCertificate,
    kept_certificates,
    parse_certificate,
)
from certvigil.analysis.model import CertificateFacts, ChainReport
from certvigil.analysis.trust import TrustStore, validity_window
from certvigil.targets.ipaddr import parse_ip

__all__ = ["CAUSE_KINDS", "ChainProblem", "ChainProblemKind", "ChainVerdict", "judge_chain"]

_MAX_WALK = 10
_NAME_CONSTRAINTS = ExtensionOID.NAME_CONSTRAINTS.dotted_string


class ChainProblemKind(StrEnum):
    """The kinds of chain problem the findings layer turns into findings."""

    SELF_SIGNED_LEAF = "self_signed_leaf"
    UNTRUSTED_ROOT = "untrusted_root"
    MISSING_INTERMEDIATE = "missing_intermediate"
    NOT_VALID_NOW = "not_valid_now"
    FORBIDDEN_SIGNATURE = "forbidden_signature"
    NOT_FOR_SERVERS = "not_for_servers"
    ISSUER_NOT_CA = "issuer_not_ca"
    PATH_TOO_LONG = "path_too_long"
    VERIFICATION_FAILED = "verification_failed"
    MISORDERED = "misordered"
    UNNEEDED_CERTIFICATE = "unneeded_certificate"
    ROOT_SERVED = "root_served"
    DUPLICATE_CERTIFICATE = "duplicate_certificate"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainProblem:
    """One thing wrong with the served chain.

    Attributes:
        kind: What is wrong.
        message: One sentence naming the certificates concerned.
        cert_index: Served position of the certificate concerned (0 = leaf), ``None``
            for a certificate that was not served (an anchor, a fetched issuer) or the
            chain as a whole.
    """

    kind: ChainProblemKind
    message: str
    cert_index: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainVerdict:
    """The chain report with the problems behind it.

    Attributes:
        report: The verdict as stored and serialised.
        problems: What is wrong, in chain order.
        path_served_indexes: Served positions of the certificates on the verified path
            (or, when none verified, on the walked one), leaf first.
        anchor_is_public: The anchor reached belongs to a public root programme.
    """

    report: ChainReport
    problems: tuple[ChainProblem, ...] = ()
    path_served_indexes: tuple[int, ...] = (0,)
    anchor_is_public: bool = False


def judge_chain(
    served_der: Sequence[bytes],
    *,
    now: datetime,
    trust: TrustStore,
    fetched_der: Sequence[bytes] = (),
    digests: Sequence[bytes] | None = None,
) -> ChainVerdict:
    """Verify a served chain and say precisely what is wrong with it.

    Verdicts are cached per trust store by (chain, fetched issuers), with the validity
    state at the ``now`` they were reached under of every certificate involved (the
    served and fetched ones, and every anchor). ``now`` enters the verification only
    through those states, so the verdict holds at any other ``now`` that finds each
    of them in the same state: a chain reported again an hour later costs no new
    verification, while one that has expired since (or an anchor that has) is judged
    afresh. Verdicts are looked up by the certificates' SHA-256 digests, and a store
    keeps as many chains as ``certificate.kept_certificates()`` (at least
    :data:`_VERDICTS_MIN`), the oldest going first.

    Args:
        served_der: The certificates as served, leaf first; every one must parse
            (see ``certificate.parse_certificate``).
        now: The validation time (aware).
        trust: The anchors.
        fetched_der: Issuers fetched from AIA CA Issuers URLs, to complete the chain.
        digests: The SHA-256 digests of ``served_der`` then ``fetched_der``, when the
            caller has them (``certificate.certificate_facts`` gives them).

    Returns:
        The verdict.

    Raises:
        ValueError: ``served_der`` is empty.
        CertificateLoadError: A certificate does not parse.
    """
    if not served_der:
        raise ValueError("a chain needs at least the leaf")
    if digests is None:
        digests = [hashlib.sha256(d).digest() for d in (*served_der, *fetched_der)]
    elif len(digests) != len(served_der) + len(fetched_der):
        raise ValueError("one digest for each served and fetched certificate")
    key: tuple[int | bytes, ...] = (len(served_der), *digests)
    cache: dict[tuple[int | bytes, ...], _CachedVerdict] = trust.chain_verdicts
    cached = cache.get(key)
    if cached is not None and cached.holds_at(now):
        return cached.verdict
    served = [parse_certificate(d) for d in served_der]
    fetched = [parse_certificate(d) for d in fetched_der]
    verdict = _Judge(served, fetched, now, trust).run()
    valid_from, valid_until = validity_window(
        ((p.facts.not_before_utc, p.facts.not_after_utc) for p in (*served, *fetched)),
        now,
        trust.anchor_validity_window(now),
    )
    entry = _CachedVerdict(valid_from=valid_from, valid_until=valid_until, verdict=verdict)
    limit = max(_VERDICTS_MIN, kept_certificates())
    with _VERDICTS_LOCK:
        # Oldest first: dicts keep insertion order, and a renewed entry moves last.
        cache.pop(key, None)
        make_room(cache, limit)
        cache[key] = entry
    return verdict


_VERDICTS_MIN = 8192
"""Chains whose verdict a trust store keeps at least (under a kilobyte each)."""
_VERDICTS_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True, kw_only=True)
class _CachedVerdict:
    """A verdict and the instants at which it holds.

    Attributes:
        valid_from: From when (inclusive) every certificate involved, and every
            anchor, is in the validity state it was in when the verdict was reached.
        valid_until: Until when (inclusive) that lasts.
        verdict: The verdict.
    """

    valid_from: datetime
    valid_until: datetime
    verdict: ChainVerdict

    def holds_at(self, now: datetime) -> bool:
        """Every certificate and anchor is in the same validity state at ``now``."""
        return self.valid_from <= now <= self.valid_until


class _Judge:
    """One judgement; holds the inputs so the steps read simply."""

    def __init__(
        self,
        served: list[ParsedCertificate],
        fetched: list[ParsedCertificate],
        now: datetime,
        trust: TrustStore,
    ) -> None:
        self.served = served
        self.fetched = fetched
        self.now = now
        self.trust = trust
        self.leaf = served[0]
        self.problems: list[ChainProblem] = []

    def run(self) -> ChainVerdict:
        leaf_sha = self.leaf.facts.sha256_hex
        if leaf_sha in self.trust.anchor_sha256:
            return self._pinned_leaf()
        path, error = _verify_served(self.leaf, self.served[1:], self.now, self.trust)
        if path is not None:
            return self._trusted(path, fetched_used=())
        if self.fetched:
            with_fetched = [p.certificate for p in [*self.served[1:], *self.fetched]]
            fetched_path, _ = _verify(self.leaf, with_fetched, self.now, self.trust.store)
            if fetched_path is not None:
                return self._completed_by_fetch(fetched_path, error)
        return self._untrusted(error)

    # -- trusted ---------------------------------------------------------------------

    def _pinned_leaf(self) -> ChainVerdict:
        self._check_validity([(0, self.leaf)])
        unneeded = self._unneeded(on_path={0}, anchor_sha=None)
        valid = _is_valid(self.leaf, self.now)
        report = ChainReport(
            is_trusted=valid,
            verified_path_sha256=(self.leaf.facts.sha256_hex,),
            unneeded_sha256=unneeded,
            anchor_subject=self.leaf.facts.subject,
            error=None if valid else _cause_text(self.problems),
            error_detail=None if valid else "the pinned leaf is not valid at validation time",
            trusted_ignoring_validity=True,
        )
        return self._verdict(report, (0,), public=False)

    def _trusted(
        self, path: Sequence[ParsedCertificate], *, fetched_used: tuple[str, ...]
    ) -> ChainVerdict:
        path_sha = tuple(p.facts.sha256_hex for p in path)
        anchor_sha = path_sha[-1]
        served_indexes = self._served_indexes(path_sha[:-1])
        ordered = self._check_order(served_indexes)
        unneeded = self._unneeded(
            on_path=set(served_indexes), anchor_sha=anchor_sha, anchor=path[-1]
        )
        anchor = path[-1].facts
        report = ChainReport(
            is_trusted=not fetched_used,
            verified_path_sha256=path_sha if not fetched_used else (),
            is_complete=not fetched_used,
            fetched_issuers_sha256=fetched_used,
            would_verify_with_fetched=bool(fetched_used),
            is_ordered=ordered,
            unneeded_sha256=unneeded,
            anchor_subject=anchor.subject if not fetched_used else None,
            trusted_ignoring_validity=not fetched_used,
        )
        return self._verdict(
            report, served_indexes, public=anchor_sha in self.trust.public_anchor_sha256
        )

    def _completed_by_fetch(self, verified: list[x509.Certificate], error: str) -> ChainVerdict:
        path = _parsed_path(verified, self._by_der())
        fetched_sha = {p.facts.sha256_hex for p in self.fetched}
        path_sha = [p.facts.sha256_hex for p in path]
        used = tuple(s for s in path_sha if s in fetched_sha)
        first_fetched = path[path_sha.index(used[0])].facts
        needs_facts = path[path_sha.index(used[0]) - 1].facts
        verdict = self._trusted(path, fetched_used=used)
        missing = first_fetched.subject
        problem = ChainProblem(
            kind=ChainProblemKind.MISSING_INTERMEDIATE,
            message=(
                f'the server does not send the intermediate "{missing}"; fetched from '
                f"{_urls_text(needs_facts.ca_issuer_urls)} it completes a trusted chain "
                "(browsers may fetch it too; most other clients fail)"
            ),
        )
        report = dataclasses.replace(
            verdict.report,
            error=_cause_text([problem]),
            error_detail=humanise_error(error),
            missing_issuer=missing,
            missing_issuer_urls=needs_facts.ca_issuer_urls,
            anchor_subject=path[-1].facts.subject,
        )
        return ChainVerdict(
            report=report,
            problems=(problem, *verdict.problems),
            path_served_indexes=verdict.path_served_indexes,
            anchor_is_public=verdict.anchor_is_public,
        )

    # -- untrusted -------------------------------------------------------------------

    def _untrusted(self, error: str) -> ChainVerdict:
        walk, end = self._walk()
        served_indexes = tuple(i for i, _ in walk if i is not None)
        ordered = self._check_order(served_indexes)
        last_index, last = walk[-1]
        missing_issuer: str | None = None
        missing_urls: tuple[str, ...] = ()
        explained = False
        if self.leaf.facts.is_self_signed:
            self._add(
                ChainProblemKind.SELF_SIGNED_LEAF,
                f'the leaf "{self.leaf.facts.subject}" is self-signed and not in the trust store',
                0,
            )
            explained = True
        elif end == "self_signed":
            self._add(
                ChainProblemKind.UNTRUSTED_ROOT,
                f'the chain ends at the root "{last.facts.subject}", which is not in the '
                f"trust store ({self.trust.source})",
                last_index,
            )
            explained = True
        elif end == "missing":
            missing_issuer = last.facts.issuer
            missing_urls = last.facts.ca_issuer_urls
            where = (
                f"it can be fetched from {_urls_text(missing_urls)}"
                if missing_urls
                else "the certificate names no CA Issuers URL to fetch it from"
            )
            fetched_note = (
                " (the fetched issuers did not complete the chain)" if self.fetched else ""
            )
            either = (
                " (a root this trust store lacks, or an intermediate the server should send)"
                if last.facts.is_ca and not missing_urls
                else ""
            )
            self._add(
                ChainProblemKind.MISSING_INTERMEDIATE,
                f'"{last.facts.subject}" is issued by "{missing_issuer}", which is neither '
                f"served nor in the trust store{either}: {where}{fetched_note}",
                last_index,
            )
            explained = True
        invalid = self._check_validity(walk)
        in_time = False
        if not explained:
            # Time explains the failure only if the chain verifies inside the validity
            # periods; otherwise say what else is wrong.
            in_time_error = self._verify_in_time(walk) if invalid else error
            in_time = in_time_error is None
            if in_time_error and not self._diagnose(walk):
                self._add(
                    ChainProblemKind.VERIFICATION_FAILED,
                    f"the chain does not verify: {humanise_error(in_time_error)}",
                )
        cause = _cause_text(self.problems)
        unneeded = self._unneeded(on_path=set(served_indexes), anchor_sha=None)
        report = ChainReport(
            is_trusted=False,
            error=cause,
            error_detail=humanise_error(error),
            is_complete=end != "missing",
            is_ordered=ordered,
            unneeded_sha256=unneeded,
            missing_issuer=missing_issuer,
            missing_issuer_urls=missing_urls,
            trusted_ignoring_validity=in_time,
        )
        return self._verdict(report, served_indexes, public=False)

    def _diagnose(self, walk: Sequence[tuple[int | None, ParsedCertificate]]) -> bool:
        """Name the structural reasons a walked path fails that the verifier words poorly.

        The verifier reports the last thing it tried ("no candidate issuer's signature
        matches" for a path-length violation); these checks read the path itself: a
        signature algorithm clients refuse, a leaf not meant for TLS servers, an issuer
        that is not a CA, a path longer than an issuer's pathLenConstraint. Any found?
        """
        found = False
        for index, parsed in walk:
            facts = parsed.facts
            if facts.is_self_signed or facts.sha256_hex in self.trust.anchor_sha256:
                continue  # nobody checks a root's or an anchor's own signature
            if _forbidden_signature(facts):
                role = "the leaf" if index == 0 else _role(index)
                self._add(
                    ChainProblemKind.FORBIDDEN_SIGNATURE,
                    f'{role} "{facts.subject}" is signed with {facts.signature_algorithm}, '
                    "which clients no longer accept",
                    index,
                )
                found = True
        leaf = self.leaf.facts
        if leaf.extended_key_usage and not _SERVER_AUTH & set(leaf.extended_key_usage):
            self._add(
                ChainProblemKind.NOT_FOR_SERVERS,
                f'the leaf "{leaf.subject}" is not for TLS servers: its extendedKeyUsage '
                f"allows only {', '.join(leaf.extended_key_usage)}",
                0,
            )
            found = True
        for position in range(1, len(walk)):
            index, parsed = walk[position]
            facts = parsed.facts
            child = walk[position - 1][1].facts
            if not facts.is_ca:
                self._add(
                    ChainProblemKind.ISSUER_NOT_CA,
                    f'"{facts.subject}" issued "{child.subject}" but is not a CA '
                    "(basicConstraints)",
                    index,
                )
                found = True
            below = position - 1  # intermediate CAs between this one and the leaf
            if facts.path_length is not None and below > facts.path_length:
                self._add(
                    ChainProblemKind.PATH_TOO_LONG,
                    f'"{facts.subject}" allows {facts.path_length} intermediate CA(s) below '
                    f"it (pathLenConstraint), but the chain has {below}",
                    index,
                )
                found = True
        return found

    def _verify_in_time(self, walk: Sequence[tuple[int | None, ParsedCertificate]]) -> str | None:
        """Verify the served chain at a moment inside every walked certificate's validity.

        Called only when verification at ``now`` failed and a certificate on the walked
        path is outside its validity period: it tells "renew and all is well" apart from
        a chain that is broken in other ways too. The fetched issuers are left out, so
        the answer speaks of what the server sends.

        Returns:
            ``None`` when it verifies, the verifier's reason when it does not, and
            ``""`` when there is no such moment (the validity periods do not overlap).
        """
        start = max(p.facts.not_before_utc for _, p in walk)
        end = min(p.facts.not_after_utc for _, p in walk)
        if start > end:
            return ""
        moment = start + (end - start) / 2
        path, error = _verify(
            self.leaf, [p.certificate for p in self.served[1:]], moment, self.trust.store
        )
        return None if path is not None else error or "the chain does not verify"

    def _walk(self) -> tuple[list[tuple[int | None, ParsedCertificate]], str]:
        """Follow issuer names from the leaf: (served index or None, cert) and the end.

        The end is ``"anchor"`` (an anchor issued the last one), ``"self_signed"`` (the
        last one is a root outside the store), ``"missing"`` or ``"too_long"``.
        """
        pool: list[tuple[int | None, ParsedCertificate]] = [
            *((i, p) for i, p in enumerate(self.served) if i > 0),
            *((None, p) for p in self.fetched),
        ]
        walk: list[tuple[int | None, ParsedCertificate]] = [(0, self.leaf)]
        seen = {self.leaf.facts.sha256_hex}
        while len(walk) < _MAX_WALK:
            _, current = walk[-1]
            if current.facts.is_self_signed:
                return walk, "self_signed"
            anchors = [
                parse_certificate(_der(a)) for a in self.trust.anchors_named(current.issuer_der)
            ]
            anchor = next((a for a in anchors if a.may_have_issued(current)), None)
            if anchor is not None:
                walk.append((None, anchor))
                return walk, "anchor"
            issuer = next(
                (
                    (i, p)
                    for i, p in pool
                    if p.facts.sha256_hex not in seen and p.may_have_issued(current)
                ),
                None,
            )
            if issuer is None:
                return walk, "missing"
            seen.add(issuer[1].facts.sha256_hex)
            walk.append(issuer)
        return walk, "too_long"

    # -- shared steps ----------------------------------------------------------------

    def _check_validity(self, walk: Sequence[tuple[int | None, ParsedCertificate]]) -> bool:
        """Add a problem for each certificate on the path not valid now; any found?"""
        found = False
        for index, parsed in walk:
            facts = parsed.facts
            if _is_valid(parsed, self.now):
                continue
            found = True
            role = "the leaf" if index == 0 else _role(index)
            state = (
                f"expired on {facts.not_after_utc:%Y-%m-%d %H:%M:%S} UTC"
                if self.now > facts.not_after_utc
                else f"is not valid before {facts.not_before_utc:%Y-%m-%d %H:%M:%S} UTC"
            )
            self._add(ChainProblemKind.NOT_VALID_NOW, f'{role} "{facts.subject}" {state}', index)
        return found

    def _check_order(self, served_indexes: Sequence[int]) -> bool:
        """The path's served certificates sit at positions 0, 1, 2… in path order."""
        ordered = list(served_indexes) == list(range(len(served_indexes)))
        if not ordered:
            positions = ", ".join(str(i) for i in served_indexes)
            self._add(
                ChainProblemKind.MISORDERED,
                "the server sends the chain out of order: the path uses served "
                f"certificates {positions} (leaf first); some clients give up",
            )
        return ordered

    def _unneeded(
        self,
        *,
        on_path: set[int],
        anchor_sha: str | None,
        anchor: ParsedCertificate | None = None,
    ) -> tuple[str, ...]:
        unneeded: list[str] = []
        seen: dict[str, int] = {}
        for index, parsed in enumerate(self.served):
            sha = parsed.facts.sha256_hex
            subject = parsed.facts.subject
            if sha in seen:
                self._add(
                    ChainProblemKind.DUPLICATE_CERTIFICATE,
                    f'certificate {index} "{subject}" repeats certificate {seen[sha]}',
                    index,
                )
                unneeded.append(sha)
                continue
            seen[sha] = index
            if index in on_path:
                continue
            unneeded.append(sha)
            if sha == anchor_sha or (sha in self.trust.anchor_sha256 and parsed.facts.is_ca):
                self._add(
                    ChainProblemKind.ROOT_SERVED,
                    f'the server sends the trust anchor "{subject}" (position {index}); '
                    "clients have it already",
                    index,
                )
            elif anchor is not None and parsed.subject_der == anchor.subject_der:
                self._add(
                    ChainProblemKind.UNNEEDED_CERTIFICATE,
                    f'certificate {index} "{subject}" is a cross-signed copy of the trust '
                    "anchor; only clients that lack the anchor need it",
                    index,
                )
            else:
                self._add(
                    ChainProblemKind.UNNEEDED_CERTIFICATE,
                    f'certificate {index} "{subject}" is not on the path to a trusted root',
                    index,
                )
        return tuple(unneeded)

    def _served_indexes(self, path_sha: Sequence[str]) -> tuple[int, ...]:
        first: dict[str, int] = {}
        for index, parsed in enumerate(self.served):
            first.setdefault(parsed.facts.sha256_hex, index)
        return tuple(first[s] for s in path_sha if s in first)

    def _by_der(self) -> dict[bytes, ParsedCertificate]:
        return {p.der: p for p in [*self.served, *self.fetched]}

    def _add(self, kind: ChainProblemKind, message: str, index: int | None = None) -> None:
        self.problems.append(ChainProblem(kind=kind, message=message, cert_index=index))

    def _verdict(
        self, report: ChainReport, served_indexes: Sequence[int], *, public: bool
    ) -> ChainVerdict:
        return ChainVerdict(
            report=report,
            problems=tuple(self.problems),
            path_served_indexes=tuple(served_indexes),
            anchor_is_public=public,
        )


def _verify(
    leaf: ParsedCertificate,
    intermediates: list[x509.Certificate],
    now: datetime,
    store: Store,
) -> tuple[list[x509.Certificate] | None, str]:
    """The verified path, leaf to anchor, or ``None`` and the verifier's reason."""
    builder = PolicyBuilder().store(store).time(now)
    try:
        for subject in _own_subjects(leaf.facts):
            try:
                verifier = builder.build_server_verifier(subject)
            except ValueError:
                continue  # a SAN the verifier cannot take as a subject; try the next
            return verifier.verify(leaf.certificate, intermediates), ""
        relaxed = builder.extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_NO_SAN_POLICY)
        return relaxed.build_client_verifier().verify(leaf.certificate, intermediates).chain, ""
    except VerificationError as exc:
        return None, str(exc)
    except PARSE_ERRORS as exc:  # a certificate the verifier cannot even read
        return None, f"the verifier cannot process the chain: {exc}"


@dataclass(frozen=True, slots=True, kw_only=True)
class _UpperPath:
    """A verified path above the leaf, reusable for other leaves of the same issuer.

    Attributes:
        path: The certificates above the leaf, issuing CA first, anchor last.
        store: A store holding only the issuing CA, to check a new leaf against it.
        not_before_utc: Latest notBefore on the path.
        not_after_utc: Earliest notAfter on the path.
    """

    path: tuple[ParsedCertificate, ...]
    store: Store
    not_before_utc: datetime
    not_after_utc: datetime


_UPPER_PATHS_MAX = 4096


def _verify_served(
    leaf: ParsedCertificate,
    intermediates: list[ParsedCertificate],
    now: datetime,
    trust: TrustStore,
) -> tuple[list[ParsedCertificate] | None, str]:
    """Verify a served chain, reusing the verified path above the leaf when possible.

    Endpoints under one CA serve the same intermediates. Once a full verification has
    accepted [leaf, I1, ..., anchor], another leaf served with the same intermediates
    only needs the checks that involve the leaf itself: its own policy and its
    signature by I1. Those are done by the same verifier with I1 as its only anchor.
    The shortcut is taken only inside the validity window of the whole upper path and
    when no certificate above the leaf carries name constraints (they bind the leaf's
    names, which the shortcut would not check); otherwise, or when the leaf does not
    verify under I1, the full verification runs.

    Returns:
        The verified path (leaf first, anchor last) or ``None``, and the verifier's
        reason when ``None``.
    """
    cache = trust.verified_upper_paths
    key = tuple(p.der for p in intermediates)
    upper: _UpperPath | None = cache.get(key)
    if upper is not None and upper.not_before_utc <= now <= upper.not_after_utc:
        leaf_path, _ = _verify(leaf, [], now, upper.store)
        if leaf_path is not None:
            return [leaf, *upper.path], ""
    path, error = _verify(leaf, [p.certificate for p in intermediates], now, trust.store)
    if path is None:
        return None, error
    parsed = [leaf, *_parsed_path(path[1:], {p.der: p for p in intermediates})]
    if len(parsed) >= 3 and key and upper is None:
        remembered = _upper_path(parsed[1:])
        if remembered is not None:
            if len(cache) >= _UPPER_PATHS_MAX:
                cache.clear()
            cache[key] = remembered
    return parsed, ""


def _parsed_path(
    path: Sequence[x509.Certificate], known: dict[bytes, ParsedCertificate]
) -> list[ParsedCertificate]:
    """The verifier's certificates as parsed ones (served, fetched or anchors)."""
    result = []
    for certificate in path:
        der = _der(certificate)
        result.append(known.get(der) or parse_certificate(der))
    return result


def _upper_path(path: list[ParsedCertificate]) -> _UpperPath | None:
    for parsed in path:
        # Unreadable extensions might hide name constraints: no shortcut then.
        if parsed.extension_oids is None or _NAME_CONSTRAINTS in parsed.extension_oids:
            return None
    return _UpperPath(
        path=tuple(path),
        store=Store([path[0].certificate]),
        not_before_utc=max(p.facts.not_before_utc for p in path),
        not_after_utc=min(p.facts.not_after_utc for p in path),
    )


def _own_subjects(facts: CertificateFacts) -> list[x509.DNSName | x509.IPAddress]:
    """Names the leaf itself claims, so that the verifier's hostname check passes."""
    subjects: list[x509.DNSName | x509.IPAddress] = [
        x509.DNSName("certvigil" + name[1:] if name.startswith("*.") else name)
        for name in facts.san_dns
        if name.isascii()
    ]
    subjects += [x509.IPAddress(parse_ip(a)) for a in facts.san_ip]
    return subjects


def _eku_allows_server_auth(
    _policy: Policy, _cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None
) -> None:
    if eku is None:
        return
    if ExtendedKeyUsageOID.SERVER_AUTH in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku:
        return
    raise ValueError("extendedKeyUsage does not allow serverAuth")


# For leaves without a usable SAN: a client verifier (no name check) whose EKU rules are
# set back to those of a server verifier, and whose leaf policy lets the SAN be absent.
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _eku_allows_server_auth
)
_EE_NO_SAN_POLICY = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _eku_allows_server_auth)
)

_ERROR_PHRASES = {
    "candidates exhausted: all candidates exhausted with no interior errors": (
        "no issuer of the leaf was found among the served certificates and anchors"
    ),
    "candidates exhausted: signature does not match": ("no candidate issuer's signature matches"),
    "cert is not valid at validation time": "a certificate is not valid at this time",
    "required EKU not found": "extendedKeyUsage does not allow serverAuth",
}
_PROCESSING = re.compile(r"\s*\(encountered processing <Certificate\(subject=<Name\((.*?)\)>.*$")
_FORBIDDEN_ALGORITHM = re.compile(r"Forbidden signature algorithm: .*$")


def humanise_error(error: str) -> str:
    """The verifier's message, with Rust debug noise turned into words where known.

    Args:
        error: ``str()`` of a ``VerificationError``.

    Returns:
        One readable clause, e.g. "a certificate is not valid at this time (at CN=x)".
    """
    text = error.removeprefix("validation failed: ")
    text = _PROCESSING.sub(r" (at \1)", text)
    text = _FORBIDDEN_ALGORITHM.sub("a signature uses a forbidden algorithm (SHA-1 or MD5)", text)
    for needle, phrase in _ERROR_PHRASES.items():
        text = text.replace(needle, phrase)
    return text


CAUSE_KINDS = frozenset(
    {
        ChainProblemKind.SELF_SIGNED_LEAF,
        ChainProblemKind.UNTRUSTED_ROOT,
        ChainProblemKind.MISSING_INTERMEDIATE,
        ChainProblemKind.NOT_VALID_NOW,
        ChainProblemKind.FORBIDDEN_SIGNATURE,
        ChainProblemKind.NOT_FOR_SERVERS,
        ChainProblemKind.ISSUER_NOT_CA,
        ChainProblemKind.PATH_TOO_LONG,
        ChainProblemKind.VERIFICATION_FAILED,
    }
)
"""The problem kinds that make a chain untrusted (the others are advice)."""

_SERVER_AUTH = frozenset({"serverAuth", "anyExtendedKeyUsage"})
_FORBIDDEN_HASHES = frozenset({"sha1", "md5", "md2", "md4"})
_MD2_MD4_RSA = frozenset({"1.2.840.113549.1.1.2", "1.2.840.113549.1.1.3"})


def _forbidden_signature(facts: CertificateFacts) -> bool:
    return facts.signature_hash in _FORBIDDEN_HASHES or facts.signature_algorithm in _MD2_MD4_RSA


def _cause_text(problems: Sequence[ChainProblem]) -> str | None:
    """Why the chain is not trusted, from the problems that cause it, in chain order."""
    causes = [p.message for p in problems if p.kind in CAUSE_KINDS]
    return "; ".join(causes) if causes else None


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def _is_valid(parsed: ParsedCertificate, now: datetime) -> bool:
    return parsed.facts.not_before_utc <= now <= parsed.facts.not_after_utc


def _role(index: int | None) -> str:
    return "a certificate outside the served chain" if index is None else f"certificate {index}"


def _urls_text(urls: Sequence[str]) -> str:
    return ", ".join(urls) if urls else "(no CA Issuers URL)"
