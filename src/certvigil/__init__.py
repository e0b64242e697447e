"""certvigil: keeps an organisation's TLS certificates from surprising it."""

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
