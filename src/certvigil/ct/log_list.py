"""Google's CT log list (schema v3): parse it, check its signature, choose the logs to tail.

The list (``log_list.json`` or ``all_logs_list.json``) names operators, each with RFC 6962
``logs`` (a ``url``) and static-ct-api ``tiled_logs`` (a ``monitoring_url`` to read and
usually a ``submission_url``). Every field a log needs is checked here and a mistake is
reported with its place in the file (``operators[3].tiled_logs[1].key``).

Which logs are tailed (``select_logs``):

* ``rejected`` logs never are; nor are test logs (``log_type: test``) unless asked.
* Placeholder logs are skipped: a log whose URL's host is a name reserved for examples or
  testing (RFC 2606 / RFC 6761: ``example.com``/``.net``/``.org``, ``.example``,
  ``.test``, ``.invalid``, ``.localhost``). Geomys and IPng list a retired "Bogus
  placeholder" log at ``https://ct.example.com/bogus/`` only so that libraries which break
  on an operator without RFC 6962 logs keep working; no such host can be a real log.
* A log without any state (historic logs from before states existed) is skipped, except a
  tiled log marked ``log_type: monitoring_only``, which is a real log published for
  monitors ahead of its qualification, and a test log when test logs are asked for (test
  logs carry no state).
* The remaining logs (pending, qualified, usable, readonly, retired) are tailed when their
  ``temporal_interval`` (a window on the certificates' notAfter) overlaps
  ``[now, now + horizon]``, 398 days by default, the longest lifetime a publicly-trusted
  TLS certificate may have: a shard whose window has passed can receive nothing that is
  still valid. A log without an interval accepts any expiry and always overlaps.
* A ``readonly`` log is tailed up to its ``final_tree_head`` and no further.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from certvigil.ct.errors import LogListError, SignatureError
from certvigil.ct.signature import log_id as compute_log_id

MAX_LOG_LIST_BYTES = 16 * 1024 * 1024
MAX_LOGS = 5000
MAX_TEXT = 1000
DEFAULT_HORIZON = timedelta(days=398)
_RESERVED_SUFFIXES = (".example", ".test", ".invalid", ".localhost")
_RESERVED_NAMES = ("example.com", "example.net", "example.org", "localhost")


class LogState(StrEnum):
    """The state a list gives a log (``none`` when it gives none)."""

    PENDING = "pending"
    QUALIFIED = "qualified"
    USABLE = "usable"
    READONLY = "readonly"
    RETIRED = "retired"
    REJECTED = "rejected"
    NONE = "none"


class LogProtocol(StrEnum):
    """How a log is read."""

    RFC6962 = "rfc6962"
    STATIC = "static-ct-api"


@dataclass(frozen=True, slots=True)
class FinalTreeHead:
    """The tree head a read-only log was frozen at."""

    tree_size: int
    root_hash: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CtLog:
    """One log of the list.

    Attributes:
        description: The list's description (control characters replaced).
        operator: The operator's name.
        log_id: SHA-256 of ``key`` (checked against the list's ``log_id``).
        key: The log's public key, DER SubjectPublicKeyInfo.
        protocol: RFC 6962 or static-ct-api.
        url: Base URL to read from, ending in ``/``: the RFC 6962 ``url`` or the static
            log's ``monitoring_url``.
        submission_url: The static log's submission prefix (``""`` when not given or
            for RFC 6962 logs).
        mmd: Maximum merge delay in seconds.
        state: The log's state.
        state_since: When it entered that state, if given.
        final_tree_head: For a read-only log, the size and root it was frozen at.
        interval_start: ``temporal_interval.start_inclusive`` (notAfter window), if any.
        interval_end: ``temporal_interval.end_exclusive``, if any.
        log_type: ``test``, ``prod``, ``monitoring_only`` or ``""``.
        qps: ``certspotter_qps``, the operator's request-rate limit, if given.
        download_size: ``certspotter_download_size``, entries per request, if given.
        download_jobs: ``certspotter_download_jobs``, parallel requests, if given.
    """

    description: str
    operator: str
    log_id: bytes
    key: bytes
    protocol: LogProtocol
    url: str
    submission_url: str = ""
    mmd: int
    state: LogState
    state_since: datetime | None = None
    final_tree_head: FinalTreeHead | None = None
    interval_start: datetime | None = None
    interval_end: datetime | None = None
    log_type: str = ""
    qps: float | None = None
    download_size: int | None = None
    download_jobs: int | None = None

    @property
    def log_id_b64(self) -> str:
        """The LogID in the list's base64 form."""
        return base64.b64encode(self.log_id).decode()


