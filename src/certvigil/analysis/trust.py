"""The trust store: parsed anchors and a verification store built once per scan."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import Store

from certvigil.analysis.der import tbs_names

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
_TICK = timedelta(microseconds=1)
"""The resolution of ``datetime``: ``t > end`` is ``t >= end + _TICK``."""


def validity_window(
    periods: Iterable[tuple[datetime, datetime]],
    now: datetime,
    within: tuple[datetime, datetime] = (_EARLIEST, _LATEST),
) -> tuple[datetime, datetime]:
    """The instants of ``within``, both ends inclusive, at which each validity period
    (notBefore, notAfter, both inclusive as RFC 5280 says) is in the state it is in at
    ``now``: not yet begun, running, or over.

    Args:
        periods: The periods.
        now: An instant inside ``within``.
        within: The window to narrow (by default all time).

    Returns:
        The narrowed window; it holds ``now``.
    """
    lo, hi = within
    for start, end in periods:
        if start <= now:
            lo = max(lo, start)
        else:
            hi = min(hi, start - _TICK)
        if now <= end:
            hi = min(hi, end)
        else:
            lo = max(lo, end + _TICK)
    return lo, hi


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TrustStore:
    """The certificates a chain may end at, ready for verification.

    Build it once (with :meth:`from_certificates`, or ``certvigil.files.truststore``'s
    loader) and pass the same object to every analysis: the cryptography ``Store`` and
    the subject index are built here, not per endpoint.

    Attributes:
        anchors: The trust anchors, de-duplicated, in load order.
        source: Where they came from, for humans: ``"certifi 2026.10.18 (Mozilla)
            + /etc/pki/internal.pem"``.
        store: The cryptography verification store holding ``anchors``.
        anchors_by_subject: Anchors indexed by their subject name as encoded.
        anchor_sha256: SHA-256 (hex) of every anchor.
        public_anchor_sha256: SHA-256 (hex) of the anchors from a public root programme
            (Mozilla's or the system's); rules that only bind publicly trusted
            certificates (CA/B Forum validity limits) apply to chains ending there.
        verified_upper_paths: A cache owned by ``analysis.chain``: the verified path
            above the leaf for each served set of intermediates, so that thousands of
            endpoints under one CA verify only their leaf's signature. It lives as
            long as the store (one scan) and never changes a verdict.
        chain_verdicts: A cache owned by ``analysis.chain``: each chain's verdict with
            the validity states it was reached under, reused at another ``now`` while
            no certificate involved has entered or left its validity period.
        anchor_validity: The anchors' notBefore and notAfter instants, each sorted,
            so that a validity change of any anchor between two instants is found
            with two bisections.
    """

    anchors: tuple[x509.Certificate, ...]
    source: str
    store: Store
    anchors_by_subject: Mapping[bytes, tuple[x509.Certificate, ...]] = field(repr=False)
    anchor_sha256: frozenset[str] = field(repr=False)
    public_anchor_sha256: frozenset[str] = field(repr=False)
    verified_upper_paths: dict[tuple[bytes, ...], Any] = field(default_factory=dict, repr=False)
    chain_verdicts: dict[Any, Any] = field(default_factory=dict, repr=False)
    anchor_validity: tuple[tuple[datetime, ...], tuple[datetime, ...]] = field(
        init=False, repr=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "anchor_validity",
            (
                tuple(sorted(a.not_valid_before_utc for a in self.anchors)),
                tuple(sorted(a.not_valid_after_utc for a in self.anchors)),
            ),
        )

    def anchor_validity_window(self, now: datetime) -> tuple[datetime, datetime]:
        """The instants, both ends inclusive, at which every anchor is in the state it
        is in at ``now`` (valid, expired or not yet valid).

        Starts are the latest notBefore or notAfter crossed at ``now``, ends the
        earliest still to come; an open side is ``datetime.min`` or ``datetime.max``.
        """
        starts, ends = self.anchor_validity
        # Valid from notBefore to notAfter, both inclusive (RFC 5280).
        begun = bisect_right(starts, now)
        ended = bisect_left(ends, now)
        lo = max(
            starts[begun - 1] if begun else _EARLIEST,
            ends[ended - 1] + _TICK if ended else _EARLIEST,
        )
        hi = min(
            starts[begun] - _TICK if begun < len(starts) else _LATEST,
            ends[ended] if ended < len(ends) else _LATEST,
        )
        return lo, hi

    @classmethod
    def from_certificates(
        cls,
        anchors: Iterable[x509.Certificate],
        *,
        source: str,
        public: Iterable[x509.Certificate] = (),
    ) -> TrustStore:
        """A trust store over ``anchors`` (and ``public``, which are anchors too).

        Args:
            anchors: Anchors that are not from a public root programme (internal CAs).
            source: A description of where the anchors came from.
            public: Anchors from a public root programme.

        Returns:
            The store.

        Raises:
            ValueError: No anchors at all: nothing could ever verify.
        """
        public_list = list(public)
        public_sha256 = frozenset(_sha256(c) for c in public_list)
        unique: dict[str, x509.Certificate] = {}
        for certificate in [*public_list, *anchors]:
            unique.setdefault(_sha256(certificate), certificate)
        if not unique:
            raise ValueError("a trust store needs at least one anchor")
        by_subject: dict[bytes, list[x509.Certificate]] = {}
        for certificate in unique.values():
            try:
                _, subject_der = tbs_names(certificate.public_bytes(Encoding.DER))
            except ValueError:
                continue  # cannot be looked up by name; the verifier still has it
            by_subject.setdefault(subject_der, []).append(certificate)
        return cls(
            anchors=tuple(unique.values()),
            source=source,
            store=Store(list(unique.values())),
            anchors_by_subject={k: tuple(v) for k, v in by_subject.items()},
            anchor_sha256=frozenset(unique),
            public_anchor_sha256=public_sha256,
        )

    def anchors_named(self, subject_der: bytes) -> tuple[x509.Certificate, ...]:
        """Anchors whose subject, as encoded, is ``subject_der`` (an issuer name)."""
        return self.anchors_by_subject.get(subject_der, ())

    def __len__(self) -> int:
        return len(self.anchors)


def _sha256(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()
