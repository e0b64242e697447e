"""What an agent sends for one endpoint, and how the server turns it back into a judgement.

An item is the raw observation (never the agent's verdict): the server judges it
itself, with the trust settings the agent sent, so that one judgement rule applies to
every network. ``item_from_report`` is the agent's half, ``judge_item`` the server's.

Format ``certvigil.handshake/1``: ``target`` (host, port, sni, starttls), then either
``handshake`` (peer_address, observed_at, chain_der as base64 DER, protocol, cipher,
alpn, connect_s, handshake_s, ocsp_staple_der) or ``failure`` (kind, detail,
observed_at, peer_address, tls_alert).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from certvigil.analysis.model import EndpointReport
from certvigil.analysis.report import analyse_endpoint
from certvigil.analysis.trust import TrustStore
from certvigil.errors import TargetError
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.targets.target import StartTLS, Target

ITEM_FORMAT = "certvigil.handshake/1"
"""The ``format`` of an item."""

MAX_CHAIN_CERTIFICATES = 32
MAX_CERTIFICATE_BYTES = 64 * 1024
MAX_TEXT = 2000
MAX_HOST = 255
MAX_TAGS = 32
MAX_TAG = 100


class ItemError(ValueError):
    """An item that cannot be read; the message names the field."""


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def item_from_report(report: EndpointReport, *, tags: Sequence[str] = ()) -> dict[str, Any]:
    """The item an agent sends for one scanned endpoint, with the endpoint's labels."""
    t = report.target
    item: dict[str, Any] = {
        "format": ITEM_FORMAT,
        "tags": list(tags),
        "target": {
            "host": t.host,
            "port": t.port,
            "sni": t.sni,
            "starttls": t.starttls.value if t.starttls is not None else None,
        },
    }
    if report.observation is not None:
        o = report.observation
        item["handshake"] = {
            "peer_address": o.peer_address,
            "observed_at": _time(o.observed_at_utc),
            "chain_der": [_b64(der) for der in o.chain_der],
            "protocol": o.protocol,
            "cipher": o.cipher,
            "alpn": o.alpn,
            "connect_s": o.connect_s,
            "handshake_s": o.handshake_s,
            "ocsp_staple_der": _b64(o.ocsp_staple_der) if o.ocsp_staple_der else None,
        }
    elif report.failure is not None:
        f = report.failure
        item["failure"] = {
            "kind": f.kind.value,
            "detail": f.detail,
            "observed_at": _time(f.observed_at_utc),
            "peer_address": f.peer_address,
            "tls_alert": f.tls_alert,
        }
    return item


def _field(
    data: Any, name: str, kind: type | tuple[type, ...], where: str, *, optional: bool = False
) -> Any:
    if not isinstance(data, dict):
        raise ItemError(f"{where}: not an object")
    value = data.get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ItemError(f"{where}.{name}: not a number")
    if not isinstance(value, kind):
        raise ItemError(f"{where}.{name}: missing or of the wrong type")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ItemError(f"{where}.{name}: longer than {MAX_TEXT} characters")
    return value


