"""Target specs parse, expand lazily, de-duplicate, and fail with errors naming where."""

from __future__ import annotations

import io
import ipaddress
import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certvigil.errors import TargetError, UsageError
from certvigil.targets.parse import (
    ExpansionOptions,
    TargetSpec,
    iter_argument_specs,
    iter_file_specs,
    iter_targets,
    normalise_hostname,
    open_target_file,
    parse_port_list,
    parse_spec,
    starttls_for_port,
)
from certvigil.targets.target import StartTLS, Target

DEFAULTS = ExpansionOptions()


def expand(*texts: str, options: ExpansionOptions = DEFAULTS) -> list[Target]:
    """Every target the texts yield, raising the first TargetError."""
    errors: list[TargetError] = []
    targets = list(
        iter_targets(iter_argument_specs(texts), options=options, on_error=errors.append)
    )
    if errors:
        raise errors[0]
    return targets


def endpoints(*texts: str, options: ExpansionOptions = DEFAULTS) -> list[str]:
    """The ``host:port`` of every target the texts yield."""
    return [t.endpoint for t in expand(*texts, options=options)]


# --- port lists -----------------------------------------------------------------


def test_port_list_keeps_order_and_expands_ranges() -> None:
    """A list of ports and ranges expands in the order written."""
    assert parse_port_list("443,8443,9000-9003") == (443, 8443, 9000, 9001, 9002, 9003)


def test_port_list_drops_repeats() -> None:
    """A port named twice (directly or in a range) appears once."""
    assert parse_port_list("443, 440-444,443") == (443, 440, 441, 442, 444)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "port 0 is outside 1-65535"),
        ("70000", "port 70000 is outside 1-65535"),
        ("9010-9000", "port range 9010-9000 runs backwards"),
        ("abc", 'port "abc" is not a number'),
        ("", "port list is empty"),
        ("443,,8443", "empty item"),
        ("-5", 'port "" is not a number'),
        ("١٢٣", "is not a number"),
    ],
)
def test_port_list_errors_state_the_rule(text: str, message: str) -> None:
    """A bad port list is refused with a message that says what is wrong."""
    with pytest.raises(ValueError, match=message):
        parse_port_list(text)


@given(st.lists(st.integers(1, 65535), min_size=1, max_size=20))
def test_port_list_round_trips(ports: list[int]) -> None:
    """Any list of valid ports, joined with commas, parses back without repeats."""
    assert parse_port_list(",".join(map(str, ports))) == tuple(dict.fromkeys(ports))


@given(st.integers(1, 65535), st.integers(0, 50))
def test_port_range_covers_every_port(low: int, width: int) -> None:
    """A range ``low-high`` yields every port from low to high inclusive."""
    high = min(low + width, 65535)
    assert parse_port_list(f"{low}-{high}") == tuple(range(low, high + 1))


@given(st.text(max_size=20))
def test_port_list_never_crashes(text: str) -> None:
    """Arbitrary text either parses to valid ports or raises ValueError."""
    try:
        ports = parse_port_list(text)
    except ValueError:
        return
    assert ports and all(1 <= p <= 65535 for p in ports)


