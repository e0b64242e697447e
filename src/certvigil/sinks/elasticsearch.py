"""Shipping ECS documents to Elasticsearch or OpenSearch through the ``_bulk`` API.

The one seam to the outside system is an ``httpx`` transport: the command line uses
the real one, tests a real HTTP server on loopback answering as Elasticsearch does.

What the shipper promises:

* batches of at most ``max_batch_docs`` documents and ``max_batch_bytes`` bytes (a
  document larger than a batch on its own is reported as rejected, never sent);
* a whole request answered 429, 502, 503 or 504, or failing to connect, is retried
  with exponential back-off (``Retry-After`` honoured up to the cap), at most
  ``retries`` times; any other error status ends the run with the server's reason;
* in a 200 answer, each item is judged alone (as Elasticsearch does): items answered
  429 or 5xx are sent again in the next attempt, other failures are reported with
  their document id, status, error type and reason, and the rest count as indexed;
* every request has a time-out, the whole run a deadline, and an answer is read to
  at most ``max_response_bytes``: a server that never stops talking is cut off when
  the request's time is up, not when it is done;
* ids are the documents' own (``event.id``), so sending twice overwrites.
"""

from __future__ import annotations

import base64
import json
import random
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from certvigil.errors import ShipError
from certvigil.integrations.ecs import DEFAULT_INDEX_PREFIX, Document, bulk_action, dumps

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_REASON_LIMIT = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class ShipOptions:
    """How to reach the cluster and how hard to try.

    Attributes:
        url: The cluster's base URL (``https://es.example.net:9200``).
        api_key: An API key (the base64 ``id:key`` Elasticsearch hands out), or ``None``.
        user: A user for basic authentication, or ``None``.
        password: That user's password.
        verify: Verify the server's certificate (``True``), with this CA file (a
            path), or not at all (``False``).
        index_prefix: Indices are ``<prefix>-observations-YYYY.MM`` and so on.
        max_batch_docs: Most documents per ``_bulk`` request.
        max_batch_bytes: Most bytes of body per ``_bulk`` request.
        timeout_s: Longest wait for one request, answer included.
        deadline_s: Longest the whole run may take.
        retries: Most retries of one batch (whole request or its retryable items).
        backoff_s: The first retry's wait; it doubles each time, with jitter.
        backoff_max_s: The longest wait between two tries.
        max_response_bytes: Most bytes of one answer read.
    """

    url: str
    api_key: str | None = None
    user: str | None = None
    password: str | None = None
    verify: bool | str = True
    index_prefix: str = DEFAULT_INDEX_PREFIX
    max_batch_docs: int = 500
    max_batch_bytes: int = 5 * 1024 * 1024
    timeout_s: float = 30.0
    deadline_s: float = 600.0
    retries: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    max_response_bytes: int = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedItem:
    """A document the cluster refused.

    Attributes:
        doc_id: The document's id.
        index: The index it was meant for.
        status: The item's HTTP status (0 when it was never sent: too large).
        error_type: Elasticsearch's error type (``document_parsing_exception``).
        reason: Elasticsearch's reason, cut to 500 characters.
    """

    doc_id: str
    index: str
    status: int
    error_type: str
    reason: str


@dataclass(slots=True, kw_only=True)
class ShipResult:
    """What a run achieved.

    Attributes:
        indexed: Documents the cluster took.
        rejected: Documents it refused, with why.
        requests: ``_bulk`` requests sent, retries included.
        retried: Requests sent again after a 429/5xx answer (whole or for some items)
            or a connection error.
    """

    indexed: int = 0
    rejected: list[RejectedItem] = field(default_factory=list)
    requests: int = 0
    retried: int = 0


@dataclass(frozen=True, slots=True)
class _Item:
    doc_id: str
    index: str
    body: bytes


def _cut(text: str) -> str:
    return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 3] + "..."


def _error_text(error: Any) -> tuple[str, str]:
    """Elasticsearch's ``{"type", "reason", "caused_by"}`` as (type, reason)."""
    if not isinstance(error, dict):
        return "error", _cut(str(error))
    kind = str(error.get("type", "error"))
    reason = str(error.get("reason", ""))
    cause = error.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        reason = f"{reason}: {cause.get('reason')}"
    return _cut(kind), _cut(reason)


def _tls_context(verify: bool | str) -> ssl.SSLContext | bool:
    """The TLS verification for httpx: the system's CAs, one CA file, or none.

    Raises:
        ShipError: The CA file cannot be read or holds no certificate.
    """
    if verify is False:
        return False
    if verify is True:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=verify)
    except (OSError, ssl.SSLError) as exc:
        raise ShipError(f"{verify}: not a readable PEM CA file: {exc}") from exc


