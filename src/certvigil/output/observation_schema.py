"""The observation document's schema: pydantic models of ``certvigil.observed.codec``'s JSON.

The codec writes plain JSON straight from the frozen ``certvigil.observed`` dataclasses;
these models are the published contract (``docs/schema/observation.schema.json``) it is
held to. Each model names the dataclass it mirrors, field for field
(``tests/observed/test_observation_schema.py`` checks both directions). Every field
is required and an unknown one is refused; the codec itself reads stricter still (no
value is coerced).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from certvigil.observed.endpoint import ObservedStep
from certvigil.observed.handshake import FailureKind
from certvigil.observed.revocation import FetchFailureKind, RevocationMethod
from certvigil.targets.target import StartTLS
from certvigil.tls.records import TlsProtocol

__all__ = ["MIRRORS", "ObservationDocument"]

Base64 = Annotated[
    str,
    Field(
        description="Bytes, base64 (standard alphabet, padded).",
        json_schema_extra={"contentEncoding": "base64"},
    ),
]
Sha256Hex = Annotated[str, Field(pattern="^[0-9a-f]{64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CertificateReferenceModel(_Model):
    """A certificate its writer's caller keeps itself (the store's ``certificates``
    table), named by the SHA-256 of its DER; only a reader given that caller's
    certificates resolves it. Documents certvigil sends or prints carry the bytes."""

    sha256: Sha256Hex


Certificate = Annotated[
    Base64 | CertificateReferenceModel,
    Field(description="A certificate: its DER in base64, or a reference by SHA-256."),
]


class ObservedTargetModel(_Model):
    """The endpoint (``Target``)."""

    host: str
    port: int
    sni: str | None
    starttls: StartTLS | None


class HandshakeModel(_Model):
    """A successful handshake (``TlsObservation``)."""

    type: Literal["tls"]
    target: ObservedTargetModel
    peer_address: str
    observed_at_utc: AwareDatetime
    chain_der: tuple[Certificate, ...]
    protocol: str
    cipher: str
    alpn: str | None
    connect_s: float
    handshake_s: float
    ocsp_staple_der: Base64 | None


class ProbeFailureModel(_Model):
    """An endpoint, or its protocol probes, that could not be observed (``ProbeFailure``)."""

    type: Literal["failure"]
    target: ObservedTargetModel
    kind: FailureKind
    detail: str
    observed_at_utc: AwareDatetime
    peer_address: str | None
    tls_alert: str | None


class IssuerFetchModel(_Model):
    """One AIA CA-issuers URL and what it gave (``IssuerFetch``)."""

    url: str
    certificates_der: tuple[Certificate, ...]
    error: str | None


class FetchFailureModel(_Model):
    """Why an OCSP or CRL fetch gave nothing (``FetchFailure``)."""

    kind: FetchFailureKind
    detail: str
    http_status: int | None


class RevocationFetchModel(_Model):
    """One OCSP or CRL fetch (``RevocationFetch``); a CRL's bytes are in ``crls``."""

    method: RevocationMethod
    url: str
    fetched_at_utc: AwareDatetime
    response_der: Base64 | None = Field(
        description="The OCSP response; always null for a CRL (see response_sha256)."
    )
    response_sha256: Sha256Hex | None = Field(
        description="A CRL's SHA-256: its bytes are the document's (or the store's) crls entry."
    )
    failure: FetchFailureModel | None
    elapsed_s: float
    from_cache: bool
    http_method: str


class CertificateRevocationObservationModel(_Model):
    """The fetches for one served certificate (``CertificateRevocationObservation``)."""

    cert_index: int
    certificate_der: Certificate
    issuer_der: Certificate | None
    fetches: tuple[RevocationFetchModel, ...]
    ocsp_skipped: bool


class RevocationObservationModel(_Model):
    """Everything fetched for revocation (``RevocationObservation``)."""

    target: ObservedTargetModel | None
    observed_at_utc: AwareDatetime
    certificates: tuple[CertificateRevocationObservationModel, ...]
    staple_requested: bool
    staple_der: Base64 | None


class ProtocolSupportModel(_Model):
    """One protocol version probe (``ProtocolSupport``)."""

    protocol: TlsProtocol
    is_accepted: bool
    cipher_suites: tuple[int, ...]
    server_enforces_order: bool | None
    rejection: str | None


class HttpObservationModel(_Model):
    """The answer to ``GET /`` (``HttpObservation``), HSTS included."""

    status_code: int
    hsts_header: str | None


class TlsConfigModel(_Model):
    """The protocol, suite, group and option probes (``TlsConfigObservation``)."""

    type: Literal["tls_config"]
    target: ObservedTargetModel
    peer_address: str
    observed_at_utc: AwareDatetime
    protocols: tuple[ProtocolSupportModel, ...]
    tls13_groups: tuple[int, ...]
    ecdh_groups: tuple[int, ...]
    dh_prime_bits: int | None
    fallback_scsv: bool | None
    secure_renegotiation: bool | None
    compression: bool | None
    heartbleed: bool | None
    http: HttpObservationModel | None
    handshake_count: int
    elapsed_s: float
    probe_errors: tuple[str, ...]


class EndpointObservationModel(_Model):
    """Everything seen of one endpoint at one time (``EndpointObservation``)."""

    target: ObservedTargetModel
    observed_at_utc: AwareDatetime
    handshake: Annotated[HandshakeModel | ProbeFailureModel, Field(discriminator="type")]
    issuer_fetches: tuple[IssuerFetchModel, ...]
    revocation: RevocationObservationModel | None
    tls_config: Annotated[TlsConfigModel | ProbeFailureModel, Field(discriminator="type")] | None
    steps: tuple[ObservedStep, ...]
    cut_steps: tuple[ObservedStep, ...]
    deadline_s: float | None


class ObservationDocument(_Model):
    """One observation document (``certvigil.observed.codec``)."""

    format: Literal["certvigil.observation/1"]
    observation: EndpointObservationModel
    crls: dict[Sha256Hex, Base64]


MIRRORS: dict[str, type[_Model]] = {
    "Target": ObservedTargetModel,
    "TlsObservation": HandshakeModel,
    "ProbeFailure": ProbeFailureModel,
    "IssuerFetch": IssuerFetchModel,
    "FetchFailure": FetchFailureModel,
    "RevocationFetch": RevocationFetchModel,
    "CertificateRevocationObservation": CertificateRevocationObservationModel,
    "RevocationObservation": RevocationObservationModel,
    "ProtocolSupport": ProtocolSupportModel,
    "HttpObservation": HttpObservationModel,
    "TlsConfigObservation": TlsConfigModel,
    "EndpointObservation": EndpointObservationModel,
}
"""The model mirroring each ``certvigil.observed`` dataclass, by the dataclass's name."""
