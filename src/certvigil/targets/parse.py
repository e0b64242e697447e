"""Parse target specs (host[:ports], IPs, CIDR blocks, files) and expand them into Targets.

A *spec* is one piece of text as the user wrote it, with where it came from
(``TargetSpec``). ``parse_spec`` checks it eagerly and raises ``TargetError`` naming
the source and position; ``ParsedSpec.expand`` then yields ``Target`` objects lazily,
so a /16 never exists as a list. ``iter_targets`` ties these together: it parses each
spec, reports malformed ones to a callback and carries on, and drops duplicates.

Accepted forms::

    example.org              name; the default ports (443 unless ``-p`` says otherwise)
    example.org:8443         name with an explicit port (``-p`` does not apply)
    example.org:443,8443     name with an explicit port list
    bücher.example           IDN, converted to its A-label form (xn--bcher-kva.example)
    192.0.2.10[:port]        IPv4 address
    2001:db8::1              bare IPv6 address (no port: use brackets for one)
    [2001:db8::1]:8443       bracketed IPv6 address with a port
    10.1.2.0/28[:port]       IPv4 block: every host address
    [2001:db8::/120]:443     IPv6 block with a port

Decisions:

* IPv4 blocks with a prefix shorter than /31 skip their network and broadcast
  addresses (nothing listens there); /31 (RFC 3021) and /32 yield every address.
  IPv6 blocks yield every address: IPv6 has no broadcast address.
* Blocks larger than ``MAX_IPV4_PREFIX`` (/16, 65,536 addresses) or
  ``MAX_IPV6_PREFIX`` (/112, the same count) are refused unless ``allow_large``.
  Even then an IPv6 block must be /96 or smaller (2^32 addresses): larger blocks
  cannot be walked address by address in any useful time.
* A block must be written with its host bits clear (``10.1.2.0/24``, not
  ``10.1.2.5/24``): a set host bit is more often a typo than an intent.
* Duplicates (same host, port, SNI and STARTTLS protocol) are dropped, first one
  kept. Memory stays proportional to the number of specs rather than the number of
  addresses: single endpoints are remembered in a set, and blocks are remembered as
  blocks and tested by containment.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

import idna

from certvigil.errors import TargetError, UsageError
from certvigil.targets.ipaddr import ip_or_none, parse_ip
from certvigil.targets.target import StartTLS, Target

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORT = 443
"""The port used for a host written without one when no port list is given."""

MAX_IPV4_PREFIX = 16
"""IPv4 blocks with a shorter prefix than this need ``allow_large``."""

MAX_IPV6_PREFIX = 112
"""IPv6 blocks with a shorter prefix than this need ``allow_large``."""

HARD_MAX_IPV6_PREFIX = 96
"""IPv6 blocks with a shorter prefix than this are refused even with ``allow_large``."""

STARTTLS_BY_PORT: dict[int, StartTLS] = {
    21: StartTLS.FTP,
    25: StartTLS.SMTP,
    110: StartTLS.POP3,
    143: StartTLS.IMAP,
    389: StartTLS.LDAP,
    587: StartTLS.SMTP,
    5222: StartTLS.XMPP,
    5432: StartTLS.POSTGRES,
}
"""Well-known plain-text ports that upgrade with STARTTLS. Their implicit-TLS
siblings (465 SMTPS, 993 IMAPS, 995 POP3S, 636 LDAPS, 5223 XMPP over TLS, 990 FTPS)
are absent on purpose: they speak TLS from the first byte."""

_LABEL_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_DIGITS_AND_DOTS_RE = re.compile(r"^[0-9.]+$")
_MAX_NAME_LENGTH = 253


def starttls_for_port(port: int) -> StartTLS | None:
    """The STARTTLS protocol a well-known port implies, ``None`` for implicit TLS.

    Args:
        port: A TCP port.

    Returns:
        The protocol for 21, 25, 110, 143, 389, 587, 5222 and 5432; ``None`` otherwise.
    """
    return STARTTLS_BY_PORT.get(port)


def parse_port(text: str) -> int:
    """Parse one TCP port number.

    Args:
        text: Decimal digits.

    Returns:
        The port, 1-65535.

    Raises:
        ValueError: When ``text`` is not a whole number in 1..65535.
    """
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit():
        raise ValueError(f'port "{text}" is not a number')
    port = int(stripped)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535")
    return port


def parse_port_list(text: str) -> tuple[int, ...]:
    """Parse a port list such as ``"443,8443,9000-9010"``.

    Items are separated by commas; an item is a port or an inclusive range
    ``low-high``. The result keeps the order written and drops repeats.

    Args:
        text: The list as written.

    Returns:
        The ports, in order, without duplicates.

    Raises:
        ValueError: For an empty list or item, a non-number, a port outside
            1-65535, or a range whose start exceeds its end.
    """
    if not text.strip():
        raise ValueError("port list is empty")
    ports: dict[int, None] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise ValueError(f'empty item in port list "{text}"')
        if "-" in item:
            low_text, _, high_text = item.partition("-")
            low, high = parse_port(low_text), parse_port(high_text)
            if low > high:
                raise ValueError(f"port range {low}-{high} runs backwards")
            for port in range(low, high + 1):
                ports[port] = None
        else:
            ports[parse_port(item)] = None
    return tuple(ports)


def normalise_hostname(text: str) -> str:
    """Check a DNS name and return it lower-case, in A-label form, without a final dot.

    Underscores are accepted (internal names use them); IDN labels are converted
    with UTS #46 mapping.

    Args:
        text: The name as written.

    Returns:
        The normalised name.

    Raises:
        ValueError: When ``text`` is not a usable DNS name.
    """
    if not text.isascii():
        # UTS #46 maps the ideographic and full-width full stops (U+3002, U+FF0E, …) to
        # "."; done on the whole name first, so that they separate labels rather than
        # turning up inside one ("a" U+FF0E "." "b" must be refused, not become "a..b").
        try:
            text = idna.uts46_remap(text, std3_rules=False, transitional=False)
        except idna.IDNAError as exc:
            raise ValueError(f'invalid international name "{text}": {exc}') from exc
    name = text[:-1] if text.endswith(".") else text
    if not name:
        raise ValueError("empty host name")
    labels: list[str] = []
    for label in name.split("."):
        if not label:
            raise ValueError("empty label in host name")
        if label.isascii():
            ascii_label = label.lower()
            if not _LABEL_RE.match(ascii_label):
                raise ValueError(f'invalid label "{label}" in host name')
            if ascii_label.startswith("xn--"):
                try:
                    idna.decode(ascii_label)
                except idna.IDNAError as exc:
                    raise ValueError(f'invalid IDN label "{label}": {exc}') from exc
        else:
            try:
                ascii_label = idna.encode(label, uts46=True).decode("ascii")
            except idna.IDNAError as exc:
                raise ValueError(f'invalid IDN label "{label}": {exc}') from exc
        if not _LABEL_RE.match(ascii_label):  # what IDNA made of it, checked again
            raise ValueError(f'invalid label "{label}" in host name')
        labels.append(ascii_label)
    result = ".".join(labels)
    if len(result) > _MAX_NAME_LENGTH:
        raise ValueError(f"host name is longer than {_MAX_NAME_LENGTH} characters")
    if labels[-1].isdigit():
        raise ValueError("host name ends in an all-numeric label (not a valid IP either)")
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetSpec:
    """One target as written, with where it was written.

    Attributes:
        text: The spec text (already stripped of comments and surrounding space).
        source: ``"argv"``, a file name, or ``"-"`` for stdin.
        position: 1-based argument index or line number in ``source``.
    """

    text: str
    source: str = "argv"
    position: int = 0
    problem: str | None = None
    """Set for a spec that stands for a mistake found while reading (an empty file):
    ``parse_spec`` refuses it with this reason."""


MAX_LINE_CHARS = 4096
"""The longest target-file line read as a target; longer lines are refused whole."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpansionOptions:
    """How specs become Targets.

    Attributes:
        default_ports: Ports for hosts written without one.
        sni: The server name to send to every target, ``None`` for the default.
        starttls: The STARTTLS protocol for every target; ``None`` chooses it by
            well-known port (``starttls_for_port``).
        allow_large: Accept blocks larger than /16 (IPv4) or /112 (IPv6).
    """

    default_ports: tuple[int, ...] = (DEFAULT_PORT,)
    sni: str | None = None
    starttls: StartTLS | None = None
    allow_large: bool = False

    def __post_init__(self) -> None:
        if not self.default_ports:
            raise ValueError("default_ports must not be empty")


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedSpec:
    """A spec that parsed; exactly one of ``host`` and ``network`` is set.

    Attributes:
        spec: The spec as written.
        host: A normalised DNS name or IP address literal; ``None`` for a block.
        network: The CIDR block; ``None`` for a single host.
        ports: Ports written in the spec; empty means "use the default ports".
    """

    spec: TargetSpec
    host: str | None = None
    network: IPNetwork | None = None
    ports: tuple[int, ...] = ()

    def hosts(self) -> Iterator[str]:
        """The host name or address literals the spec names, lazily."""
        if self.network is None:
            if self.host is not None:
                yield self.host
            return
        for address in _iter_block(self.network):
            yield str(address)

    def expand(self, options: ExpansionOptions) -> Iterator[Target]:
        """Yield one Target per (host, port), lazily.

        Args:
            options: Default ports, SNI and STARTTLS choices.

        Yields:
            Targets, host-major (all ports of the first host, then the next host).
        """
        ports = self.ports or options.default_ports
        for host in self.hosts():
            for port in ports:
                starttls = (
                    options.starttls if options.starttls is not None else starttls_for_port(port)
                )
                yield Target(host=host, port=port, sni=options.sni, starttls=starttls)


