"""What changed between two looks at one endpoint: rotation, issuer, protocol, trust, reach.

Pure: the store builds ``ObservedState`` values from its rows, the alert engine from
fresh reports, and both ask the same question of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from certvigil.analysis.model import EndpointReport

PROTOCOL_RANK = {
    "SSLv2": 0,
    "SSLv3": 1,
    "TLSv1": 2,
    "TLSv1.0": 2,
    "TLSv1.1": 3,
    "TLSv1.2": 4,
    "TLSv1.3": 5,
}
"""Protocol names as OpenSSL gives them, oldest (weakest) first."""


class ChangeKind(StrEnum):
    """A kind of change between two consecutive observations of one endpoint."""

    CERTIFICATE_ROTATED = "certificate_rotated"
    ISSUER_CHANGED = "issuer_changed"
    PROTOCOL_DOWNGRADED = "protocol_downgraded"
    PROTOCOL_UPGRADED = "protocol_upgraded"
    CHAIN_BROKE = "chain_broke"
    CHAIN_REPAIRED = "chain_repaired"
    HOSTNAME_MISMATCH_APPEARED = "hostname_mismatch_appeared"
    HOSTNAME_MISMATCH_CLEARED = "hostname_mismatch_cleared"
    ENDPOINT_FAILED = "endpoint_failed"
    ENDPOINT_RECOVERED = "endpoint_recovered"
    GRADE_DROPPED = "grade_dropped"
    GRADE_RAISED = "grade_raised"
    PROTOCOL_ENABLED = "protocol_enabled"
    PROTOCOL_DISABLED = "protocol_disabled"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedState:
    """The facts about one observation that changes are judged on.

    Attributes:
        observed_at_utc: When it was observed.
        is_ok: A handshake completed.
        failure_kind: The failure class when not ok, ``None`` otherwise.
        leaf_sha256: The leaf's SHA-256, ``None`` when nothing was served.
        leaf_issuer: The leaf's issuer DN, ``None`` when nothing was served.
        protocol: Negotiated protocol, ``None`` when not ok.
        chain_sha256: Served chain fingerprints in the server's order.
        is_trusted: The chain verified; ``None`` when nothing was served.
        hostname_matches: The leaf covers the expected name; ``None`` without a leaf.
        grade: The grade, ``None`` when this look did not grade.
        protocols: The protocols accepted, ``None`` when this look did not probe them.
        revocation_status: ``revoked``, or the leaf's status, ``None`` when this look
            did not check revocation.
    """

    observed_at_utc: datetime
    is_ok: bool
    failure_kind: str | None = None
    leaf_sha256: str | None = None
    leaf_issuer: str | None = None
    protocol: str | None = None
    chain_sha256: tuple[str, ...] = ()
    is_trusted: bool | None = None
    hostname_matches: bool | None = None
    grade: str | None = None
    protocols: tuple[str, ...] | None = None
    revocation_status: str | None = None


GRADE_ORDER: tuple[str, ...] = ("A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M")
"""Grades best first (``T`` untrusted and ``M`` name mismatch below F)."""

PROTOCOL_NAMES = {
    "SSLv2": "SSLv2",
    "SSLv3": "SSLv3",
    "TLSv1.0": "TLS 1.0",
    "TLSv1.1": "TLS 1.1",
    "TLSv1.2": "TLS 1.2",
    "TLSv1.3": "TLS 1.3",
}
"""How changes name the protocols the probes report."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One change seen between two observations.

    Attributes:
        kind: What changed.
        observed_at_utc: When the later observation was made.
        before: The old value in text (fingerprint, issuer, protocol), ``None`` if none.
        after: The new value in text, ``None`` if none.
        message: One human sentence.
    """

    kind: ChangeKind
    observed_at_utc: datetime
    before: str | None
    after: str | None
    message: str


def observed_state_from_report(report: EndpointReport) -> ObservedState:
    """The change-relevant facts of a fresh report."""
    if report.observation is not None:
        observed_at = report.observation.observed_at_utc
    elif report.failure is not None:
        observed_at = report.failure.observed_at_utc
    else:
        observed_at = report.evaluated_at_utc
    leaf = report.leaf
    return ObservedState(
        observed_at_utc=observed_at,
        is_ok=report.observation is not None,
        failure_kind=report.failure.kind.value if report.failure is not None else None,
        leaf_sha256=leaf.sha256_hex if leaf is not None else None,
        leaf_issuer=leaf.issuer if leaf is not None else None,
        protocol=report.observation.protocol if report.observation is not None else None,
        chain_sha256=tuple(c.sha256_hex for c in report.certificates),
        is_trusted=report.chain.is_trusted if report.chain is not None else None,
        hostname_matches=report.hostname_matches,
        grade=report.deep.grade.grade if report.deep is not None else None,
        protocols=(
            tuple(p.value for p in report.deep.tls_config.protocols)
            if report.deep is not None
            else None
        ),
        revocation_status=_revocation_status(report),
    )


def _revocation_status(report: EndpointReport) -> str | None:
    verdict = report.revocation
    if verdict is None:
        return None
    if verdict.is_revoked:
        return "revoked"
    return verdict.leaf_status.value if verdict.leaf_status is not None else None


def detect_changes(before: ObservedState, after: ObservedState) -> tuple[Change, ...]:
    """The changes from one observation to the next.

    A change in reachability is reported alone when either side failed, since a failed
    observation says nothing about the certificate; compare the last successful
    observation with the next successful one (as :func:`changes_over` does) to see
    certificate changes across an outage.

    Args:
        before: The earlier observation.
        after: The later observation.

    Returns:
        The changes, in a fixed order; empty when nothing changed.
    """
    at = after.observed_at_utc
    if before.is_ok and not after.is_ok:
        return (
            Change(
                kind=ChangeKind.ENDPOINT_FAILED,
                observed_at_utc=at,
                before=None,
                after=after.failure_kind,
                message=f"endpoint stopped answering: {after.failure_kind or 'failed'}",
            ),
        )
    if not after.is_ok:
        return ()
    changes: list[Change] = []
    if not before.is_ok:
        changes.append(
            Change(
                kind=ChangeKind.ENDPOINT_RECOVERED,
                observed_at_utc=at,
                before=before.failure_kind,
                after=None,
                message="endpoint answers again",
            )
        )
        return tuple(changes)
    changes.extend(_certificate_changes(before, after))
    changes.extend(_protocol_changes(before, after))
    changes.extend(_trust_changes(before, after))
    return tuple(changes)


def changes_over(states: Iterable[ObservedState]) -> tuple[Change, ...]:
    """Every change along a time-ordered series of observations of one endpoint.

    Reachability changes compare consecutive observations; certificate, protocol and
    trust changes compare each successful observation with the previous successful
    one, so a rotation during an outage is still seen.

    Args:
        states: Observations of one endpoint, oldest first.

    Returns:
        The changes, oldest first.
    """
    changes: list[Change] = []
    previous: ObservedState | None = None
    previous_ok: ObservedState | None = None
    # The daily checks do not run on every look: each compares with its own last run.
    graded: ObservedState | None = None
    probed: ObservedState | None = None
    checked: ObservedState | None = None
    for state in states:
        if previous is not None:
            changes.extend(detect_changes(previous, state))
            if state.is_ok and not previous.is_ok and previous_ok is not None:
                changes.extend(detect_changes(previous_ok, state))
        if state.grade is not None:
            if graded is not None:
                changes.extend(_grade_changes(graded, state))
            graded = state
        if state.protocols is not None:
            if probed is not None:
                changes.extend(_accepted_protocol_changes(probed, state))
            probed = state
        if state.revocation_status is not None:
            if state.revocation_status == "revoked" and (
                checked is None
                or checked.revocation_status != "revoked"
                or checked.leaf_sha256 != state.leaf_sha256
            ):
                changes.append(
                    Change(
                        kind=ChangeKind.REVOKED,
                        observed_at_utc=state.observed_at_utc,
                        before=checked.revocation_status if checked is not None else None,
                        after="revoked",
                        message=f"revoked: the certificate {_short(state.leaf_sha256)} is revoked",
                    )
                )
            checked = state
        previous = state
        if state.is_ok:
            previous_ok = state
    return tuple(changes)


def _grade_rank(grade: str) -> int:
    return GRADE_ORDER.index(grade) if grade in GRADE_ORDER else len(GRADE_ORDER)


def _grade_changes(before: ObservedState, after: ObservedState) -> list[Change]:
    old, new = before.grade or "", after.grade or ""
    if _grade_rank(old) == _grade_rank(new):
        return []
    dropped = _grade_rank(new) > _grade_rank(old)
    return [
        Change(
            kind=ChangeKind.GRADE_DROPPED if dropped else ChangeKind.GRADE_RAISED,
            observed_at_utc=after.observed_at_utc,
            before=old,
            after=new,
            message=f"grade {old} \u2192 {new}",
        )
    ]


def _accepted_protocol_changes(before: ObservedState, after: ObservedState) -> list[Change]:
    old, new = set(before.protocols or ()), set(after.protocols or ())
    order = list(PROTOCOL_NAMES)
    changes = []
    for protocol in sorted(new - old, key=lambda p: order.index(p) if p in order else 99):
        changes.append(
            Change(
                kind=ChangeKind.PROTOCOL_ENABLED,
                observed_at_utc=after.observed_at_utc,
                before=None,
                after=protocol,
                message=f"{PROTOCOL_NAMES.get(protocol, protocol)} enabled",
            )
        )
    for protocol in sorted(old - new, key=lambda p: order.index(p) if p in order else 99):
        changes.append(
            Change(
                kind=ChangeKind.PROTOCOL_DISABLED,
                observed_at_utc=after.observed_at_utc,
                before=protocol,
                after=None,
                message=f"{PROTOCOL_NAMES.get(protocol, protocol)} disabled",
            )
        )
    return changes


def _certificate_changes(before: ObservedState, after: ObservedState) -> list[Change]:
    at = after.observed_at_utc
    changes: list[Change] = []
    if before.leaf_sha256 != after.leaf_sha256:
        changes.append(
            Change(
                kind=ChangeKind.CERTIFICATE_ROTATED,
                observed_at_utc=at,
                before=before.leaf_sha256,
                after=after.leaf_sha256,
                message=f"leaf certificate changed from {_short(before.leaf_sha256)} "
                f"to {_short(after.leaf_sha256)}",
            )
        )
    if before.leaf_issuer != after.leaf_issuer:
        changes.append(
            Change(
                kind=ChangeKind.ISSUER_CHANGED,
                observed_at_utc=at,
                before=before.leaf_issuer,
                after=after.leaf_issuer,
                message=f"issuer changed from {before.leaf_issuer!r} to {after.leaf_issuer!r}",
            )
        )
    return changes


def _protocol_changes(before: ObservedState, after: ObservedState) -> list[Change]:
    old = PROTOCOL_RANK.get(before.protocol or "")
    new = PROTOCOL_RANK.get(after.protocol or "")
    if old is None or new is None or old == new:
        return []
    kind = ChangeKind.PROTOCOL_DOWNGRADED if new < old else ChangeKind.PROTOCOL_UPGRADED
    verb = "downgraded" if new < old else "upgraded"
    return [
        Change(
            kind=kind,
            observed_at_utc=after.observed_at_utc,
            before=before.protocol,
            after=after.protocol,
            message=f"negotiated protocol {verb} from {before.protocol} to {after.protocol}",
        )
    ]


def _trust_changes(before: ObservedState, after: ObservedState) -> list[Change]:
    at = after.observed_at_utc
    changes: list[Change] = []
    if before.is_trusted is True and after.is_trusted is False:
        changes.append(
            Change(
                kind=ChangeKind.CHAIN_BROKE,
                observed_at_utc=at,
                before="trusted",
                after="untrusted",
                message="the served chain no longer verifies",
            )
        )
    elif before.is_trusted is False and after.is_trusted is True:
        changes.append(
            Change(
                kind=ChangeKind.CHAIN_REPAIRED,
                observed_at_utc=at,
                before="untrusted",
                after="trusted",
                message="the served chain verifies again",
            )
        )
    if before.hostname_matches is True and after.hostname_matches is False:
        changes.append(
            Change(
                kind=ChangeKind.HOSTNAME_MISMATCH_APPEARED,
                observed_at_utc=at,
                before="match",
                after="mismatch",
                message="the leaf no longer covers the endpoint's name",
            )
        )
    elif before.hostname_matches is False and after.hostname_matches is True:
        changes.append(
            Change(
                kind=ChangeKind.HOSTNAME_MISMATCH_CLEARED,
                observed_at_utc=at,
                before="mismatch",
                after="match",
                message="the leaf covers the endpoint's name again",
            )
        )
    return changes


def _short(sha256_hex: str | None) -> str:
    return sha256_hex[:16] if sha256_hex else "none"
