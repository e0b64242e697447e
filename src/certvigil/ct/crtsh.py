"""crt.sh's JSON answers (``?q=…&output=json``), read as hostile data.

crt.sh has no published schema. An answer is a JSON array of rows with ``id`` (crt.sh's
certificate id: a precertificate and its final certificate have two ids and one serial),
``issuer_ca_id`` (``-1`` when crt.sh could not find the issuer), ``issuer_name`` (a DN
string), ``common_name``, ``name_value`` (names separated by newlines, wildcards
included), ``entry_timestamp`` (ISO 8601 without a zone, any number of fractional
digits, or ``null``), ``not_before``, ``not_after`` (UTC, no zone), ``serial_number``
(lower-case hex) and, from newer servers, ``result_count``.

crt.sh returns at most 10,000 rows for one query and says nothing about it: an answer of
10,000 rows is reported as *capped*, so the
history shown is known to be incomplete. A row that breaks the shape is skipped and
listed with its position and defect; the others still count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from certvigil.ct.errors import ResponseError
from certvigil.ct.names import normalize_name

#: crt.sh returns at most this many rows for one query.
CRTSH_ROW_CAP = 10_000
#: Rows read from one answer at most; rows past it are counted as not read.
MAX_ROWS = 20_000
MAX_NAMES_PER_ROW = 1_000
MAX_TEXT = 4_096


@dataclass(frozen=True, slots=True)
class CrtshCertificate:
    """One row of a crt.sh answer: a certificate or precertificate crt.sh knows of.

    Attributes:
        crtsh_id: crt.sh's id of the certificate (``https://crt.sh/?id=<id>``).
        issuer_ca_id: crt.sh's id of the issuing CA, or ``None`` when crt.sh did not find
            the issuer (``-1``).
        issuer_name: The issuer's DN as crt.sh writes it (hostile text: escape it).
        common_name: The subject commonName, or ``""``.
        dns_names: The names of ``name_value`` (and the commonName when it is a host
            name), normalised (A-labels, lower case, wildcards kept), each once.
        unparsed_names: Names that are not host names, as given (cut at 300 characters).
        serial_hex: The serial number, lower-case hex.
        logged_utc: When crt.sh saw it in a log, or ``None`` when crt.sh does not say.
        not_before_utc: Start of validity.
        not_after_utc: End of validity.
    """

    crtsh_id: int
    issuer_ca_id: int | None
    issuer_name: str
    common_name: str
    dns_names: tuple[str, ...]
    unparsed_names: tuple[str, ...]
    serial_hex: str
    logged_utc: datetime | None
    not_before_utc: datetime
    not_after_utc: datetime


@dataclass(frozen=True, slots=True)
class CrtshAnswer:
    """A parsed crt.sh answer.

    Attributes:
        certificates: The rows that parsed, in the answer's order.
        malformed: ``"row <n>: <defect>"`` for each row skipped.
        row_count: Rows in the answer (parsed, skipped and not read).
        result_count: The ``result_count`` crt.sh gave, or ``None`` (older servers).
        is_capped: The answer hit crt.sh's row cap: the history is incomplete.
    """

    certificates: tuple[CrtshCertificate, ...]
    malformed: tuple[str, ...]
    row_count: int
    result_count: int | None
    is_capped: bool


def _text(row: dict[str, object], key: str, *, optional: bool = False) -> str:
    value = row.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    if len(value) > MAX_TEXT * 16:
        raise ValueError(f"{key} is longer than {MAX_TEXT * 16} characters")
    return value


def _int(row: dict[str, object], key: str) -> int:
    value = row.get(key)
    # bool is an int in Python; JSON true is no id.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} is not an integer")
    return value


def _time(row: dict[str, object], key: str, *, optional: bool = False) -> datetime | None:
    value = row.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError(f"{key} is not a date and time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{key} is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _shown(text: str) -> str:
    return "".join(c if c.isprintable() else "\ufffd" for c in text[:300])


def _row(row: object) -> CrtshCertificate:
    if not isinstance(row, dict):
        raise ValueError("not an object")
    crtsh_id = _int(row, "id")
    issuer_ca_id = _int(row, "issuer_ca_id")
    serial = _text(row, "serial_number").lower()
    if not serial or len(serial) > 64 or any(c not in "0123456789abcdef" for c in serial):
        raise ValueError("serial_number is not hex")
    common_name = _text(row, "common_name", optional=True)[:MAX_TEXT]
    raw_names = _text(row, "name_value").split("\n")
    if len(raw_names) > MAX_NAMES_PER_ROW:
        raise ValueError(f"name_value holds more than {MAX_NAMES_PER_ROW} names")
    names: dict[str, None] = {}
    unparsed: dict[str, None] = {}
    for raw in [*raw_names, common_name]:
        if not raw.strip():
            continue
        name = normalize_name(raw)
        if name is None:
            if raw is not common_name:
                unparsed[_shown(raw)] = None
        else:
            names[name] = None
    not_before = _time(row, "not_before")
    not_after = _time(row, "not_after")
    if not_before is None or not_after is None:  # not reached: both are required
        raise ValueError("validity is missing")
    return CrtshCertificate(
        crtsh_id=crtsh_id,
        issuer_ca_id=None if issuer_ca_id == -1 else issuer_ca_id,
        issuer_name=_text(row, "issuer_name")[:MAX_TEXT],
        common_name=common_name,
        dns_names=tuple(names),
        unparsed_names=tuple(unparsed),
        serial_hex=serial,
        logged_utc=_time(row, "entry_timestamp", optional=True),
        not_before_utc=not_before,
        not_after_utc=not_after,
    )


def parse_crtsh_answer(body: bytes, *, source: str = "crt.sh") -> CrtshAnswer:
    """Parse a crt.sh JSON answer.

    Args:
        body: The answer's bytes.
        source: Where it came from, for error messages (the URL).

    Returns:
        The rows that parsed, those skipped, and whether the answer is capped.

    Raises:
        ResponseError: The answer is not a JSON array (crt.sh answers an HTML page when
            it is overloaded).
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        start = body[:60].decode("utf-8", "replace")
        raise ResponseError(source, f"not JSON (it starts {_shown(start)!r})") from None
    if not isinstance(document, list):
        raise ResponseError(source, "not a JSON array of certificates")
    certificates: list[CrtshCertificate] = []
    malformed: list[str] = []
    result_count: int | None = None
    for position, row in enumerate(document[:MAX_ROWS], 1):
        try:
            certificates.append(_row(row))
        except ValueError as exc:
            malformed.append(f"row {position}: {exc}")
        if isinstance(row, dict):
            count = row.get("result_count")
            if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
                result_count = max(result_count or 0, count)
    rows = len(document)
    if rows > MAX_ROWS:
        malformed.append(f"rows {MAX_ROWS + 1} to {rows}: not read (more than {MAX_ROWS})")
    # What result_count counts is not documented (in recorded answers it differs from
    # row to row), so only the row cap itself tells that crt.sh cut the answer.
    is_capped = rows >= CRTSH_ROW_CAP
    return CrtshAnswer(tuple(certificates), tuple(malformed), rows, result_count, is_capped)


def merge_answers(*answers: CrtshAnswer) -> CrtshAnswer:
    """Several answers as one (rows deduplicated on crt.sh's id, newest logged first)."""
    seen: dict[int, CrtshCertificate] = {}
    for answer in answers:
        for certificate in answer.certificates:
            seen.setdefault(certificate.crtsh_id, certificate)
    oldest = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(
        seen.values(),
        key=lambda c: (c.logged_utc or c.not_before_utc or oldest, c.crtsh_id),
        reverse=True,
    )
    return CrtshAnswer(
        certificates=tuple(ordered),
        malformed=tuple(m for a in answers for m in a.malformed),
        row_count=sum(a.row_count for a in answers),
        result_count=None,
        is_capped=any(a.is_capped for a in answers),
    )
