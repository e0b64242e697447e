"""Which logs the watch reads: the log list (file, URL, fetched copy or shipped copy) and
the logs configured directly.

The list is read from ``ct.log_list`` (a path, relative to the configuration file, or an
http(s) URL); without one, from the copy ``certvigil ct update-log-list`` keeps in the
user's data directory, else from the copy shipped in ``certvigil/ct/data`` (see its
``PROVENANCE.md``). A signature is checked when a signature and key are configured; the
shipped and updated copies are checked with Google's key shipped alongside.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import httpx

from certvigil.config.ct import CtLogSettings, CtSettings
from certvigil.ct.errors import LogListError
from certvigil.ct.log_list import (
    CtLog,
    LogProtocol,
    LogState,
    SkippedLog,
    TailPlan,
    parse_log_list,
    select_logs,
    verify_log_list_signature,
)
from certvigil.ct.signature import log_id
from certvigil.errors import UsageError

MAX_LOG_LIST_BYTES = 16 * 1024 * 1024
"""The largest log list (or signature) read."""
FETCH_DEADLINE_S = 30.0
"""The whole time a log list download may take."""
GOOGLE_LOG_LIST_URL = "https://www.gstatic.com/ct/log_list/v3/log_list.json"
"""Google's log list v3 (its signature is at the same URL with ``.sig``)."""


@dataclass(frozen=True, slots=True)
class WatchedLogs:
    """The logs to read and those left out.

    Attributes:
        tail: Logs to read, with where to stop (a read-only log's final tree size).
        skipped: Logs of the list left out, and why.
        source: Where the list came from (``""`` when none was read).
        list_version: The list's version (``""`` when none was read).
    """

    tail: tuple[TailPlan, ...]
    skipped: tuple[SkippedLog, ...]
    source: str
    list_version: str


def shipped_file(name: str) -> bytes:
    """A file of the log list shipped with certvigil (``log_list.json``, ``.sig``, key)."""
    return resources.files("certvigil.ct").joinpath("data", name).read_bytes()


def data_directory() -> Path:
    """Where ``ct update-log-list`` keeps the fetched list (``$XDG_DATA_HOME/certvigil/ct``)."""
    base = os.environ.get("XDG_DATA_HOME", "").strip()
    root = Path(base) if base else Path.home() / ".local" / "share"
    return root / "certvigil" / "ct"


def fetch_bytes(url: str, *, what: str) -> bytes:
    """Download ``url`` with a deadline and a size cap.

    Raises:
        LogListError: The download failed, timed out or was too large.
    """
    try:
        with (
            httpx.Client(timeout=FETCH_DEADLINE_S, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise LogListError(url, f"{what}: HTTP status {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_LOG_LIST_BYTES:
                    raise LogListError(url, f"{what}: more than {MAX_LOG_LIST_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise LogListError(url, f"{what}: {type(exc).__name__}") from None


def read_source(text: str, base_dir: Path, *, what: str) -> tuple[bytes, str]:
    """Bytes of a file (relative to ``base_dir``) or an http(s) URL, and its name."""
    if text.startswith(("https://", "http://")):
        return fetch_bytes(text, what=what), text
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        size = path.stat().st_size
        if size > MAX_LOG_LIST_BYTES:
            raise LogListError(str(path), f"{what}: more than {MAX_LOG_LIST_BYTES} bytes")
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise UsageError(f"{path}: {what}: cannot be read: {exc.strerror}") from None


def load_list_bytes(settings: CtSettings, base_dir: Path) -> tuple[bytes, str]:
    """The log list's bytes and their source, signature checked where configured.

    Raises:
        LogListError, SignatureError: The list cannot be fetched or does not verify.
        UsageError: A configured file cannot be read.
    """
    if settings.log_list is not None:
        data, source = read_source(settings.log_list, base_dir, what="log list")
        if settings.log_list_signature is not None and settings.log_list_key is not None:
            signature, _ = read_source(settings.log_list_signature, base_dir, what="signature")
            key, _ = read_source(settings.log_list_key, base_dir, what="log list key")
            verify_log_list_signature(data, signature, key, source=source)
        return data, source
    kept = data_directory()
    fetched = kept / "log_list.json"
    if fetched.is_file():
        try:
            data = fetched.read_bytes()
            signature = (kept / "log_list.sig").read_bytes()
            key_file = kept / "log_list_pubkey.pem"
            key = (
                key_file.read_bytes() if key_file.is_file() else shipped_file("log_list_pubkey.pem")
            )
        except OSError as exc:
            raise UsageError(
                f"{kept}: the updated log list cannot be read: {exc.strerror}"
            ) from None
        verify_log_list_signature(data, signature, key, source=str(fetched))
        return data, str(fetched)
    data = shipped_file("log_list.json")
    verify_log_list_signature(
        data, shipped_file("log_list.sig"), shipped_file("log_list_pubkey.pem"), source="shipped"
    )
    return data, "the copy shipped with certvigil"


def configured_log(settings: CtLogSettings) -> CtLog:
    """A log configured directly, as a ``CtLog``."""
    key = base64.b64decode(settings.key)
    if settings.monitoring_url is not None:
        url = settings.monitoring_url
        protocol = LogProtocol.STATIC
        submission = settings.submission_url or url
    else:
        url = settings.url or ""
        protocol = LogProtocol.RFC6962
        submission = ""
    return CtLog(
        description=settings.description or url,
        operator="(configured)",
        log_id=log_id(key),
        key=key,
        protocol=protocol,
        url=url,
        submission_url=submission,
        mmd=86400 if protocol is LogProtocol.RFC6962 else 60,
        state=LogState.USABLE,
        qps=settings.qps,
    )


def watched_logs(settings: CtSettings, base_dir: Path, *, now: datetime) -> WatchedLogs:
    """The logs ``ct watch`` reads now: the list's selection plus the configured ones.

    A configured log with the LogID of a listed one replaces it.

    Raises:
        CtError: The list cannot be read, parsed or verified.
        UsageError: A configured file cannot be read.
    """
    configured = [configured_log(entry) for entry in settings.logs]
    tail: list[TailPlan] = []
    skipped: tuple[SkippedLog, ...] = ()
    source = version = ""
    if settings.use_log_list:
        data, source = load_list_bytes(settings, base_dir)
        parsed = parse_log_list(data, source=source)
        version = parsed.version
        selection = select_logs(parsed, now=now, include_test=settings.include_test_logs)
        ids = {log.log_id for log in configured}
        tail = [plan for plan in selection.tail if plan.log.log_id not in ids]
        skipped = selection.skipped
    tail += [TailPlan(log, None) for log in configured]
    return WatchedLogs(tuple(tail), skipped, source, version)
