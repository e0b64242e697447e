"""The sending seam: one notification out through apprise or a certvigil webhook.

A channel takes an :class:`OutgoingMessage` and either returns (the receiver took it) or
raises :class:`~certvigil.errors.DeliveryError`, marked permanent when retrying cannot
help. Two kinds exist:

* :class:`AppriseChannel` for every apprise URL (``mailto://``, ``slack://``,
  ``msteams://``, ``tgram://``, ``json://``…). apprise reports a failed send by a false
  result, not an exception; the channel turns that into a ``DeliveryError`` carrying the
  warnings apprise logged (secrets of the URL masked). For apprise's ``json://``,
  ``xml://``, ``form://`` and ``mailto://`` the idempotency key also travels as the
  ``Idempotency-Key`` header, and the delivery id as ``X-Certvigil-Delivery-Id``.
* :class:`WebhookChannel` for ``webhook+http://`` and ``webhook+https://``: a POST of
  certvigil's own JSON document (every alert field, see ``docs/alerts.md``) with the
  ``Idempotency-Key`` and ``X-Certvigil-Delivery-Id`` headers, through httpx.

Every message carries its idempotency key (the same on every attempt of a delivery: in
the body, and in a header where the protocol has headers) so that a receiver can drop
the repeats that at-least-once delivery may cause.
Another kind (the server's WebSocket stream) plugs in by implementing :class:`Channel`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from certvigil.alerts.routing import mask_secrets, redact_url
from certvigil.alerts.rules import EventAction
from certvigil.analysis.model import Severity
from certvigil.errors import DeliveryError
from certvigil.output.safe_text import visible

if TYPE_CHECKING:
    import httpx

DELIVERY_ID_HEADER = "X-Certvigil-Delivery-Id"
"""The header carrying the delivery id."""

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
"""The header carrying the delivery's idempotency key, for receivers that drop repeats."""

WEBHOOK_SCHEMES = ("webhook+http", "webhook+https")
"""URL schemes served by :class:`WebhookChannel` rather than apprise."""

