"""The agent's side of the API: send a batch, fetch assigned targets, each with a deadline."""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from certvigil.errors import CertvigilError

SSLSCOUT_REPORT_PATH = "/api/sslscout/report"
REQUEST_DEADLINE_S = 60.0
"""Longest one request may take, answer included."""
MAX_ANSWER_BYTES = 4 * 1024 * 1024
"""Longest answer read from the server."""


class ServerUnreachable(CertvigilError):
    """The server could not be reached or failed (5xx); worth trying again later."""


class ServerRefused(CertvigilError):
    """The server refused the request (4xx); retrying the same request will not help.

    Attributes:
        status: The HTTP status.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ServerUrls:
    """Where the agent posts reports and asks for its targets.

    Attributes:
        reports: The report URL (``api_endpoint`` as given, for SSL Scout files).
        targets: The assigned-targets URL.
    """

    reports: str
    targets: str

    @classmethod
    def from_configured(cls, url: str) -> ServerUrls:
        """The URLs for a configured server URL (a base URL or SSL Scout's report URL)."""
        parts = urlsplit(url)
        path = parts.path.rstrip("/")
        if path.endswith(SSLSCOUT_REPORT_PATH):
            base_path = path[: -len(SSLSCOUT_REPORT_PATH)]
            reports = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        else:
            base_path = path
            reports = urlunsplit((parts.scheme, parts.netloc, f"{path}/api/v1/reports", "", ""))
        targets = urlunsplit(
            (parts.scheme, parts.netloc, f"{base_path}/api/v1/agents/me/targets", "", "")
        )
        return cls(reports=reports, targets=targets)


class ServerClient:
    """HTTP client of one server.

    Args:
        urls: Where to send.
        key: The agent's API key.
        ca_file: PEM bundle verifying the server's certificate (system roots otherwise).
    """

    def __init__(self, urls: ServerUrls, key: str, *, ca_file: Path | None = None) -> None:
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self._urls = urls
        self._client = httpx.AsyncClient(
            headers={"X-API-Key": key, "User-Agent": "certvigil-agent"},
            timeout=httpx.Timeout(30.0, connect=10.0),
            verify=verify,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Closes the connections."""
        await self._client.aclose()

    async def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(REQUEST_DEADLINE_S):
                async with self._client.stream(method, url, **kwargs) as response:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_ANSWER_BYTES:
                            raise ServerUnreachable(f"{url}: answer larger than expected")
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            raise ServerUnreachable(f"{url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ServerUnreachable(f"{url}: HTTP {response.status_code}")
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            document = {}
        if response.status_code >= 400:
            error = document.get("error", {}) if isinstance(document, dict) else {}
            message = error.get("message") if isinstance(error, dict) else None
            raise ServerRefused(
                response.status_code,
                f"{url}: HTTP {response.status_code}: {message or 'refused'}",
            )
        return document

    async def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """Posts a batch; returns the server's answer (accepted, rejected...)."""
        answer = await self._request("POST", self._urls.reports, json=body)
        return answer if isinstance(answer, dict) else {}

    async def assigned_targets(self, tags: tuple[str, ...]) -> list[dict[str, Any]]:
        """The targets the server assigns to this agent (by its name or tags)."""
        answer = await self._request("GET", self._urls.targets, params=[("tag", t) for t in tags])
        targets = answer.get("targets") if isinstance(answer, dict) else None
        return [t for t in targets if isinstance(t, dict)] if isinstance(targets, list) else []
