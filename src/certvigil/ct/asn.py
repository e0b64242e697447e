"""Which network (autonomous system) an address is in: Team Cymru's DNS answers, iptoasn tables.

Two sources, both data from outside and read as such:

* Team Cymru's IP-to-ASN service over DNS: a TXT query for the address's reversed
  labels under ``origin.asn.cymru.com`` (IPv4; nibbles under ``origin6.asn.cymru.com``
  for IPv6) answers ``"3561 | 216.88.0.0/14 | US | arin | 1998-09-25"`` (origin AS or
  ASes, BGP prefix, country, registry, allocation date); ``AS3561.asn.cymru.com`` gives
  the AS's name as the fifth field of ``"ASN | CC | registry | date | name"``.
* An offline table in iptoasn.com's TSV format (``ip2asn-combined.tsv``, ``-v4``,
  ``-v6``): ``range_start  range_end  AS_number  country_code  AS_description`` per line,
  tab-separated, ranges sorted; AS 0 marks ranges that are not routed.

This module opens no socket (``ct.fetch.asn`` asks the DNS).
"""

from __future__ import annotations

import bisect
import ipaddress
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from certvigil.ct.errors import CtError

MAX_TABLE_BYTES = 512 * 1024 * 1024
"""The largest iptoasn file read (the combined v4+v6 table is about 30 MB)."""
MAX_TABLE_LINES = 5_000_000
_MAX_FIELD = 256


class AsnDataError(CtError):
    """An iptoasn table or a Team Cymru answer that is not the expected shape."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class AsnInfo:
    """The autonomous system an address is announced by.

    Attributes:
        asn: The origin AS number (the first, when several announce the prefix).
        prefix: The announced prefix (``None``: the table gives a range, not a prefix).
        country: The registry's country code (``None``: not given).
        name: The AS's name or description (``None``: not known).
        source: ``"cymru"`` (Team Cymru over DNS) or ``"file"`` (the iptoasn table).
    """

    asn: int
    prefix: str | None
    country: str | None
    name: str | None
    source: str


def _clean(text: str) -> str:
    text = text.strip()[:_MAX_FIELD]
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def cymru_origin_query(address: str) -> str:
    """The TXT query name for an address's origin AS (reversed octets or nibbles).

    Raises:
        ValueError: ``address`` is not an IP address.
    """
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return ".".join(reversed(str(ip).split("."))) + ".origin.asn.cymru.com"
    nibbles = ip.exploded.replace(":", "")
    return ".".join(reversed(nibbles)) + ".origin6.asn.cymru.com"


def cymru_name_query(asn: int) -> str:
    """The TXT query name for an AS's name."""
    return f"AS{asn}.asn.cymru.com"


def parse_cymru_origin(text: str) -> AsnInfo:
    """Parse an ``origin.asn.cymru.com`` TXT string.

    Raises:
        AsnDataError: Not ``ASN[ ASN…] | prefix | CC | registry | date``.
    """
    fields = [_clean(f) for f in text.split("|")]
    if len(fields) < 3 or not fields[0]:
        raise AsnDataError("Team Cymru answer", f'"{_clean(text)[:80]}": not "ASN | prefix | CC"')
    first = fields[0].split()[0]
    if not first.isdigit() or len(first) > 10 or int(first) >= 2**32:
        raise AsnDataError("Team Cymru answer", f'"{first[:20]}": not an AS number')
    try:
        prefix = str(ipaddress.ip_network(fields[1], strict=False))
    except ValueError:
        prefix = None
    return AsnInfo(
        asn=int(first), prefix=prefix, country=fields[2] or None, name=None, source="cymru"
    )


def parse_cymru_name(text: str) -> str | None:
    """The AS name in an ``AS<n>.asn.cymru.com`` TXT string (``None`` when absent)."""
    fields = text.split("|")
    if len(fields) < 5:
        return None
    return _clean("|".join(fields[4:])) or None