@dataclass(frozen=True, slots=True)
class LogList:
    """A parsed log list."""

    version: str
    timestamp: datetime | None
    is_all_logs: bool
    logs: tuple[CtLog, ...]


class SkipReason(StrEnum):
    """Why ``select_logs`` does not tail a log."""

    REJECTED = "rejected"
    PLACEHOLDER = "placeholder"
    TEST_LOG = "test_log"
    NO_STATE = "no_state"
    OUTSIDE_WINDOW = "outside_window"


@dataclass(frozen=True, slots=True)
class TailPlan:
    """A log to tail, and where to stop (the final tree size of a read-only log)."""

    log: CtLog
    stop_at: int | None


@dataclass(frozen=True, slots=True)
class SkippedLog:
    """A log not tailed, and why."""

    log: CtLog
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class LogSelection:
    """What ``select_logs`` decided, log by log."""

    tail: tuple[TailPlan, ...]
    skipped: tuple[SkippedLog, ...]


def verify_log_list_signature(
    data: bytes, signature: bytes, public_key: bytes, *, source: str
) -> None:
    """Check the list's detached signature (``log_list.sig``) over its exact bytes.

    Google signs with RSA PKCS#1 v1.5 and SHA-256; an ECDSA key (SHA-256) is accepted too.

    Args:
        data: The list file, byte for byte as downloaded.
        signature: The ``.sig`` file's bytes.
        public_key: The signer's public key, PEM or DER.
        source: Where the list came from, for the error message.

    Raises:
        SignatureError: The key cannot be read or the signature does not verify.
    """
    try:
        if public_key.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(public_key)
        else:
            key = serialization.load_der_public_key(public_key)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"{source}: the log-list key cannot be read: {exc}") from None
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            raise SignatureError(f"{source}: the log-list key is neither RSA nor ECDSA")
    except InvalidSignature:
        raise SignatureError(
            f"{source}: the log list's signature does not verify with the key given"
        ) from None