def _iter_block(network: IPNetwork) -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    if network.version == 4 and network.prefixlen < 31:
        # Network and broadcast addresses: nothing listens there.
        first = int(network.network_address) + 1
        last = int(network.broadcast_address) - 1
    else:
        first = int(network.network_address)
        last = int(network.broadcast_address)
    make = ipaddress.IPv4Address if network.version == 4 else ipaddress.IPv6Address
    for value in range(first, last + 1):
        yield make(value)


def parse_spec(spec: TargetSpec, *, allow_large: bool = False) -> ParsedSpec:
    """Parse one target spec.

    Args:
        spec: The text and where it came from.
        allow_large: Accept blocks larger than /16 (IPv4) or /112 (IPv6).

    Returns:
        The parsed spec, ready to ``expand``.

    Raises:
        TargetError: Naming the spec, its source and position, and what is wrong.
    """
    if spec.problem is not None:
        raise TargetError(spec.text, spec.problem, source=spec.source, position=spec.position)
    try:
        return _parse(spec, allow_large=allow_large)
    except ValueError as exc:
        raise TargetError(spec.text, str(exc), source=spec.source, position=spec.position) from exc


def _parse(spec: TargetSpec, *, allow_large: bool) -> ParsedSpec:
    text = spec.text.strip()
    if not text:
        raise ValueError("empty target")
    if any(ch.isspace() for ch in text):
        raise ValueError("contains white space")
    if not text.isprintable():
        raise ValueError("contains invisible or control characters")
    if "://" in text:
        raise ValueError("a URL is not a target; write host[:port]")
    host_text: str
    port_text: str | None = None
    if text.startswith("["):
        closing = text.find("]")
        if closing < 0:
            raise ValueError('"[" without a matching "]"')
        host_text = text[1:closing]
        rest = text[closing + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f'unexpected "{rest}" after "]"')
            port_text = rest[1:]
        if ":" not in host_text:
            raise ValueError("brackets are only for IPv6 addresses")
    elif text.count(":") >= 2:
        host_text = text
        if not _is_ipv6(host_text):
            raise ValueError("not an IPv6 address (write [address]:port to give a port)")
    elif ":" in text:
        host_text, _, port_text = text.partition(":")
    else:
        host_text = text
    if not host_text:
        raise ValueError("missing host")
    ports: tuple[int, ...] = ()
    if port_text is not None:
        if not port_text:
            raise ValueError('missing port after ":"')
        ports = parse_port_list(port_text)
    if "/" in host_text:
        network = _parse_network(host_text, allow_large=allow_large)
        if network.prefixlen == network.max_prefixlen:
            return ParsedSpec(spec=spec, host=str(network.network_address), ports=ports)
        return ParsedSpec(spec=spec, network=network, ports=ports)
    host = _parse_host(host_text)
    return ParsedSpec(spec=spec, host=host, ports=ports)


