"""certvigil: keeps an organisation's TLS certificates from surprising it.

The public names below are loaded on first use (PEP 562), so that ``import certvigil``
and the command line's start-up do not pay for modules a run never touches.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from certvigil.analysis.model import (
        CertificateFacts,
        ChainReport,
        EndpointReport,
        Finding,
        Severity,
    )
    from certvigil.errors import CertvigilError
    from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
    from certvigil.target import StartTLS, Target

__version__ = "0.1.0"

_HOMES = {
    "CertificateFacts": "certvigil.analysis.model",
    "ChainReport": "certvigil.analysis.model",
    "EndpointReport": "certvigil.analysis.model",
    "Finding": "certvigil.analysis.model",
    "Severity": "certvigil.analysis.model",
    "CertvigilError": "certvigil.errors",
    "FailureKind": "certvigil.observed.handshake",
    "ProbeFailure": "certvigil.observed.handshake",
    "TlsObservation": "certvigil.observed.handshake",
    "StartTLS": "certvigil.target",
    "Target": "certvigil.target",
}

__all__ = [
    "CertificateFacts",
    "CertvigilError",
    "ChainReport",
    "EndpointReport",
    "FailureKind",
    "Finding",
    "ProbeFailure",
    "Severity",
    "StartTLS",
    "Target",
    "TlsObservation",
    "__version__",
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
