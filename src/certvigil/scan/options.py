"""How a scan connects, retries and judges (``ScanOptions``), and a scan's clock.

Apart from the scanner so that what only configures scans (the daemon's scheduler of
distributed scans, which scans nothing itself) does not import the scanning stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from certvigil.analysis.policy import AnalysisPolicy
from certvigil.probe.options import ProbeOptions
from certvigil.probe.revocation_options import RevocationOptions


def utc_now() -> datetime:
    """The current time, aware, in UTC (the default clock of a scan)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanOptions:
    """How a scan connects, retries and judges.

    Attributes:
        concurrency: Most connections open at once, over all targets.
        per_ip_concurrency: Most connections open at once to one IP address.
        per_subnet_concurrency: Most connections open at once to one IPv4 /24 or IPv6
            /64; ``None`` for no limit beyond ``concurrency`` and ``per_ip_concurrency``.
        connect_timeout_s: Limit on establishing each TCP connection.
        handshake_timeout_s: Limit on each TLS handshake.
        starttls_timeout_s: Limit on each STARTTLS plain-text dialogue.
        dns_timeout_s: Limit on each DNS lookup.
        retries: Further attempts after a transient failure (0 for none).
        retry_delay_s: Pause before each retry.
        retry_timeouts: Also retry a ``timeout`` (it used the whole phase time-out, so
            by default it is final).
        deadline_s: Total time one endpoint may take from its first connection: connect,
            STARTTLS, handshake, retries, AIA fetches, revocation and deep probes.
        suspect_after_timeouts: Consecutive time-outs after which an address is probed
            with ``quick_timeout_s`` first and its silent endpoints lose priority.
        quick_timeout_s: Connect and handshake limit of that first probe.
        alpn_protocols: ALPN protocols offered.
        fetch_missing_issuers: Fetch intermediates the server did not send from AIA
            CA-issuers URLs, to name them and to show the chain would verify with them.
        aia_timeout_s: Limit on each AIA fetch.
        policy: What the analysis judges and how strictly.
        deep: Also probe protocols, cipher suites and TLS options and grade each
            observed endpoint (``certvigil.scan.deep``; docs/grading.md). Each probe
            connection takes a slot from the same per-address and per-subnet limits.
        revocation: Also check each observed chain over OCSP and CRL and judge the
            stapled OCSP response (``certvigil.scan.revocation``; docs/revocation.md),
            with one HTTP client and one CRL cache for the whole scan.
        revocation_options: What the revocation check fetches and its time-outs.
    """

    concurrency: int = 200
    per_ip_concurrency: int = 8
    per_subnet_concurrency: int | None = None
    connect_timeout_s: float = 5.0
    handshake_timeout_s: float = 5.0
    starttls_timeout_s: float = 5.0
    dns_timeout_s: float = 5.0
    retries: int = 1
    retry_delay_s: float = 0.5
    retry_timeouts: bool = False
    deadline_s: float = 30.0
    suspect_after_timeouts: int = 3
    quick_timeout_s: float = 1.0
    alpn_protocols: tuple[str, ...] = ("h2", "http/1.1")
    fetch_missing_issuers: bool = True
    aia_timeout_s: float = 5.0
    policy: AnalysisPolicy = field(default_factory=AnalysisPolicy)
    deep: bool = False
    revocation: bool = False
    revocation_options: RevocationOptions = field(default_factory=RevocationOptions)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.per_ip_concurrency < 1:
            raise ValueError(
                f"per_ip_concurrency must be at least 1, not {self.per_ip_concurrency}"
            )
        if self.per_subnet_concurrency is not None and self.per_subnet_concurrency < 1:
            raise ValueError(
                "per_subnet_concurrency must be at least 1 or None, "
                f"not {self.per_subnet_concurrency}"
            )
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, not {self.retries}")
        if self.retry_delay_s < 0:
            raise ValueError(f"retry_delay_s must be 0 or more, not {self.retry_delay_s}")
        if self.suspect_after_timeouts < 1:
            raise ValueError(
                f"suspect_after_timeouts must be at least 1, not {self.suspect_after_timeouts}"
            )
        for name in ("dns_timeout_s", "aia_timeout_s", "deadline_s", "quick_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")

    @property
    def probe_options(self) -> ProbeOptions:
        """The per-connection options these scan options imply."""
        return ProbeOptions(
            connect_timeout_s=self.connect_timeout_s,
            handshake_timeout_s=self.handshake_timeout_s,
            starttls_timeout_s=self.starttls_timeout_s,
            alpn_protocols=self.alpn_protocols,
        )

    @property
    def quick_probe_options(self) -> ProbeOptions:
        """The first probe's options on an address that kept timing out."""
        quick = min(self.quick_timeout_s, self.handshake_timeout_s)
        return ProbeOptions(
            connect_timeout_s=min(self.quick_timeout_s, self.connect_timeout_s),
            handshake_timeout_s=quick,
            starttls_timeout_s=min(self.quick_timeout_s, self.starttls_timeout_s),
            alpn_protocols=self.alpn_protocols,
        )
