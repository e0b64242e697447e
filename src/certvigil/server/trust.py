"""The trust settings an agent sends with its reports, and the stores built from them.

Agents judge nothing: the server does, with the agent's trust settings, so an internal
CA trusted in one network is trusted for that network's endpoints only. The agent sends
its extra anchors as PEM (paths on its machine mean nothing here). Stores are built once
per distinct document and kept (a handful of distinct documents in practice; the cache
is bounded).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Annotated

from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field

from certvigil.analysis.certificate import parse_certificate
from certvigil.analysis.trust import TrustStore
from certvigil.errors import CertificateLoadError
from certvigil.files.certificates import load_certificate_bytes
from certvigil.files.truststore import load_trust_store
from certvigil.server.errors import ApiError

MAX_CA_PEM_CHARS = 64 * 1024
CACHE_SIZE = 32


class TrustDocument(BaseModel):
    """Which anchors the agent's observations are judged against.

    Attributes:
        public: Mozilla's roots (certifi).
        system: The server's operating-system bundle.
        ca_pem: Extra anchors (the agent's ``trust.ca_files``), PEM text.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    public: bool = True
    system: bool = False
    ca_pem: list[Annotated[str, Field(max_length=MAX_CA_PEM_CHARS)]] = Field(
        default_factory=list, max_length=16
    )


_lock = threading.Lock()
_cache: OrderedDict[str, TrustStore] = OrderedDict()
_public: dict[tuple[bool, bool], tuple[x509.Certificate, ...]] = {}


def _public_anchors(public: bool, system: bool) -> tuple[x509.Certificate, ...]:
    key = (public, system)
    if key not in _public:
        if not public and not system:
            _public[key] = ()
        else:
            _public[key] = load_trust_store(include_default=public, use_system=system).anchors
    return _public[key]


def trust_store_for(document: TrustDocument) -> TrustStore:
    """The store for a trust document, built on first use.

    Raises:
        ApiError: 422 for PEM that holds no certificate, or a document trusting nothing.
    """
    digest = hashlib.sha256(document.model_dump_json().encode()).hexdigest()
    with _lock:
        found = _cache.get(digest)
        if found is not None:
            _cache.move_to_end(digest)
            return found
    internal: list[x509.Certificate] = []
    for index, pem in enumerate(document.ca_pem):
        try:
            ders = load_certificate_bytes(pem.encode("utf-8"), source=f"trust.ca_pem[{index}]")
        except CertificateLoadError as exc:
            raise ApiError(422, "invalid_request", str(exc)) from None
        internal += [parse_certificate(der).certificate for der in ders]
    public = _public_anchors(document.public, document.system)
    if not internal and not public:
        raise ApiError(422, "invalid_request", "trust: trusts nothing")
    store = TrustStore.from_certificates(
        internal,
        source=f"agent trust ({len(internal)} extra anchors)",
        public=public,
    )
    with _lock:
        _cache[digest] = store
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return store