def _is_ipv6(text: str) -> bool:
    try:
        if "/" in text:
            ipaddress.IPv6Network(text, strict=False)
        else:
            ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _parse_host(text: str) -> str:
    address = ip_or_none(text)
    if address is not None:
        return str(address)
    if ":" in text:
        raise ValueError("not a valid IPv6 address")
    if _DIGITS_AND_DOTS_RE.match(text):
        raise ValueError("not a valid IPv4 address")
    return normalise_hostname(text)


def _parse_network(text: str, *, allow_large: bool) -> IPNetwork:
    address_text, _, prefix_text = text.partition("/")
    if not prefix_text.isascii() or not prefix_text.isdigit():
        raise ValueError(f'prefix length "{prefix_text}" is not a number')
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise ValueError(f"not a valid CIDR block: {exc}") from exc
    if str(network.network_address) != str(ipaddress.ip_address(address_text)):
        raise ValueError(f"host bits are set; did you mean {network}?")
    if network.version == 4:
        limit, hard_limit = MAX_IPV4_PREFIX, 0
    else:
        limit, hard_limit = MAX_IPV6_PREFIX, HARD_MAX_IPV6_PREFIX
    if network.prefixlen < hard_limit:
        raise ValueError(
            f"block of 2^{network.max_prefixlen - network.prefixlen} addresses is too large to "
            f"scan address by address (IPv6 blocks must be /{hard_limit} or smaller)"
        )
    if network.prefixlen < limit and not allow_large:
        raise ValueError(
            f"block of {network.num_addresses:,} addresses is larger than /{limit}; "
            "pass --allow-large-cidr to scan it"
        )
    return network


