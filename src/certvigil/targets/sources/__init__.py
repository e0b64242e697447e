"""Target sources from DNS data: BIND zone files and OctoDNS CSV exports."""

from __future__ import annotations

from certvigil.targets.sources.names import DnsName, NameSelection, select_names
from certvigil.targets.sources.octodns_csv import read_octodns_csv
from certvigil.targets.sources.zonefile import read_zone_file

__all__ = ["DnsName", "NameSelection", "read_octodns_csv", "read_zone_file", "select_names"]