_APPRISE_HEADER_SCHEMES = frozenset(
    {"json", "jsons", "xml", "xmls", "form", "forms", "mailto", "mailtos"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingMessage:
    """One notification of one alert event, as every channel receives it.

    Attributes:
        delivery_id: The outbox row (0 for a test notification or a message about the
            store itself, which have no row).
        idempotency_key: The same on every attempt of one delivery and different for
            every other one: what a receiver keys on to drop repeats.
        alert_id: The alert.
        event: Opened, notice or resolved.
        kind: The alert kind (``"expiry_threshold"``...; CT alerts have their own).
        severity: The alert's severity.
        state: The alert's state when the message was built.
        dedup_key: The alert's dedup key.
        endpoint: ``host:port`` (with SNI/STARTTLS), ``None`` for alerts about no endpoint.
        certificate_sha256: The certificate concerned, ``None`` when none.
        title: The alert's one-line summary.
        message: The human sentences for this event.
        opened_at_utc: When the alert opened.
        occurred_at_utc: When this event happened (aware UTC).
    """

    delivery_id: int
    idempotency_key: str
    alert_id: int
    event: EventAction
    kind: str
    severity: Severity
    state: str
    dedup_key: str
    endpoint: str | None
    certificate_sha256: str | None
    title: str
    message: str
    opened_at_utc: datetime
    occurred_at_utc: datetime

    @property
    def subject(self) -> str:
        """The e-mail subject / chat title: ``[certvigil] CRITICAL: Certificate expired: …``."""
        if self.event is EventAction.RESOLVE:
            label = "RESOLVED"
        else:
            label = self.severity.value.upper()
        title = visible(self.title.removeprefix("Resolved: "))
        return f"[certvigil] {label}: {title}"

    @property
    def body(self) -> str:
        """The plain-text body: the message, then the facts a reader needs to act.

        Each line is :func:`~certvigil.output.safe_text.visible`: a certificate's
        control or bidi characters cannot reach a reader's terminal or mail client.
        """
        lines = [visible(self.message), ""]
        if self.endpoint is not None:
            lines.append(f"Endpoint: {visible(self.endpoint)}")
        if self.certificate_sha256 is not None:
            lines.append(f"Certificate SHA-256: {self.certificate_sha256}")
        lines += [
            f"Severity: {self.severity.value}",
            f"Alert: #{self.alert_id} ({self.kind}, {self.state})",
            f"Opened: {self.opened_at_utc.isoformat()}",
            f"Delivery-Id: {self.delivery_id}",
            f"Idempotency-Key: {self.idempotency_key}",
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The webhook document (schema in ``docs/alerts.md``)."""
        return {
            "delivery_id": self.delivery_id,
            "idempotency_key": self.idempotency_key,
            "alert_id": self.alert_id,
            "event": self.event.value,
            "kind": self.kind,
            "severity": self.severity.value,
            "state": self.state,
            "dedup_key": self.dedup_key,
            "endpoint": self.endpoint,
            "certificate_sha256": self.certificate_sha256,
            "title": self.title,
            "message": self.message,
            "opened_at": self.opened_at_utc.isoformat(),
            "occurred_at": self.occurred_at_utc.isoformat(),
        }


class Channel(Protocol):
    """Sends one message; returns when the receiver took it."""

    @property
    def label(self) -> str:
        """The channel for logs and errors, without secrets."""
        ...

    async def send(self, message: OutgoingMessage) -> None:
        """Deliver ``message``.

        Raises:
            DeliveryError: The receiver did not take it (``is_permanent`` when a retry
                cannot help).
        """
        ...


class AppriseChannel:
    """A channel behind one apprise URL.

    Args:
        url: The apprise URL.
        timeout_s: How long to wait for apprise before counting the attempt failed.
    """

    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.label = redact_url(url)

    def _url_for(self, message: OutgoingMessage) -> str:
        scheme = self.url.partition("://")[0].lower()
        if scheme not in _APPRISE_HEADER_SCHEMES:
            return self.url
        # apprise's json/xml/form/mailto plugins turn "+Name=value" query items into
        # headers.
        joiner = "&" if "?" in self.url else "?"
        key = quote(message.idempotency_key, safe="")
        return (
            f"{self.url}{joiner}{quote('+' + DELIVERY_ID_HEADER)}={message.delivery_id}"
            f"&{quote('+' + IDEMPOTENCY_KEY_HEADER)}={key}"
        )

    async def send(self, message: OutgoingMessage) -> None:
        """Deliver through apprise in a worker thread, bounded by ``timeout_s``.

        Raises:
            DeliveryError: apprise refused the URL (permanent), reported failure, or
                did not finish in time.
        """
        try:
            await asyncio.wait_for(
                asyncio.to_thread(self._send_blocking, message), timeout=self.timeout_s
            )
        except TimeoutError:
            raise DeliveryError(self.label, f"no answer within {self.timeout_s:g} s") from None

    def _send_blocking(self, message: OutgoingMessage) -> None:
        import apprise

        notifier = apprise.Apprise()
        if not notifier.add(self._url_for(message)):
            raise DeliveryError(self.label, "apprise does not accept this URL", is_permanent=True)
        result = notifier.notify(
            body=message.body,
            title=message.subject,
            # Plain text: apprise escapes it for HTML and Markdown services, so a
            # certificate name cannot become a link or a heading there.
            body_format=apprise.NotifyFormat.TEXT,
            notify_type=_notify_type(message, apprise.NotifyType),
        )
        if not result:
            raise DeliveryError(self.label, mask_secrets(_apprise_reason(result), self.url))


def _notify_type(message: OutgoingMessage, types: Any) -> Any:
    if message.event is EventAction.RESOLVE:
        return types.SUCCESS
    if message.severity is Severity.CRITICAL:
        return types.FAILURE
    if message.severity is Severity.WARNING:
        return types.WARNING
    return types.INFO


def _apprise_reason(result: object) -> str:
    """The warnings apprise logged for a failed send (apprise 2 results carry them)."""
    logs = getattr(result, "logs", None)
    if callable(logs):
        messages = [
            str(getattr(entry, "message", entry))
            for entry in logs()
            if str(getattr(entry, "level", "")).upper() in ("WARNING", "ERROR", "CRITICAL")
        ]
        if messages:
            return "; ".join(messages)[-500:]
    return "apprise reported the notification as not sent"


class WebhookChannel:
    """certvigil's own JSON webhook (``webhook+https://host/path``), POSTed with httpx.

    2xx is success; 408, 429 and 5xx are retried; any other answer is permanent.

    Args:
        url: ``webhook+http://…`` or ``webhook+https://…``.
        timeout_s: Connect/read/write time-out for the request.
        transport: An httpx transport (tests plug a real local one in; ``None`` is
            the network).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        scheme, _, rest = url.partition("://")
        if scheme.lower() not in WEBHOOK_SCHEMES:
            raise ValueError(f'"{redact_url(url)}": a webhook URL starts with webhook+http(s)://')
        self.target_url = f"{scheme.lower().removeprefix('webhook+')}://{rest}"
        self.timeout_s = timeout_s
        self.transport = transport
        self.label = redact_url(url)

    async def send(self, message: OutgoingMessage) -> None:
        """POST the message's JSON document.

        Raises:
            DeliveryError: A network error or time-out, or a non-2xx answer.
        """
        # Imported when a webhook is sent: httpx (with its command line) is a tenth of
        # a second of start-up for every process that only might deliver.
        import httpx

        headers = {
            DELIVERY_ID_HEADER: str(message.delivery_id),
            IDEMPOTENCY_KEY_HEADER: message.idempotency_key,
        }
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout_s, transport=self.transport, follow_redirects=False
            ) as client:
                response = await client.post(
                    self.target_url, json=message.to_json(), headers=headers
                )
        except httpx.HTTPError as exc:
            reason = mask_secrets(f"{type(exc).__name__}: {exc}", self.target_url)
            raise DeliveryError(self.label, reason) from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        is_permanent = status < 500 and status not in (408, 429)
        raise DeliveryError(
            self.label, f"HTTP {status} {response.reason_phrase}", is_permanent=is_permanent
        )


def channel_for(url: str, *, timeout_s: float = 30.0) -> Channel:
    """The channel that serves ``url``: a certvigil webhook or apprise."""
    if url.partition("://")[0].lower() in WEBHOOK_SCHEMES:
        return WebhookChannel(url, timeout_s=timeout_s)
    return AppriseChannel(url, timeout_s=timeout_s)