class AsnTable:
    """An iptoasn.com table, searched by binary search (IPv4 and IPv6 apart).

    Memory: the range bounds in arrays (IPv4) or lists of ints (IPv6), each AS's
    country and description once.
    """

    __slots__ = ("_names", "_v4_asn", "_v4_end", "_v4_start", "_v6_asn", "_v6_end", "_v6_start")

    def __init__(self) -> None:
        self._v4_start = array("L")
        self._v4_end = array("L")
        self._v4_asn = array("L")
        self._v6_start: list[int] = []
        self._v6_end: list[int] = []
        self._v6_asn = array("L")
        self._names: dict[int, tuple[str | None, str | None]] = {}

    def __len__(self) -> int:
        return len(self._v4_start) + len(self._v6_start)

    @classmethod
    def load(cls, path: Path) -> AsnTable:
        """Read an iptoasn TSV file (``ip2asn-combined.tsv`` or the v4/v6 ones).

        Raises:
            AsnDataError: The file cannot be read, is too large, or a line is not the
                format (its line number and what is wrong).
        """
        try:
            size = path.stat().st_size
            if size > MAX_TABLE_BYTES:
                raise AsnDataError(str(path), f"{size} bytes, more than {MAX_TABLE_BYTES}")
            with path.open(encoding="utf-8", errors="replace") as lines:
                return cls.parse(lines, str(path))
        except OSError as exc:
            raise AsnDataError(str(path), exc.strerror or type(exc).__name__) from None

    @classmethod
    def parse(cls, lines: Iterable[str], where: str = "asn table") -> AsnTable:
        """Build a table from iptoasn TSV lines.

        Raises:
            AsnDataError: A line is not ``start, end, AS, country, description`` with
                ``start <= end`` of one IP version, or ranges are not in order.
        """
        table = cls()
        last_end = {4: -1, 6: -1}
        for number, line in enumerate(lines, 1):
            if number > MAX_TABLE_LINES:
                raise AsnDataError(where, f"more than {MAX_TABLE_LINES} lines")
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) < 3:
                raise AsnDataError(f"{where}:{number}", "expected 5 tab-separated fields")
            try:
                start = ipaddress.ip_address(fields[0].strip())
                end = ipaddress.ip_address(fields[1].strip())
            except ValueError:
                raise AsnDataError(f"{where}:{number}", "a range bound is not an address") from None
            asn_text = fields[2].strip()
            if not asn_text.isdigit() or len(asn_text) > 10 or int(asn_text) >= 2**32:
                raise AsnDataError(f"{where}:{number}", f'"{_clean(asn_text)[:20]}": not an AS')
            if start.version != end.version or int(start) > int(end):
                raise AsnDataError(f"{where}:{number}", "the range's bounds do not make a range")
            if int(start) <= last_end[start.version]:
                raise AsnDataError(f"{where}:{number}", "ranges are not sorted or overlap")
            last_end[start.version] = int(end)
            asn = int(asn_text)
            if asn == 0:  # "Not routed": no AS to name
                continue
            if asn not in table._names:
                country = _clean(fields[3]) if len(fields) > 3 else ""
                name = _clean("\t".join(fields[4:])) if len(fields) > 4 else ""
                table._names[asn] = (
                    country if country and country != "None" else None,
                    name or None,
                )
            if start.version == 4:
                table._v4_start.append(int(start))
                table._v4_end.append(int(end))
                table._v4_asn.append(asn)
            else:
                table._v6_start.append(int(start))
                table._v6_end.append(int(end))
                table._v6_asn.append(asn)
        return table

    def lookup(self, address: str) -> AsnInfo | None:
        """The AS of ``address`` (``None``: not in any routed range, or not an address)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        value = int(ip)
        if ip.version == 4:
            starts, ends, asns = self._v4_start, self._v4_end, self._v4_asn
            at = bisect.bisect_right(starts, value) - 1
            if at < 0 or ends[at] < value:
                return None
            asn = asns[at]
        else:
            at = bisect.bisect_right(self._v6_start, value) - 1
            if at < 0 or self._v6_end[at] < value:
                return None
            asn = self._v6_asn[at]
        country, name = self._names.get(asn, (None, None))
        return AsnInfo(asn=asn, prefix=None, country=country, name=name, source="file")
