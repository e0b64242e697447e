"""Names from BIND master (zone) files, read with dnspython, ``$INCLUDE`` included."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from certvigil.errors import ConfigError
from certvigil.targets.sources.names import DnsName

ADDRESS_TYPES = frozenset({"A", "AAAA", "CNAME"})
"""Record types whose owners are names one can connect to."""

_INCLUDE_RE = re.compile(
    r"""^(?P<head>\$INCLUDE[ \t]+)(?P<file>"[^"]*"|\S+)(?P<tail>.*)$""", re.IGNORECASE
)
_MAX_INCLUDE_DEPTH = 16


def read_zone_file(path: Path, *, origin: str | None = None) -> tuple[DnsName, ...]:
    """The A, AAAA and CNAME owner names of a zone file.

    ``$INCLUDE`` paths are read relative to the directory of the file that names them
    (as zone files are kept in repositories) rather than the process's directory. The
    zone's origin comes from ``origin`` or the file's ``$ORIGIN``.

    Args:
        path: The zone file.
        origin: The origin for names before any ``$ORIGIN``; ``None`` to take it from
            the file.

    Returns:
        Owner names in the zone's canonical order, lower-case, without the final dot.

    Raises:
        ConfigError: The file (or an included one) cannot be read or parsed, naming
            the file and, where dnspython tells it, the line.
    """
    # dnspython is imported when a zone is read: every configuration imports this module.
    import dns.exception
    import dns.name
    import dns.rdatatype
    import dns.zone

    with tempfile.TemporaryDirectory(prefix="certvigil-zone-") as scratch:
        copies: dict[Path, Path] = {}
        try:
            text = _with_absolute_includes(path.resolve(), Path(scratch), copies, depth=0)
        except OSError as exc:
            raise ConfigError(str(path), f"cannot read zone file: {exc.strerror or exc}") from exc
        try:
            zone = dns.zone.from_text(
                text,
                origin=dns.name.from_text(origin) if origin else None,
                relativize=False,
                check_origin=False,
                filename=str(path),
                allow_include=True,
            )
        except dns.zone.UnknownOrigin as exc:
            raise ConfigError(
                str(path), "no $ORIGIN in the file; set origin for this source"
            ) from exc
        except (dns.exception.DNSException, ValueError, OSError) as exc:
            raise _zone_error(path, exc, copies) from exc
    names: list[DnsName] = []
    for owner, node in sorted(zone.nodes.items()):
        types = sorted(
            text
            for rdataset in node.rdatasets
            if (text := dns.rdatatype.to_text(rdataset.rdtype)) in ADDRESS_TYPES
        )
        if types:
            text_name = owner.to_text(omit_final_dot=True).lower()
            names.append(DnsName(name=text_name, rdtypes=tuple(types), source=str(path)))
    return tuple(names)


def _with_absolute_includes(
    path: Path, scratch: Path, copies: dict[Path, Path], *, depth: int
) -> str:
    """``path``'s text with each ``$INCLUDE`` pointing at an absolute path.

    An included file that itself includes others is rewritten into ``scratch`` (its
    line numbers unchanged), since dnspython opens include paths as given.
    """
    if depth > _MAX_INCLUDE_DEPTH:
        raise ConfigError(str(path), f"$INCLUDE nested more than {_MAX_INCLUDE_DEPTH} deep")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for number, line in enumerate(lines):
        match = _INCLUDE_RE.match(line.rstrip("\r\n"))
        if match is None:
            continue
        name = match["file"].strip('"')
        included = (path.parent / name).resolve()
        if not included.is_file():
            raise ConfigError(
                f"{path}:{number + 1}", f'$INCLUDE "{name}": no such file ({included})'
            )
        target = included
        text = included.read_text(encoding="utf-8")
        if _INCLUDE_RE.search(text) or re.search(r"(?im)^\$INCLUDE", text):
            target = scratch / f"{len(copies)}-{included.name}"
            copies[target] = included
            target.write_text(
                _with_absolute_includes(included, scratch, copies, depth=depth + 1),
                encoding="utf-8",
            )
        ending = line[len(line.rstrip("\r\n")) :]
        lines[number] = f'{match["head"]}"{target}"{match["tail"]}{ending}'
    return "".join(lines)


def _zone_error(path: Path, exc: Exception, copies: dict[Path, Path]) -> ConfigError:
    message = str(exc) or type(exc).__name__
    for copy, original in copies.items():
        message = message.replace(str(copy), str(original))
    match = re.match(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<reason>.*)$", message, re.DOTALL)
    if match:
        return ConfigError(
            match["file"], f"not a valid zone file: {match['reason']}", line=int(match["line"])
        )
    return ConfigError(str(path), f"not a valid zone file: {message}")
