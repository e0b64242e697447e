"""Observations and certificates as Elastic Common Schema (ECS) documents, and ``_bulk`` lines.

Pure: snapshots in, plain JSON values out; no clock (``days_left`` is counted from the
observation's own time, so a document is the same however often it is exported).

Two kinds of document, both ``event.kind: state``:

* an observation (``event.dataset: certvigil.observation``), id
  ``obs-<observation id>`` from the store, or ``scan-<endpoint>-<time>`` from a scan
  document: what one endpoint served at one time and the judgement on it;
* a certificate (``event.dataset: certvigil.certificate``), id ``cert-<sha256>``: the
  certificate as last seen in the exported period, and the endpoints serving it.

Each goes to a monthly index, ``<prefix>-observations-YYYY.MM`` or
``<prefix>-certificates-YYYY.MM``, chosen by the document's ``@timestamp``: the same
document always lands in the same index under the same id, so exporting or shipping a
period twice overwrites rather than duplicates, and the ILM policy can drop whole
months. The fields follow ECS 9.4 (``tls.*``, ``server.*``, ``url.domain``,
``event.*``); what ECS has no field for is under ``certvigil.*`` (see
``contrib/elasticsearch/certvigil-index-template.json``).
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from certvigil.analysis.days_remaining import days_remaining
from certvigil.integrations.snapshot import EndpointSnapshot, LeafSnapshot

ECS_VERSION = "9.4.0"
"""The ECS release whose field definitions the documents follow."""

DEFAULT_INDEX_PREFIX = "certvigil"
"""Indices are ``<prefix>-observations-YYYY.MM`` and ``<prefix>-certificates-YYYY.MM``."""

_KEY_ALGORITHMS = {"rsa": "RSA", "ec": "EC", "dsa": "DSA", "ed25519": "Ed25519", "ed448": "Ed448"}
_TLS_VERSIONS = {
    "TLSv1": ("tls", "1.0"),
    "TLSv1.0": ("tls", "1.0"),
    "TLSv1.1": ("tls", "1.1"),
    "TLSv1.2": ("tls", "1.2"),
    "TLSv1.3": ("tls", "1.3"),
    "SSLv2": ("ssl", "2.0"),
    "SSLv3": ("ssl", "3.0"),
}

Document = dict[str, Any]
"""One ECS document as plain JSON values."""


def utc_text(value: datetime) -> str:
    """An aware time as ECS ``date`` text: ISO 8601 in UTC with ``Z``, milliseconds."""
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@functools.lru_cache(maxsize=8192)
def _is_ip(text: str) -> bool:
    # Cached: an export asks about the same few thousand hosts and peers again and again.
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _peer_ip(text: str | None) -> str | None:
    """The peer address as an ECS ``ip`` (a zone or a port, if ever present, dropped)."""
    if not text:
        return None
    candidate = text.split("%", 1)[0]
    if candidate.startswith("[") and "]" in candidate:
        candidate = candidate[1 : candidate.index("]")]
    return candidate if _is_ip(candidate) else None


def _x509(leaf: LeafSnapshot) -> Document:
    x509: Document = {
        "subject": {"distinguished_name": leaf.subject},
        "issuer": {"distinguished_name": leaf.issuer},
        "serial_number": leaf.serial_hex.upper(),
        "not_before": utc_text(leaf.not_before_utc),
        "not_after": utc_text(leaf.not_after_utc),
        "alternative_names": [*leaf.san_dns, *leaf.san_ip],
        "public_key_algorithm": _KEY_ALGORITHMS.get(leaf.key_type.lower(), leaf.key_type),
        "public_key_size": leaf.key_bits,
        "signature_algorithm": leaf.signature_algorithm,
        "version_number": str(leaf.version),
    }
    if leaf.subject_cn is not None:
        x509["subject"]["common_name"] = [leaf.subject_cn]
    if leaf.issuer_cn is not None:
        x509["issuer"]["common_name"] = [leaf.issuer_cn]
    if leaf.key_curve:
        x509["public_key_curve"] = leaf.key_curve
    return x509


def _server_tls(leaf: LeafSnapshot) -> Document:
    hashes = {"sha256": leaf.sha256_hex.upper()}
    if leaf.sha1_hex:
        hashes["sha1"] = leaf.sha1_hex.upper()
    return {
        "hash": hashes,
        "subject": leaf.subject,
        "issuer": leaf.issuer,
        "not_before": utc_text(leaf.not_before_utc),
        "not_after": utc_text(leaf.not_after_utc),
        "x509": _x509(leaf),
    }


def _server(snapshot: EndpointSnapshot) -> Document:
    server: Document = {"address": snapshot.host, "port": snapshot.port}
    if not _is_ip(snapshot.host):
        server["domain"] = snapshot.host
    ip = _peer_ip(snapshot.peer_address) or (snapshot.host if _is_ip(snapshot.host) else None)
    if ip is not None:
        server["ip"] = ip
    return server


def observation_id(snapshot: EndpointSnapshot) -> str:
    """The document id: the store's observation id, else the endpoint and the time."""
    if snapshot.observation_id is not None:
        return f"obs-{snapshot.observation_id}"
    return f"scan-{snapshot.endpoint}-{utc_text(snapshot.observed_at_utc)}"