def parse_log_list(data: bytes, *, source: str) -> LogList:
    """Parse a v3 log list.

    Raises:
        LogListError: The file is too big, not JSON, or a field is missing or wrong; the
            message names the field.
    """
    if len(data) > MAX_LOG_LIST_BYTES:
        raise LogListError(source, f"{len(data)} bytes, more than the {MAX_LOG_LIST_BYTES} allowed")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise LogListError(source, f"not JSON: {exc}") from None
    return _Parser(source).document(document)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.count = 0

    def fail(self, where: str, reason: str) -> LogListError:
        return LogListError(self.source, reason, location=where)

    def document(self, doc: Any) -> LogList:
        if not isinstance(doc, dict):
            raise self.fail("", "the top level is not a JSON object")
        version = self.text(doc, "version", "", required=False)
        timestamp = (
            self.when(doc, "log_list_timestamp", "") if "log_list_timestamp" in doc else None
        )
        operators = doc.get("operators")
        if not isinstance(operators, list):
            raise self.fail("operators", "missing or not a list")
        logs: list[CtLog] = []
        for i, operator in enumerate(operators):
            logs.extend(self.operator(operator, f"operators[{i}]"))
        return LogList(version, timestamp, doc.get("is_all_logs") is True, tuple(logs))

    def operator(self, op: Any, where: str) -> list[CtLog]:
        if not isinstance(op, dict):
            raise self.fail(where, "not a JSON object")
        name = self.text(op, "name", where)
        found: list[CtLog] = []
        for field in ("logs", "tiled_logs"):
            entries = op.get(field, [])
            if not isinstance(entries, list):
                raise self.fail(f"{where}.{field}", "not a list")
            for j, entry in enumerate(entries):
                self.count += 1
                if self.count > MAX_LOGS:
                    raise self.fail(f"{where}.{field}[{j}]", f"more than {MAX_LOGS} logs")
                found.append(self.log(entry, name, field == "tiled_logs", f"{where}.{field}[{j}]"))
        return found

    def log(self, entry: Any, operator: str, tiled: bool, where: str) -> CtLog:
        if not isinstance(entry, dict):
            raise self.fail(where, "not a JSON object")
        key = self.b64(entry, "key", where)
        listed_id = self.b64(entry, "log_id", where)
        if compute_log_id(key) != listed_id:
            raise self.fail(f"{where}.log_id", "is not the SHA-256 of the log's key")
        if tiled:
            url = self.url(entry, "monitoring_url", where)
            submission = (
                self.url(entry, "submission_url", where) if "submission_url" in entry else ""
            )
            protocol = LogProtocol.STATIC
        else:
            url = self.url(entry, "url", where)
            submission = ""
            protocol = LogProtocol.RFC6962
        mmd = entry.get("mmd")
        if not isinstance(mmd, int) or isinstance(mmd, bool) or not 0 <= mmd <= 10**9:
            raise self.fail(f"{where}.mmd", "missing or not a whole number of seconds")
        state, since, final = self.state(entry, where)
        start = end = None
        if "temporal_interval" in entry:
            interval = entry["temporal_interval"]
            if not isinstance(interval, dict):
                raise self.fail(f"{where}.temporal_interval", "not a JSON object")
            start = self.when(interval, "start_inclusive", f"{where}.temporal_interval")
            end = self.when(interval, "end_exclusive", f"{where}.temporal_interval")
            if end <= start:
                raise self.fail(f"{where}.temporal_interval", "ends before it starts")
        log_type = self.text(entry, "log_type", where, required=False)
        return CtLog(
            description=_printable(self.text(entry, "description", where, required=False)),
            operator=_printable(operator),
            log_id=listed_id,
            key=key,
            protocol=protocol,
            url=url,
            submission_url=submission,
            mmd=mmd,
            state=state,
            state_since=since,
            final_tree_head=final,
            interval_start=start,
            interval_end=end,
            log_type=log_type,
            qps=self.number(entry, "certspotter_qps", where, float),
            download_size=self.count_field(entry, "certspotter_download_size", where),
            download_jobs=self.count_field(entry, "certspotter_download_jobs", where),
        )

    def state(
        self, entry: Mapping[str, Any], where: str
    ) -> tuple[LogState, datetime | None, FinalTreeHead | None]:
        if "state" not in entry:
            return LogState.NONE, None, None
        state = entry["state"]
        here = f"{where}.state"
        if not isinstance(state, dict) or len(state) != 1:
            raise self.fail(here, "must be an object with exactly one state")
        name, detail = next(iter(state.items()))
        try:
            kind = LogState(name)
        except ValueError:
            raise self.fail(here, f'unknown state "{_printable(str(name))[:40]}"') from None
        if kind is LogState.NONE or not isinstance(detail, dict):
            raise self.fail(f"{here}.{name}", "not a known state object")
        since = self.when(detail, "timestamp", f"{here}.{name}")
        final = None
        if kind is LogState.READONLY:
            head = detail.get("final_tree_head")
            head_where = f"{here}.readonly.final_tree_head"
            if not isinstance(head, dict):
                raise self.fail(head_where, "missing or not an object")
            size = head.get("tree_size")
            if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 2**63:
                raise self.fail(f"{head_where}.tree_size", "missing or not a tree size")
            root = self.b64(head, "sha256_root_hash", head_where)
            if len(root) != 32:
                raise self.fail(f"{head_where}.sha256_root_hash", "not 32 bytes")
            final = FinalTreeHead(size, root)
        return kind, since, final

    def text(self, obj: Mapping[str, Any], field: str, where: str, *, required: bool = True) -> str:
        value = obj.get(field)
        place = f"{where}.{field}" if where else field
        if value is None:
            if required:
                raise self.fail(place, "missing")
            return ""
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise self.fail(place, f"not a string of at most {MAX_TEXT} characters")
        return value

    def b64(self, obj: Mapping[str, Any], field: str, where: str) -> bytes:
        value = self.text(obj, field, where)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise self.fail(f"{where}.{field}", "not valid base64") from None

    def url(self, obj: Mapping[str, Any], field: str, where: str) -> str:
        value = self.text(obj, field, where)
        place = f"{where}.{field}"
        if not value.isprintable() or " " in value:
            raise self.fail(place, "contains spaces or control characters")
        try:
            parts = urlsplit(value)
        except ValueError:
            raise self.fail(place, "not a URL") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise self.fail(place, "not an http(s) URL with a host")
        if parts.query or parts.fragment:
            raise self.fail(place, "has a query or fragment")
        return value if value.endswith("/") else value + "/"

    def when(self, obj: Mapping[str, Any], field: str, where: str) -> datetime:
        value = self.text(obj, field, where)
        place = f"{where}.{field}" if where else field
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(place, "not an RFC 3339 time") from None
        if parsed.tzinfo is None:
            raise self.fail(place, "has no time zone")
        return parsed

    def number(
        self, obj: Mapping[str, Any], field: str, where: str, kind: type[float]
    ) -> float | None:
        value = obj.get(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e6:
            raise self.fail(f"{where}.{field}", "not a positive number")
        return kind(value)

    def count_field(self, obj: Mapping[str, Any], field: str, where: str) -> int | None:
        value = obj.get(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1_000_000:
            raise self.fail(f"{where}.{field}", "not a positive whole number")
        return value


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def is_placeholder(log: CtLog) -> bool:
    """Whether the log's URL points at a host reserved for examples or testing."""
    for url in (log.url, log.submission_url):
        host = (urlsplit(url).hostname or "").rstrip(".").lower() if url else ""
        if not host:
            continue
        if host in _RESERVED_NAMES or host.endswith(_RESERVED_SUFFIXES):
            return True
        if any(host.endswith("." + name) for name in _RESERVED_NAMES):
            return True
    return False


def select_logs(
    log_list: LogList | Sequence[CtLog],
    *,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    include_test: bool = False,
) -> LogSelection:
    """Decide which logs to tail at ``now`` (the rules are in the module docstring).

    Args:
        log_list: A parsed list, or logs.
        now: The current time (timezone-aware).
        horizon: How far ahead certificates may expire (398 days by default).
        include_test: Tail test logs too.

    Raises:
        ValueError: ``now`` has no time zone.
    """
    if now.tzinfo is None:
        raise ValueError("select_logs needs a timezone-aware now")
    logs = log_list.logs if isinstance(log_list, LogList) else tuple(log_list)
    window_end = now + horizon
    tail: list[TailPlan] = []
    skipped: list[SkippedLog] = []
    for log in logs:
        reason = _skip_reason(log, now, window_end, include_test)
        if reason is not None:
            skipped.append(SkippedLog(log, reason))
            continue
        stop = log.final_tree_head.tree_size if log.final_tree_head is not None else None
        tail.append(TailPlan(log, stop))
    return LogSelection(tuple(tail), tuple(skipped))


def _skip_reason(
    log: CtLog, now: datetime, window_end: datetime, include_test: bool
) -> SkipReason | None:
    if log.state is LogState.REJECTED:
        return SkipReason.REJECTED
    if is_placeholder(log):
        return SkipReason.PLACEHOLDER
    if log.log_type == "test" and not include_test:
        return SkipReason.TEST_LOG
    if log.state is LogState.NONE and log.log_type not in ("monitoring_only", "test"):
        return SkipReason.NO_STATE
    if log.interval_end is not None and log.interval_end <= now:
        return SkipReason.OUTSIDE_WINDOW
    if log.interval_start is not None and log.interval_start > window_end:
        return SkipReason.OUTSIDE_WINDOW
    return None