def _parse_time(text: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ItemError(f"{where}: not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ItemError(f"{where}: time without a zone")
    return value.astimezone(UTC)


def _der(text: str, where: str) -> bytes:
    if len(text) > MAX_CERTIFICATE_BYTES * 4 // 3 + 4:
        raise ItemError(f"{where}: larger than {MAX_CERTIFICATE_BYTES} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ItemError(f"{where}: not base64") from None


def target_from_item(item: Any) -> Target:
    """The endpoint an item is about.

    Raises:
        ItemError: The target is missing or invalid.
    """
    data = _field(item, "target", dict, "item")
    host = _field(data, "host", str, "target")
    if len(host) > MAX_HOST or any(ord(c) < 0x21 or c == "\x7f" for c in host):
        raise ItemError(f"target.host: not a host name or address (at most {MAX_HOST} characters)")
    port = _field(data, "port", int, "target")
    sni = _field(data, "sni", str, "target", optional=True)
    starttls_text = _field(data, "starttls", str, "target", optional=True)
    try:
        starttls = StartTLS(starttls_text) if starttls_text is not None else None
    except ValueError:
        raise ItemError(f"target.starttls: unknown protocol {starttls_text!r}") from None
    try:
        return Target(host=host, port=port, sni=sni, starttls=starttls)
    except (TargetError, ValueError) as exc:
        raise ItemError(f"target: {exc}") from None


def tags_from_item(item: Any) -> tuple[str, ...] | None:
    """The endpoint's labels an item carries, ``None`` when it carries none.

    Raises:
        ItemError: Too many, too long, or not strings.
    """
    tags = item.get("tags") if isinstance(item, dict) else None
    if tags is None:
        return None
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise ItemError(f"tags: a list of at most {MAX_TAGS} strings")
    for index, tag in enumerate(tags):
        if not isinstance(tag, str) or not 0 < len(tag) <= MAX_TAG:
            raise ItemError(f"tags[{index}]: a string of 1 to {MAX_TAG} characters")
    return tuple(sorted(set(tags)))


def observation_from_item(item: Any) -> TlsObservation | ProbeFailure:
    """The raw observation in an item.

    Raises:
        ItemError: A field is missing, of the wrong type or out of bounds.
    """
    if not isinstance(item, dict):
        raise ItemError("item: not an object")
    if item.get("format") != ITEM_FORMAT:
        raise ItemError(f"format: expected {ITEM_FORMAT!r}")
    target = target_from_item(item)
    if isinstance(item.get("handshake"), dict):
        h = item["handshake"]
        chain = _field(h, "chain_der", list, "handshake")
        if len(chain) > MAX_CHAIN_CERTIFICATES:
            raise ItemError(f"handshake.chain_der: more than {MAX_CHAIN_CERTIFICATES} certificates")
        ders = []
        for index, text in enumerate(chain):
            if not isinstance(text, str):
                raise ItemError(f"handshake.chain_der[{index}]: not a string")
            ders.append(_der(text, f"handshake.chain_der[{index}]"))
        staple = _field(h, "ocsp_staple_der", str, "handshake", optional=True)
        connect_s = float(_field(h, "connect_s", (int, float), "handshake"))
        handshake_s = float(_field(h, "handshake_s", (int, float), "handshake"))
        if not (0 <= connect_s < 1e6 and 0 <= handshake_s < 1e6):
            raise ItemError("handshake: timings out of range")
        return TlsObservation(
            target=target,
            peer_address=_field(h, "peer_address", str, "handshake"),
            observed_at_utc=_parse_time(
                _field(h, "observed_at", str, "handshake"), "handshake.observed_at"
            ),
            chain_der=tuple(ders),
            protocol=_field(h, "protocol", str, "handshake"),
            cipher=_field(h, "cipher", str, "handshake"),
            alpn=_field(h, "alpn", str, "handshake", optional=True),
            connect_s=connect_s,
            handshake_s=handshake_s,
            ocsp_staple_der=_der(staple, "handshake.ocsp_staple_der") if staple else None,
        )
    if isinstance(item.get("failure"), dict):
        f = item["failure"]
        kind_text = _field(f, "kind", str, "failure")
        try:
            kind = FailureKind(kind_text)
        except ValueError:
            raise ItemError(f"failure.kind: unknown kind {kind_text!r}") from None
        return ProbeFailure(
            target=target,
            kind=kind,
            detail=_field(f, "detail", str, "failure"),
            observed_at_utc=_parse_time(
                _field(f, "observed_at", str, "failure"), "failure.observed_at"
            ),
            peer_address=_field(f, "peer_address", str, "failure", optional=True),
            tls_alert=_field(f, "tls_alert", str, "failure", optional=True),
        )
    raise ItemError("item: needs a handshake or a failure object")


def judge_item(item: Any, *, now: datetime, trust: TrustStore) -> EndpointReport:
    """The server's judgement of one item.

    Raises:
        ItemError: The item cannot be read.
    """
    return analyse_endpoint(observation_from_item(item), now=now, trust=trust)
