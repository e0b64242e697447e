"""certvigil: keeps an organisation's TLS certificates from surprising it.

The public names below are loaded on first use (PEP 562), so that ``import certvigil``
and the command line's start-up do not pay for modules a run never touches.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from certvigil.analysis.codes import FindingCode
    from certvigil.analysis.judge import judge
    from certvigil.analysis.model import (
        CertificateFacts,
        ChainReport,
        EndpointReport,
        Finding,
        Severity,
    )
    from certvigil.analysis.policy import AnalysisPolicy
    from certvigil.analysis.report import analyse_endpoint
    from certvigil.analysis.trust import TrustStore
    from certvigil.errors import CertvigilError
    from certvigil.files.truststore import load_trust_store
    from certvigil.observed.codec import observation_from_json, observation_to_json
    from certvigil.observed.endpoint import EndpointObservation
    from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
    from certvigil.scan.options import ScanOptions
    from certvigil.scan.scanner import scan, scan_stream
    from certvigil.store.api import Store, open_store
    from certvigil.targets.target import StartTLS, Target

__version__ = "0.1.0"

_HOMES = {
    "AnalysisPolicy": "certvigil.analysis.policy",
    "analyse_endpoint": "certvigil.analysis.report",
    "judge": "certvigil.analysis.judge",
    "FindingCode": "certvigil.analysis.codes",
    "EndpointObservation": "certvigil.observed.endpoint",
    "observation_from_json": "certvigil.observed.codec",
    "observation_to_json": "certvigil.observed.codec",
    "TrustStore": "certvigil.analysis.trust",
    "ScanOptions": "certvigil.scan.options",
    "scan": "certvigil.scan.scanner",
    "scan_stream": "certvigil.scan.scanner",
    "Store": "certvigil.store.api",
    "open_store": "certvigil.store.api",
    "load_trust_store": "certvigil.files.truststore",
    "CertificateFacts": "certvigil.analysis.model",
    "ChainReport": "certvigil.analysis.model",
    "EndpointReport": "certvigil.analysis.model",
    "Finding": "certvigil.analysis.model",
    "Severity": "certvigil.analysis.model",
    "CertvigilError": "certvigil.errors",
    "FailureKind": "certvigil.observed.handshake",
    "ProbeFailure": "certvigil.observed.handshake",
    "TlsObservation": "certvigil.observed.handshake",
    "StartTLS": "certvigil.targets.target",
    "Target": "certvigil.targets.target",
}

__all__ = [
    "AnalysisPolicy",
    "CertificateFacts",
    "CertvigilError",
    "ChainReport",
    "EndpointObservation",
    "EndpointReport",
    "FailureKind",
    "Finding",
    "FindingCode",
    "ProbeFailure",
    "ScanOptions",
    "Severity",
    "StartTLS",
    "Store",
    "Target",
    "TlsObservation",
    "TrustStore",
    "__version__",
    "analyse_endpoint",
    "judge",
    "load_trust_store",
    "observation_from_json",
    "observation_to_json",
    "open_store",
    "scan",
    "scan_stream",
]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'certvigil' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