# --- single targets -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.org", ["example.org:443"]),
        ("Example.ORG.", ["example.org:443"]),
        ("example.org:8443", ["example.org:8443"]),
        ("example.org:443,8443", ["example.org:443", "example.org:8443"]),
        ("192.0.2.10", ["192.0.2.10:443"]),
        ("192.0.2.10:25", ["192.0.2.10:25"]),
        ("2001:db8::1", ["[2001:db8::1]:443"]),
        ("2001:DB8:0::1", ["[2001:db8::1]:443"]),
        ("[2001:db8::1]:8443", ["[2001:db8::1]:8443"]),
        ("[::1]", ["[::1]:443"]),
        ("bücher.example", ["xn--bcher-kva.example:443"]),
        ("_service.internal", ["_service.internal:443"]),
        ("localhost", ["localhost:443"]),
        ("10.0.0.7/32", ["10.0.0.7:443"]),
    ],
)
def test_single_targets_parse(text: str, expected: list[str]) -> None:
    """Each accepted form yields the endpoints it names."""
    assert endpoints(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("exa mple.com", "contains white space"),
        ("example.com:", 'missing port after ":"'),
        ("example.com:0", "port 0 is outside 1-65535"),
        ("example.com:http", 'port "http" is not a number'),
        (":443", "missing host"),
        ("999.1.1.1", "not a valid IPv4 address"),
        ("1.2.3", "not a valid IPv4 address"),
        ("-bad.example", 'invalid label "-bad"'),
        ("a..example", "empty label"),
        ("[2001:db8::1", 'without a matching "]"'),
        ("[192.0.2.1]:443", "brackets are only for IPv6"),
        ("[2001:db8::1]x", 'unexpected "x"'),
        ("2001:db8::zz", "not an IPv6 address"),
        ("https://example.org/", "a URL is not a target"),
        ("example.123", "all-numeric label"),
        ("a" * 64 + ".example", "invalid label"),
        (".".join(["abcdefghi"] * 26), "longer than 253"),
        ("xn--zz.example", "invalid IDN label"),
    ],
)
def test_malformed_targets_are_refused_with_reason(text: str, reason: str) -> None:
    """A malformed spec raises TargetError quoting it and saying why."""
    with pytest.raises(TargetError) as info:
        parse_spec(TargetSpec(text=text, source="targets.txt", position=12))
    assert reason in info.value.reason
    assert str(info.value).startswith(f'targets.txt:12: "{text}": ')
    assert info.value.position == 12


def test_hostname_normalisation_uses_a_labels() -> None:
    """IDN names become lower-case A-labels; the mapping follows UTS #46."""
    assert normalise_hostname("Bücher.DE") == "xn--bcher-kva.de"
    assert normalise_hostname("例え.jp") == "xn--r8jz45g.jp"


# --- CIDR -----------------------------------------------------------------------


def test_ipv4_block_skips_network_and_broadcast() -> None:
    """A /30 yields its two host addresses, not its network or broadcast address."""
    assert endpoints("192.0.2.0/30") == ["192.0.2.1:443", "192.0.2.2:443"]


def test_ipv4_slash_31_yields_both_addresses() -> None:
    """A /31 point-to-point block yields both of its addresses (RFC 3021)."""
    assert endpoints("192.0.2.0/31") == ["192.0.2.0:443", "192.0.2.1:443"]


def test_ipv6_block_yields_every_address() -> None:
    """An IPv6 block has no broadcast address, so every address is yielded."""
    assert endpoints("[2001:db8::/126]:8443") == [
        "[2001:db8::]:8443",
        "[2001:db8::1]:8443",
        "[2001:db8::2]:8443",
        "[2001:db8::3]:8443",
    ]


def test_block_with_port_and_port_list() -> None:
    """An explicit port on a block wins over the default port list."""
    opts = ExpansionOptions(default_ports=(443, 8443))
    assert endpoints("192.0.2.0/30:25", options=opts) == ["192.0.2.1:25", "192.0.2.2:25"]
    assert endpoints("192.0.2.0/30", options=opts) == [
        "192.0.2.1:443",
        "192.0.2.1:8443",
        "192.0.2.2:443",
        "192.0.2.2:8443",
    ]


def test_block_with_host_bits_is_refused_with_suggestion() -> None:
    """A block with host bits set is refused, suggesting the block meant."""
    with pytest.raises(TargetError, match=r"did you mean 10\.1\.2\.0/24"):
        parse_spec(TargetSpec(text="10.1.2.5/24"))


def test_large_blocks_need_the_flag() -> None:
    """A block larger than /16 (IPv4) or /112 (IPv6) needs allow_large."""
    for text in ("10.0.0.0/15", "2001:db8::/111"):
        with pytest.raises(TargetError, match="--allow-large-cidr"):
            parse_spec(TargetSpec(text=text))
        assert parse_spec(TargetSpec(text=text), allow_large=True).network is not None
    assert parse_spec(TargetSpec(text="10.0.0.0/16")).network is not None
    assert parse_spec(TargetSpec(text="2001:db8::/112")).network is not None


