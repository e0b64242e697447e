"""Names from BIND zone files and OctoDNS CSV exports, selected by patterns and wildcard policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from certvigil.errors import ConfigError
from certvigil.targets.sources import (
    DnsName,
    NameSelection,
    read_octodns_csv,
    read_zone_file,
    select_names,
)

DATA = Path(__file__).parent.parent / "data" / "dns"
OCF_IO = DATA / "bind-ocf" / "zones" / "db.ocf.io"
CAL_FYI = DATA / "bind-ocf" / "zones" / "db.cal.fyi"
REVERSE = DATA / "bind-ocf" / "zones" / "db.226.229.169.in-addr.arpa"
HACKCLUB_CSV = DATA / "octodns" / "hackclub.com.DERIVED.csv"
HACKCLUB_YAML = DATA / "octodns" / "hackclub.com.yaml"
UNIT_CSV = DATA / "octodns" / "unit.tests.DERIVED.csv"
UNIT_YAML = DATA / "octodns" / "unit.tests.yaml"


def yaml_address_names(path: Path, zone: str) -> set[str]:
    """The owners of A/AAAA/CNAME/ALIAS records in an OctoDNS YAML zone."""
    names: set[str] = set()
    for record, entries in yaml.safe_load(path.read_text(encoding="utf-8")).items():
        items = entries if isinstance(entries, list) else [entries]
        if any(item["type"] in ("A", "AAAA", "CNAME", "ALIAS") for item in items):
            names.add(f"{record}.{zone}".lower() if record else zone)
    return names


def test_zone_file_follows_include_relative_to_itself() -> None:
    """db.ocf.io's ``$INCLUDE ../db.ocf`` is read from the zone file's parent directory."""
    names = {n.name for n in read_zone_file(OCF_IO)}
    # Given: only db.ocf (the included file) holds host records such as "www".
    assert "www.ocf.io" in names
    assert "ocf.io" in names
    assert "*.apphost.ocf.io" in names
    # The NS-only delegation and the TXT-only names are not hosts.
    assert "letsencrypt.ocf.io" not in names
    assert "google._domainkey.ocf.io" not in names


def test_zone_file_keeps_only_address_records() -> None:
    """Every name read from a zone owns an A, AAAA or CNAME record."""
    names = read_zone_file(OCF_IO)
    assert len(names) > 100
    assert all(set(n.rdtypes) <= {"A", "AAAA", "CNAME"} and n.rdtypes for n in names)


def test_reverse_zone_has_no_scannable_names() -> None:
    """A zone of PTR records yields no names."""
    assert read_zone_file(REVERSE) == ()


def test_zone_file_without_origin_needs_one(tmp_path: Path) -> None:
    """A zone file without $ORIGIN is refused unless the source names the origin."""
    zone = tmp_path / "db.example"
    zone.write_text("$TTL 1h\nwww IN A 127.0.0.1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no \$ORIGIN"):
        read_zone_file(zone)
    assert [n.name for n in read_zone_file(zone, origin="example.org")] == ["www.example.org"]


def test_zone_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """A malformed record is reported with the zone file's name and a line."""
    zone = tmp_path / "db.bad"
    zone.write_text("$ORIGIN example.org.\n$TTL 1h\nwww IN A 300.1.1.1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_zone_file(zone)
    assert info.value.path == str(zone)
    assert info.value.line is not None


def test_missing_include_names_the_including_line(tmp_path: Path) -> None:
    """An $INCLUDE of a file that does not exist names the including file and line."""
    zone = tmp_path / "db.example"
    zone.write_text("$ORIGIN example.org.\n$TTL 1h\n$INCLUDE nothere.db\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"db\.example:3.*nothere\.db"):
        read_zone_file(zone)


def test_nested_include_is_relative_to_each_file(tmp_path: Path) -> None:
    """An included file's own $INCLUDE is read relative to the included file."""
    (tmp_path / "zones" / "common").mkdir(parents=True)
    (tmp_path / "zones" / "db.example").write_text(
        "$ORIGIN example.org.\n$TTL 1h\n$INCLUDE common/hosts.db\n", encoding="utf-8"
    )
    (tmp_path / "zones" / "common" / "hosts.db").write_text(
        "www IN A 127.0.0.1\n$INCLUDE more.db\n", encoding="utf-8"
    )
    (tmp_path / "zones" / "common" / "more.db").write_text("api IN AAAA ::1\n", encoding="utf-8")
    names = [n.name for n in read_zone_file(tmp_path / "zones" / "db.example")]
    assert names == ["api.example.org", "www.example.org"]


def test_csv_names_match_the_yaml_zone_they_came_from() -> None:
    """The CSV export yields exactly the address-record owners of its YAML zone."""
    from_csv = {n.name for n in read_octodns_csv(HACKCLUB_CSV)}
    assert from_csv == yaml_address_names(HACKCLUB_YAML, "hackclub.com")
    from_csv = {n.name for n in read_octodns_csv(UNIT_CSV)}
    assert from_csv == yaml_address_names(UNIT_YAML, "unit.tests")


def test_csv_rows_with_unquoted_commas_do_not_shift_the_name() -> None:
    """MX values with unquoted commas (as exporters write them) leave names intact."""
    names = {n.name: n for n in read_octodns_csv(UNIT_CSV)}
    assert names["www.unit.tests"].rdtypes == ("A",)
    assert names["unit.tests"].line == 2
    assert "mx.unit.tests" not in names


def test_csv_zone_defaults_to_the_file_name(tmp_path: Path) -> None:
    """Rows without a zone take it from the file name; @ and an empty record are the apex."""
    export = tmp_path / "example.org.csv"
    export.write_text(
        'zone,type,record,ttl,value,geo,healthcheck\n,A,@,60,127.0.0.1,,\n,CNAME,"www",60,x,,\n',
        encoding="utf-8",
    )
    assert [n.name for n in read_octodns_csv(export)] == ["example.org", "www.example.org"]


def test_csv_short_row_names_its_line(tmp_path: Path) -> None:
    """A row with fewer than three columns is refused with its line."""
    export = tmp_path / "x.csv"
    export.write_text("zone,type,record\nexample.org.,A\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_octodns_csv(export)
    assert info.value.line == 2


def names(*texts: str) -> list[DnsName]:
    return [DnsName(name=t, rdtypes=("A",), source="test") for t in texts]


def test_include_and_exclude_patterns_select_names() -> None:
    """A name is kept when it matches an include pattern and no exclude pattern."""
    given = names("www.example.org", "dev.example.org", "mail.example.org", "www.other.net")
    selection = NameSelection(include=("*.example.org",), exclude=("dev.*", "mail.*"))
    assert select_names(given, selection) == ("www.example.org",)


def test_wildcard_owner_becomes_a_probe_name_or_is_skipped() -> None:
    """``*.apps.example.org`` is scanned as ``<label>.apps.example.org``, or dropped."""
    given = names("*.apps.example.org", "apps.example.org")
    probe = NameSelection(wildcard_label="star")
    assert select_names(given, probe) == ("star.apps.example.org", "apps.example.org")
    skip = NameSelection(probe_wildcards=False)
    assert select_names(given, skip) == ("apps.example.org",)


def test_exclude_pattern_matches_the_wildcard_as_written() -> None:
    """An exclude pattern for a wildcard's parent drops the wildcard too."""
    given = names("*.dev.example.org", "www.example.org")
    selection = NameSelection(exclude=("*.dev.example.org",))
    assert select_names(given, selection) == ("www.example.org",)


def test_underscore_names_are_never_hosts() -> None:
    """Names with an underscore label (ACME challenges, DKIM keys) are dropped."""
    given = names("_acme-challenge.example.org", "s1._domainkey.example.org", "example.org")
    assert select_names(given, NameSelection()) == ("example.org",)


def test_real_zone_wildcards_are_probed() -> None:
    """The wildcards of the OCF zone are scanned through probe names."""
    selected = select_names(read_zone_file(CAL_FYI), NameSelection())
    assert selected == ("cal.fyi", "wildcard-probe.cal.fyi")