def iter_argument_specs(arguments: Iterable[str]) -> Iterator[TargetSpec]:
    """Wrap command-line target arguments as specs numbered from 1.

    Args:
        arguments: The positional target arguments.

    Yields:
        One spec per argument, with source ``"argv"``.
    """
    for position, text in enumerate(arguments, start=1):
        yield TargetSpec(text=text, source="argv", position=position)


def iter_file_specs(stream: TextIO, *, source: str) -> Iterator[TargetSpec]:
    """Read specs from a target file, lazily: one target per line.

    ``#`` starts a comment that runs to the end of the line; blank lines are skipped;
    white space around a target is ignored. White space *inside* a line's target is
    not a separator: ``exa mple.com`` is one malformed target (reported with its line,
    never looked up), not the two names ``exa`` and ``mple.com``. A file without any
    target (empty, or only comments) yields one spec that ``parse_spec`` refuses, so
    that the mistake is reported like any malformed target.

    Args:
        stream: The open file (or ``sys.stdin``).
        source: The name used in error messages (the path, or ``"-"``).

    Yields:
        One spec per line that holds a target, numbered by its line.
    """
    count = 0
    for number, line in enumerate(_bounded_lines(stream), start=1):
        if line is None:
            count += 1
            yield TargetSpec(
                text="…",
                source=source,
                position=number,
                problem=f"line longer than {MAX_LINE_CHARS} characters",
            )
            continue
        content = line.split("#", 1)[0].strip()
        if content:
            count += 1
            yield TargetSpec(text=content, source=source, position=number)
    if count == 0:
        yield TargetSpec(
            text="",
            source=source,
            problem="no targets in the file (it is empty or holds only comments)",
        )