def test_huge_ipv6_blocks_are_refused_even_with_the_flag() -> None:
    """An IPv6 block larger than /96 is refused even when large blocks are allowed."""
    with pytest.raises(TargetError, match="too large"):
        parse_spec(TargetSpec(text="2001:db8::/64"), allow_large=True)


def test_expansion_is_lazy() -> None:
    """Expanding a /8 yields its first targets without walking the whole block."""
    opts = ExpansionOptions(allow_large=True)
    stream = iter_targets(iter_argument_specs(["10.0.0.0/8"]), options=opts, on_error=print)
    first = list(itertools.islice(stream, 3))
    assert [t.host for t in first] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


@given(st.ip_addresses(v=4), st.integers(24, 32))
def test_ipv4_block_size_matches_prefix(address: ipaddress.IPv4Address, prefix: int) -> None:
    """A block yields 2^(32-prefix) addresses, less two below /31, all inside it."""
    network = ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
    hosts = [t.host for t in expand(str(network))]
    expected = network.num_addresses - (2 if prefix < 31 else 0)
    assert len(hosts) == expected == len(set(hosts))
    assert all(ipaddress.ip_address(h) in network for h in hosts)


# --- ports, SNI, STARTTLS -------------------------------------------------------


def test_port_list_applies_to_hosts_without_explicit_port() -> None:
    """``-p`` applies to every host without its own port and to no other."""
    opts = ExpansionOptions(default_ports=(443, 8443))
    assert endpoints("a.example", "b.example:9000", options=opts) == [
        "a.example:443",
        "a.example:8443",
        "b.example:9000",
    ]


@pytest.mark.parametrize(
    ("port", "protocol"),
    [
        (25, StartTLS.SMTP),
        (587, StartTLS.SMTP),
        (143, StartTLS.IMAP),
        (110, StartTLS.POP3),
        (21, StartTLS.FTP),
        (389, StartTLS.LDAP),
        (5222, StartTLS.XMPP),
        (5432, StartTLS.POSTGRES),
        (465, None),
        (993, None),
        (995, None),
        (636, None),
        (5223, None),
        (443, None),
    ],
)
def test_starttls_is_chosen_by_well_known_port(port: int, protocol: StartTLS | None) -> None:
    """Plain-text ports get their STARTTLS protocol; implicit-TLS ports get none."""
    assert starttls_for_port(port) is protocol
    assert expand(f"mail.example:{port}")[0].starttls is protocol


def test_explicit_starttls_and_sni_apply_to_every_target() -> None:
    """``--starttls`` overrides the port mapping and ``--sni`` is set on each target."""
    opts = ExpansionOptions(starttls=StartTLS.SMTP, sni="mx.example")
    targets = expand("192.0.2.1:2525", "192.0.2.2:443", options=opts)
    assert {t.starttls for t in targets} == {StartTLS.SMTP}
    assert {t.sni for t in targets} == {"mx.example"}


# --- de-duplication -------------------------------------------------------------


def test_duplicates_are_removed_in_order() -> None:
    """The same endpoint written twice, in any spelling, is yielded once, first place kept."""
    assert endpoints("b.example", "A.example:443", "b.example:443", "a.example.") == [
        "b.example:443",
        "a.example:443",
    ]


def test_addresses_inside_an_earlier_block_are_dropped() -> None:
    """An address or block already covered by an earlier block is not yielded again."""
    assert endpoints("192.0.2.0/30", "192.0.2.2", "192.0.2.0/29") == [
        "192.0.2.1:443",
        "192.0.2.2:443",
        # From the /29: .0 and .3 were network/broadcast of the /30, so they are new here.
        "192.0.2.3:443",
        "192.0.2.4:443",
        "192.0.2.5:443",
        "192.0.2.6:443",
    ]


def test_single_address_before_block_is_not_repeated() -> None:
    """An address named before a block that contains it is yielded only once."""
    assert endpoints("192.0.2.2:443", "192.0.2.0/30") == ["192.0.2.2:443", "192.0.2.1:443"]


def test_block_on_other_port_is_not_a_duplicate() -> None:
    """The same block on another port yields new endpoints."""
    assert endpoints("192.0.2.0/31:443", "192.0.2.0/31:8443") == [
        "192.0.2.0:443",
        "192.0.2.1:443",
        "192.0.2.0:8443",
        "192.0.2.1:8443",
    ]