def certificate_id(leaf: LeafSnapshot) -> str:
    """The document id of a certificate: its SHA-256."""
    return f"cert-{leaf.sha256_hex.lower()}"


def observation_document(snapshot: EndpointSnapshot) -> Document:
    """One observation as an ECS document (``event.dataset: certvigil.observation``)."""
    when = snapshot.observed_at_utc
    leaf = snapshot.leaf
    certvigil: Document = {
        "endpoint": snapshot.endpoint,
        "verdict": snapshot.verdict,
        "findings": [
            {"code": f.code, "severity": f.severity.value, "message": f.message}
            for f in snapshot.findings
        ],
        "finding_codes": sorted({f.code for f in snapshot.findings}),
    }
    optional: dict[str, Any] = {
        "observation_id": snapshot.observation_id,
        "sni": snapshot.sni,
        "starttls": snapshot.starttls,
        "grade": snapshot.grade,
        "trusted": snapshot.is_trusted,
        "hostname_matches": snapshot.hostname_matches,
        "revocation": snapshot.revocation,
        "failure_kind": snapshot.failure_kind,
        "days_left": days_remaining(leaf.not_after_utc, now=when) if leaf else None,
    }
    certvigil.update({key: value for key, value in optional.items() if value is not None})
    event: Document = {
        "kind": "state",
        "category": ["network"],
        "type": ["info"],
        "module": "certvigil",
        "dataset": "certvigil.observation",
        "outcome": "failure" if snapshot.is_failed else "success",
        "id": observation_id(snapshot),
    }
    if snapshot.failure_kind is not None:
        event["reason"] = snapshot.failure_kind
    document: Document = {
        "@timestamp": utc_text(when),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "server": _server(snapshot),
    }
    if not _is_ip(snapshot.host):
        document["url"] = {"domain": snapshot.host}
    tls: Document = {"established": not snapshot.is_failed}
    if snapshot.protocol is not None:
        protocol, version = _TLS_VERSIONS.get(snapshot.protocol, ("tls", snapshot.protocol))
        tls["version"] = version
        tls["version_protocol"] = protocol
    if snapshot.cipher is not None:
        tls["cipher"] = snapshot.cipher
    if leaf is not None:
        tls["server"] = _server_tls(leaf)
    document["tls"] = tls
    if snapshot.tags:
        document["tags"] = list(snapshot.tags)
    document["certvigil"] = certvigil
    return document


class CertificateCollector:
    """Gathers the distinct leaves of a stream of snapshots, keeping each one's latest sighting.

    Memory grows with the number of distinct certificates, not of observations.
    """

    def __init__(self) -> None:
        """Start empty."""
        self._latest: dict[str, EndpointSnapshot] = {}
        self._endpoints: dict[str, set[str]] = {}

    def add(self, snapshot: EndpointSnapshot) -> None:
        """Note one snapshot's leaf (snapshots without a leaf are ignored)."""
        leaf = snapshot.leaf
        if leaf is None:
            return
        key = leaf.sha256_hex
        seen = self._endpoints.setdefault(key, set())
        if len(seen) < MAX_ENDPOINTS_PER_CERTIFICATE:
            seen.add(snapshot.endpoint)
        known = self._latest.get(key)
        if known is None or snapshot.observed_at_utc > known.observed_at_utc:
            self._latest[key] = snapshot

    def documents(self) -> list[Document]:
        """One document per distinct leaf, by fingerprint (see :func:`certificate_document`)."""
        return [
            certificate_document(self._latest[key], sorted(self._endpoints[key]))
            for key in sorted(self._latest)
        ]


