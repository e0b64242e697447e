"""Names from OctoDNS-style CSV exports (``zone,type,record,ttl,value,…``).

The export writes one file per zone, one row per record, with a header line::

    zone,type,record,ttl,value,geo,healthcheck
    example.com.,A,www,3600,192.0.2.10,,
    example.com.,CNAME,*.apps,10800,lb.example.com.,,

``record`` is relative to ``zone`` (empty or ``@`` for the apex). Only the first three
columns are read: exporters write TXT values with unquoted commas, so later columns
cannot be trusted to line up.
"""

from __future__ import annotations

import csv
from pathlib import Path

from certvigil.errors import ConfigError
from certvigil.targets.sources.names import DnsName

ADDRESS_TYPES = frozenset({"A", "AAAA", "CNAME", "ALIAS"})
"""Record types whose owners are names one can connect to (ALIAS: an apex CNAME)."""

_HEADER = ("zone", "type", "record")


def read_octodns_csv(path: Path, *, zone: str | None = None) -> tuple[DnsName, ...]:
    """The A, AAAA, CNAME and ALIAS owner names of an OctoDNS CSV export.

    Args:
        path: The CSV file.
        zone: The zone for rows whose ``zone`` column is empty; by default the file
            name without ``.csv`` (``example.com.csv`` → ``example.com``).

    Returns:
        Owner names in file order, each once, lower-case, without the final dot.

    Raises:
        ConfigError: The file cannot be read, or a row lacks the first three columns,
            naming the file and line.
    """
    default_zone = (zone or path.name.removesuffix(".csv")).rstrip(".").lower()
    found: dict[str, tuple[set[str], int]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as stream:
            for line, text in enumerate(stream, start=1):
                _read_row(text, line, path, default_zone, found)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read CSV export: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), f"not a CSV export: {exc}") from exc
    return tuple(
        DnsName(name=name, rdtypes=tuple(sorted(types)), source=str(path), line=first_line)
        for name, (types, first_line) in found.items()
    )


def _read_row(
    text: str, line: int, path: Path, default_zone: str, found: dict[str, tuple[set[str], int]]
) -> None:
    # One physical line at a time: a stray quote in a value column must not swallow the
    # rows after it.
    if not text.strip() or text.lstrip().startswith("#"):
        return
    try:
        row = next(csv.reader([text]))
    except csv.Error as exc:
        raise ConfigError(str(path), f"not a CSV row: {exc}", line=line) from exc
    cells = tuple(cell.strip() for cell in row[:3])
    if tuple(c.lower() for c in cells) == _HEADER:
        return
    if len(cells) < 3:
        raise ConfigError(str(path), "expected zone,type,record,… in each row", line=line)
    row_zone, rdtype, record = cells
    if rdtype.upper() not in ADDRESS_TYPES:
        return
    name = _absolute(record, row_zone.rstrip(".").lower() or default_zone)
    if not name:
        raise ConfigError(str(path), "row names no zone and no record", line=line)
    types, _first_line = found.setdefault(name, (set(), line))
    types.add(rdtype.upper())


def _absolute(record: str, zone: str) -> str:
    record = record.lower()
    if record.endswith("."):
        return record.rstrip(".")
    if record in ("", "@"):
        return zone
    return f"{record}.{zone}" if zone else record