@given(
    st.lists(
        st.tuples(st.integers(0, 15), st.sampled_from([None, 29, 30, 31, 32, 28])),
        max_size=12,
    )
)
def test_deduplication_matches_a_plain_set(items: list[tuple[int, int | None]]) -> None:
    """Over mixed addresses and blocks, the output equals order-preserving set semantics."""
    texts = []
    for offset, prefix in items:
        address = ipaddress.IPv4Address(int(ipaddress.IPv4Address("192.0.2.0")) + offset)
        if prefix is None:
            texts.append(str(address))
        else:
            texts.append(str(ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)))
    produced = endpoints(*texts)
    # Reference: expand every spec on its own, then de-duplicate with a dict.
    reference: dict[str, None] = {}
    for text in texts:
        for endpoint in endpoints(text):
            reference.setdefault(endpoint)
    assert produced == list(reference)


# --- errors keep the rest running -----------------------------------------------


def test_malformed_target_is_reported_and_the_rest_still_yield() -> None:
    """A bad spec among good ones goes to on_error with its position; the good ones yield."""
    errors: list[TargetError] = []
    specs = iter_argument_specs(["a.example", "bad host", "b.example:99999", "c.example"])
    targets = list(iter_targets(specs, options=DEFAULTS, on_error=errors.append))
    assert [t.host for t in targets] == ["a.example", "c.example"]
    assert [(e.source, e.position) for e in errors] == [("argv", 2), ("argv", 3)]
    assert str(errors[1]) == 'argv:3: "b.example:99999": port 99999 is outside 1-65535'


@given(st.text(max_size=40))
def test_parser_never_crashes(text: str) -> None:
    """Arbitrary text either parses into valid Targets or raises TargetError."""
    try:
        parsed = parse_spec(TargetSpec(text=text))
    except TargetError as exc:
        assert exc.text == text
        return
    for target in itertools.islice(parsed.expand(DEFAULTS), 5):
        assert 1 <= target.port <= 65535
        assert target.host == target.host.strip()


@given(
    st.one_of(
        st.ip_addresses(v=4).map(str),
        st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
        st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9](\.[a-z]{2,6}){1,2}", fullmatch=True),
    ),
    st.integers(1, 65535),
)
def test_host_port_round_trips_through_endpoint(host: str, port: int) -> None:
    """``host:port`` parses to a Target whose ``endpoint`` is the canonical spelling."""
    (target,) = expand(f"{host}:{port}")
    assert target.port == port
    assert expand(target.endpoint) == [target]


# --- files ----------------------------------------------------------------------


def test_target_file_skips_comments_and_blank_lines() -> None:
    """Comments, blank lines and surrounding white space are skipped; each target keeps
    its line number."""
    text = "# inventory\n\na.example  # the main site\n  b.example:8443\t\n#x.example\n"
    specs = list(iter_file_specs(io.StringIO(text), source="targets.txt"))
    assert [(s.text, s.position) for s in specs] == [("a.example", 3), ("b.example:8443", 4)]
    assert {s.source for s in specs} == {"targets.txt"}


def test_a_line_is_one_target_and_white_space_inside_is_an_error() -> None:
    """``exa mple.com`` is one malformed target reported with file and line, never the
    two names ``exa`` and ``mple.com``."""
    text = "a.example\nexa mple.com\nb.example\n"
    errors: list[TargetError] = []
    targets = list(
        iter_targets(
            iter_file_specs(io.StringIO(text), source="targets.txt"),
            options=DEFAULTS,
            on_error=errors.append,
        )
    )
    assert [t.host for t in targets] == ["a.example", "b.example"]
    assert [str(e) for e in errors] == ['targets.txt:2: "exa mple.com": contains white space']


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n  # and another\n"])
def test_a_file_without_targets_is_a_target_error(text: str) -> None:
    """An empty or comment-only file is reported as a mistake naming the file."""
    errors: list[TargetError] = []
    targets = list(
        iter_targets(
            iter_file_specs(io.StringIO(text), source="targets.txt"),
            options=DEFAULTS,
            on_error=errors.append,
        )
    )
    assert targets == []
    assert [str(e) for e in errors] == [
        "targets.txt: no targets in the file (it is empty or holds only comments)"
    ]