MAX_ENDPOINTS_PER_CERTIFICATE = 1000
"""Most endpoints listed in one certificate document."""


def certificate_document(snapshot: EndpointSnapshot, endpoints: Sequence[str]) -> Document:
    """The certificate document for ``snapshot``'s leaf (``event.dataset: certvigil.certificate``).

    ``days_left`` is counted from the snapshot's time; ``certvigil.endpoints`` lists
    the endpoints seen serving it.

    Raises:
        ValueError: The snapshot has no leaf.
    """
    leaf = snapshot.leaf
    if leaf is None:
        raise ValueError("a certificate document needs a snapshot with a leaf")
    when = snapshot.observed_at_utc
    return {
        "@timestamp": utc_text(when),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "kind": "state",
            "category": ["network"],
            "type": ["info"],
            "module": "certvigil",
            "dataset": "certvigil.certificate",
            "id": certificate_id(leaf),
        },
        "tls": {"server": _server_tls(leaf)},
        "certvigil": {
            "days_left": days_remaining(leaf.not_after_utc, now=when),
            "endpoints": list(endpoints),
        },
    }


def certificate_documents(snapshots: Iterable[EndpointSnapshot]) -> list[Document]:
    """One ECS document per distinct leaf, as last seen among ``snapshots``."""
    collector = CertificateCollector()
    for snapshot in snapshots:
        collector.add(snapshot)
    return collector.documents()


def index_for(document: Document, *, prefix: str = DEFAULT_INDEX_PREFIX) -> str:
    """The monthly index a document belongs in, from its dataset and ``@timestamp``."""
    kind = (
        "certificates"
        if document["event"]["dataset"] == "certvigil.certificate"
        else "observations"
    )
    stamp: str = document["@timestamp"]
    return f"{prefix}-{kind}-{stamp[0:4]}.{stamp[5:7]}"


def check_index_prefix(prefix: str) -> str:
    """An index prefix Elasticsearch accepts (lower case, no ``\\ / * ? " < > | , # :``).

    Raises:
        ValueError: The prefix breaks Elasticsearch's rules for index names.
    """
    if not prefix or len(prefix) > 200 or prefix != prefix.lower():
        raise ValueError("an index prefix is 1 to 200 lower-case characters")
    if prefix[0] in "-_+" or prefix in (".", ".."):
        raise ValueError("an index prefix may not start with -, _ or +")
    if any(c in '\\/*?"<>|,#: ' for c in prefix) or not prefix.isprintable():
        raise ValueError('an index prefix may not contain \\ / * ? " < > | , # : or spaces')
    return prefix


def bulk_action(document: Document, *, prefix: str = DEFAULT_INDEX_PREFIX) -> Document:
    """The ``_bulk`` action line for a document: ``index`` with its id and index."""
    return {"index": {"_index": index_for(document, prefix=prefix), "_id": document["event"]["id"]}}


def dumps(value: Any) -> str:
    """One NDJSON line's JSON (ASCII only, so no byte can end a line or confuse a terminal)."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def bulk_lines(
    documents: Iterable[Document], *, prefix: str = DEFAULT_INDEX_PREFIX
) -> Iterator[str]:
    """The ``_bulk`` body for documents: an action line and a source line each, with ``\\n``."""
    for document in documents:
        yield dumps(bulk_action(document, prefix=prefix)) + "\n"
        yield dumps(document) + "\n"


def documents_for(snapshots: Sequence[EndpointSnapshot]) -> list[Document]:
    """Observation documents for ``snapshots``, then their certificates' documents."""
    return [observation_document(s) for s in snapshots] + certificate_documents(snapshots)