class ElasticsearchShipper:
    """Sends documents to one cluster. Constructing it opens no connection."""

    def __init__(
        self,
        options: ShipOptions,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Prepare a client for ``options.url``.

        Args:
            options: Where and how.
            transport: The HTTP transport (the default one when ``None``).
            sleep: What waits between retries (``time.sleep``).
        """
        self._options = options
        headers = {"Accept": "application/json", "User-Agent": "certvigil"}
        if options.api_key:
            headers["Authorization"] = f"ApiKey {options.api_key}"
        elif options.user is not None:
            token = base64.b64encode(f"{options.user}:{options.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self._client = httpx.Client(
            base_url=options.url.rstrip("/"),
            headers=headers,
            verify=_tls_context(options.verify),
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )
        self._sleep = sleep
        self._deadline = 0.0

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def __enter__(self) -> ElasticsearchShipper:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Requests -----------------------------------------------------------------------

    def _start_clock(self) -> None:
        self._deadline = time.monotonic() + self._options.deadline_s

    def _remaining(self) -> float:
        return self._deadline - time.monotonic()

    def _request(
        self, method: str, path: str, *, body: bytes, content_type: str
    ) -> tuple[int, Any, dict[str, str]]:
        """One request; returns status, decoded JSON answer (``None`` if not JSON), headers.

        Raises:
            httpx.TransportError: Could not connect or send (retryable).
            ShipError: The deadline passed, or the answer is too long.
        """
        remaining = self._remaining()
        if remaining <= 0:
            raise ShipError(
                f"{self._options.url}: deadline of {self._options.deadline_s:g}s passed"
            )
        budget = min(self._options.timeout_s, remaining)
        cut_off = time.monotonic() + budget
        request = self._client.build_request(
            method,
            path,
            content=body,
            headers={"Content-Type": content_type},
            timeout=httpx.Timeout(budget),
        )
        response = self._client.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self._options.max_response_bytes:
                    raise ShipError(
                        f"{self._options.url}{path}: answer longer than "
                        f"{self._options.max_response_bytes} bytes"
                    )
                if time.monotonic() > cut_off:
                    raise httpx.ReadTimeout("the answer did not end in time", request=request)
                chunks.append(chunk)
        finally:
            response.close()
        raw = b"".join(chunks)
        try:
            decoded = json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            decoded = None
        return response.status_code, decoded, dict(response.headers)

    def _wait(self, attempt: int, headers: dict[str, str] | None = None) -> None:
        options = self._options
        wait = min(options.backoff_max_s, options.backoff_s * (2**attempt))
        wait *= 0.5 + random.random() / 2
        retry_after = (headers or {}).get("retry-after", "")
        if retry_after.isdigit():
            wait = min(options.backoff_max_s, max(wait, float(retry_after)))
        if wait >= self._remaining():
            raise ShipError(
                f"{options.url}: deadline of {options.deadline_s:g}s passed while retrying"
            )
        self._sleep(wait)

    def _failure(self, path: str, status: int, answer: Any) -> ShipError:
        kind, reason = _error_text(answer.get("error") if isinstance(answer, dict) else None)
        if not isinstance(answer, dict) or "error" not in answer:
            kind, reason = "error", "answer is not Elasticsearch's JSON"
        hint = {
            401: " (check --api-key or --user)",
            403: " (the key or user may not write these indices)",
            413: " (lower --batch-bytes)",
        }.get(status, "")
        return ShipError(f"{self._options.url}{path}: HTTP {status}: {kind}: {reason}{hint}")

    # Installing the template and policy --------------------------------------------

    def put_json(self, path: str, document: Any) -> None:
        """PUT a JSON document (an ILM policy, an index template), retrying as ``_bulk``.

        Raises:
            ShipError: Refused, or no answer within the retries and the deadline.
        """
        self._start_clock()
        body = json.dumps(document).encode()
        for attempt in range(self._options.retries + 1):
            try:
                status, answer, headers = self._request(
                    "PUT", path, body=body, content_type="application/json"
                )
            except httpx.TransportError as exc:
                if attempt == self._options.retries:
                    raise ShipError(f"{self._options.url}{path}: {exc}") from exc
                self._wait(attempt)
                continue
            if status in _RETRY_STATUSES and attempt < self._options.retries:
                self._wait(attempt, headers)
                continue
            if status == 200 and isinstance(answer, dict) and answer.get("acknowledged") is True:
                return
            raise self._failure(path, status, answer)

    def install(self, *, policy: Document, template: Document) -> None:
        """Install the ILM policy, then the index template (which names the policy).

        Both are named after the index prefix and replace earlier versions.
        """
        prefix = self._options.index_prefix
        self.put_json(f"/_ilm/policy/{prefix}", policy)
        self.put_json(f"/_index_template/{prefix}", template)

    # Bulk ----------------------------------------------------------------------------

    def _batches(self, documents: Iterable[Document], result: ShipResult) -> Iterator[list[_Item]]:
        options = self._options
        batch: list[_Item] = []
        size = 0
        for document in documents:
            action = bulk_action(document, prefix=options.index_prefix)
            target = action["index"]
            body = (dumps(action) + "\n" + dumps(document) + "\n").encode()
            if len(body) > options.max_batch_bytes:
                result.rejected.append(
                    RejectedItem(
                        doc_id=target["_id"],
                        index=target["_index"],
                        status=0,
                        error_type="too_large",
                        reason=f"{len(body)} bytes, more than a batch may hold",
                    )
                )
                continue
            if batch and (
                len(batch) >= options.max_batch_docs or size + len(body) > options.max_batch_bytes
            ):
                yield batch
                batch, size = [], 0
            batch.append(_Item(target["_id"], target["_index"], body))
            size += len(body)
        if batch:
            yield batch

    def ship(self, documents: Iterable[Document]) -> ShipResult:
        """Index ``documents`` in batches; see the module's docstring for the rules.

        Returns:
            What was indexed and what was refused.

        Raises:
            ShipError: A request was refused as a whole (not 429/5xx), or the retries
                or the deadline ran out; ``indexed`` counts what got in before.
        """
        self._start_clock()
        result = ShipResult()
        for batch in self._batches(documents, result):
            try:
                self._ship_batch(batch, result)
            except ShipError as exc:
                raise ShipError(
                    f"{exc} ({result.indexed} documents indexed before)", indexed=result.indexed
                ) from exc
        return result

    def _ship_batch(self, batch: list[_Item], result: ShipResult) -> None:
        pending = batch
        for attempt in range(self._options.retries + 1):
            if attempt:
                result.retried += 1
            body = b"".join(item.body for item in pending)
            result.requests += 1
            try:
                status, answer, headers = self._request(
                    "POST", "/_bulk", body=body, content_type="application/x-ndjson"
                )
            except httpx.TransportError as exc:
                if attempt == self._options.retries:
                    raise ShipError(
                        f"{self._options.url}/_bulk: {exc or type(exc).__name__}"
                    ) from exc
                self._wait(attempt)
                continue
            if status in _RETRY_STATUSES:
                if attempt == self._options.retries:
                    raise self._failure("/_bulk", status, answer)
                self._wait(attempt, headers)
                continue
            if status != 200:
                raise self._failure("/_bulk", status, answer)
            pending = self._judge_items(pending, answer, result)
            if not pending:
                return
            if attempt < self._options.retries:
                self._wait(attempt, headers)
        for item in pending:
            result.rejected.append(
                RejectedItem(
                    doc_id=item.doc_id,
                    index=item.index,
                    status=429,
                    error_type="retries_exhausted",
                    reason=f"still refused after {self._options.retries} retries",
                )
            )

    def _judge_items(self, sent: list[_Item], answer: Any, result: ShipResult) -> list[_Item]:
        """Counts the indexed items, records the refused ones; returns those to send again."""
        items = answer.get("items") if isinstance(answer, dict) else None
        if not isinstance(items, list) or len(items) != len(sent):
            raise ShipError(
                f"{self._options.url}/_bulk: the answer does not list one result per document"
            )
        again: list[_Item] = []
        for item, outcome in zip(sent, items, strict=True):
            detail = next(iter(outcome.values()), None) if isinstance(outcome, dict) else None
            if not isinstance(detail, dict):
                raise ShipError(f"{self._options.url}/_bulk: malformed item in the answer")
            status = detail.get("status")
            if not isinstance(status, int) or isinstance(status, bool):
                raise ShipError(f"{self._options.url}/_bulk: item without a status")
            if 200 <= status < 300:
                result.indexed += 1
            elif status == 429 or status >= 500:
                again.append(item)
            else:
                kind, reason = _error_text(detail.get("error"))
                result.rejected.append(
                    RejectedItem(
                        doc_id=item.doc_id,
                        index=item.index,
                        status=status,
                        error_type=kind,
                        reason=reason,
                    )
                )
        return again