def test_an_endless_line_is_refused_without_reading_it_whole() -> None:
    """A line longer than the bound is one error for its line; the next line still counts."""
    text = "x" * 100_000 + "\nb.example\n"
    errors: list[TargetError] = []
    targets = list(
        iter_targets(
            iter_file_specs(io.StringIO(text), source="t"), options=DEFAULTS, on_error=errors.append
        )
    )
    assert [t.host for t in targets] == ["b.example"]
    assert [(e.position, e.reason) for e in errors] == [(1, "line longer than 4096 characters")]


def test_target_file_errors_name_file_and_line(tmp_path: Path) -> None:
    """A malformed line in a file is reported as file:line and the other lines still yield."""
    path = tmp_path / "targets.txt"
    path.write_text("a.example\n\nexa_mple..com\nb.example\n", encoding="utf-8")
    errors: list[TargetError] = []
    with open_target_file(str(path)) as stream:
        targets = list(
            iter_targets(
                iter_file_specs(stream, source=str(path)), options=DEFAULTS, on_error=errors.append
            )
        )
    assert [t.host for t in targets] == ["a.example", "b.example"]
    assert len(errors) == 1
    assert str(errors[0]).startswith(f'{path}:3: "exa_mple..com": ')


def test_dash_means_stdin() -> None:
    """The file name ``-`` reads the given standard input stream."""
    stdin = io.StringIO("a.example\n")
    stream = open_target_file("-", stdin=stdin)
    assert [s.text for s in iter_file_specs(stream, source="-")] == ["a.example"]


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    """A target file that cannot be opened is a UsageError naming it."""
    missing = tmp_path / "nope.txt"
    with pytest.raises(UsageError, match=r"nope\.txt: cannot read target file"):
        open_target_file(str(missing))


def test_undecodable_bytes_become_a_line_error(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 produce an error for their line, not a crash."""
    path = tmp_path / "targets.txt"
    path.write_bytes(b"a.example\nb\xff\xfe.example\n")
    errors: list[TargetError] = []
    with open_target_file(str(path)) as stream:
        targets = list(
            iter_targets(
                iter_file_specs(stream, source="t"), options=DEFAULTS, on_error=errors.append
            )
        )
    assert [t.host for t in targets] == ["a.example"]
    assert [e.position for e in errors] == [2]


def test_an_endless_line_ends_the_file_instead_of_hanging() -> None:
    """A file that is one endless line (``/dev/zero``) gives one error and stops being
    read after a bounded amount, rather than being read for ever."""

    class Endless(io.TextIOBase):
        """A text stream of NUL characters without end."""

        def __init__(self) -> None:
            self.read_chars = 0

        def readline(self, size: int | None = -1) -> str:
            count = size if size is not None and size > 0 else 4096
            self.read_chars += count
            return "\x00" * count

    stream = Endless()
    errors: list[TargetError] = []
    targets = list(
        iter_targets(
            iter_file_specs(stream, source="zero"), options=DEFAULTS, on_error=errors.append
        )
    )
    assert targets == []
    assert [e.reason for e in errors] == ["line longer than 4096 characters"]
    assert stream.read_chars < 2 * 1024 * 1024


@pytest.mark.parametrize(
    ("text", "expected"),
    [("bücher\uff0eexample", "xn--bcher-kva.example"), ("a\u3002b.example", "a.b.example")],
)
def test_full_width_dots_separate_labels(text: str, expected: str) -> None:
    """Ideographic and full-width full stops separate labels, as UTS #46 maps them."""
    assert normalise_hostname(text) == expected


def test_a_full_width_dot_beside_a_dot_is_an_empty_label() -> None:
    """A full-width dot then a dot ("mple\\uff0e.com") is refused; it once became the
    name "mple..com", with an empty label."""
    with pytest.raises(ValueError, match="empty label"):
        normalise_hostname("mple\uff0e.com")