MAX_SKIPPED_LINE_CHARS = 1024 * 1024
"""A line this long ends the reading of its file (``/dev/zero`` is one endless line)."""


def _bounded_lines(stream: TextIO) -> Iterator[str | None]:
    """The lines of ``stream``; ``None`` for a line longer than ``MAX_LINE_CHARS``,
    read past in pieces so that one endless line never sits in memory whole. A line
    longer than ``MAX_SKIPPED_LINE_CHARS`` is the last one read."""
    while True:
        line = stream.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) <= MAX_LINE_CHARS or line.endswith("\n"):
            yield line
            continue
        skipped = len(line)
        while line and not line.endswith("\n") and skipped <= MAX_SKIPPED_LINE_CHARS:
            line = stream.readline(MAX_LINE_CHARS + 1)
            skipped += len(line)
        yield None
        if skipped > MAX_SKIPPED_LINE_CHARS:
            return


def open_target_file(path: str, *, stdin: TextIO | None = None) -> TextIO:
    """Open a target file for ``iter_file_specs``; ``-`` means standard input.

    Opening happens here, eagerly, so that a missing file is reported before any
    scanning starts. Undecodable bytes become U+FFFD and then a per-line error.

    Args:
        path: The file name, or ``"-"``.
        stdin: The stream to use for ``"-"``; ``sys.stdin`` when ``None``.

    Returns:
        A text stream; the caller closes it (closing stdin is harmless).

    Raises:
        UsageError: When the file cannot be opened.
    """
    if path == "-":
        return stdin if stdin is not None else sys.stdin
    try:
        return open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read target file: {exc.strerror or exc}") from exc


_Block = tuple[IPNetwork, frozenset[int]]


@dataclass(slots=True)
class _Seen:
    """What was already yielded: single endpoints in a set, blocks as blocks.

    One ``iter_targets`` call applies one SNI and STARTTLS choice to every spec, so
    the host and port identify an endpoint here.
    """

    keys: set[tuple[str, int]] = field(default_factory=set)
    blocks: list[_Block] = field(default_factory=list)

    def has(self, target: Target, blocks: Iterable[_Block]) -> bool:
        """Whether ``target`` was yielded as a single endpoint or from one of ``blocks``."""
        if (target.host, target.port) in self.keys:
            return True
        if not target.is_ip:
            return False
        address = parse_ip(target.host)
        return any(
            target.port in ports
            and address.version == network.version
            and address in network
            and _block_yields(network, address)
            for network, ports in blocks
        )


def _block_yields(
    network: IPNetwork, address: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> bool:
    if network.version == 4 and network.prefixlen < 31:
        return address not in (network.network_address, network.broadcast_address)
    return True


def iter_targets(
    specs: Iterable[TargetSpec],
    *,
    options: ExpansionOptions,
    on_error: Callable[[TargetError], None],
) -> Iterator[Target]:
    """Parse, expand and de-duplicate specs into Targets, lazily and in order.

    A malformed spec is passed to ``on_error`` and skipped; the others still yield.

    Args:
        specs: Specs from the command line and target files.
        options: Default ports, SNI, STARTTLS and the large-block switch.
        on_error: Called once for each malformed spec.

    Yields:
        Each distinct Target once, in the order first written.
    """
    seen = _Seen()
    for spec in specs:
        try:
            parsed = parse_spec(spec, allow_large=options.allow_large)
        except TargetError as exc:
            on_error(exc)
            continue
        if parsed.network is None:
            for target in parsed.expand(options):
                if not seen.has(target, seen.blocks):
                    seen.keys.add((target.host, target.port))
                    yield target
            continue
        # Only earlier blocks that overlap this one can hold its addresses.
        overlapping = [block for block in seen.blocks if block[0].overlaps(parsed.network)]
        for target in parsed.expand(options):
            if not seen.has(target, overlapping):
                yield target
        # Recorded after the walk: a block never repeats its own addresses.
        seen.blocks.append((parsed.network, frozenset(parsed.ports or options.default_ports)))
