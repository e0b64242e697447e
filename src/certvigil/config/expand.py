"""Expand a configuration's targets and sources into the endpoints to scan, with settings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from certvigil.config.checks import DEFAULT_CHECKS, ChecksSettings
from certvigil.config.loading import LoadedConfig, locate_field
from certvigil.config.locate import format_field_path
from certvigil.config.model import (
    EndpointSettings,
    SourceEntry,
    SourceKind,
    TargetEntry,
    TrustSettings,
)
from certvigil.config.units import Threshold
from certvigil.errors import ConfigError, TargetError, UsageError
from certvigil.targets.parse import (
    ExpansionOptions,
    TargetSpec,
    iter_file_specs,
    normalise_hostname,
    open_target_file,
    parse_spec,
)
from certvigil.targets.sources.names import NameSelection, select_names
from certvigil.targets.sources.octodns_csv import read_octodns_csv
from certvigil.targets.sources.zonefile import read_zone_file
from certvigil.targets.target import Target


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledTarget:
    """One endpoint to scan, with the settings that apply to it.

    Attributes:
        target: The endpoint.
        tags: Labels from every entry that named it, in first-seen order.
        interval_s: Seconds between two scans of it.
        timeout_s: Probe time-out.
        thresholds: Alert thresholds for it.
        trust: The trust store its chain is judged against.
        origin: The entry that first named it (``targets[3]``, ``sources[0]``).
        checks: Which checks run on it and how often (global ``checks:`` with the
            entry's own applied).
    """

    target: Target
    tags: tuple[str, ...] = ()
    interval_s: float
    timeout_s: float
    thresholds: tuple[Threshold, ...]
    trust: TrustSettings
    origin: str
    checks: ChecksSettings = DEFAULT_CHECKS


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpandedTargets:
    """The result of :func:`expand_targets`.

    Attributes:
        targets: Every endpoint, once, in configuration order.
        notes: Names skipped for a reason worth telling (not a valid host name).
    """

    targets: tuple[ScheduledTarget, ...]
    notes: tuple[str, ...] = ()


def expand_targets(loaded: LoadedConfig) -> ExpandedTargets:
    """Every endpoint a configuration names, from ``targets`` and from ``sources``.

    Duplicates (same host, port, SNI and STARTTLS) keep the first entry's settings and
    gather the tags of all. Files are read relative to the configuration file.

    Args:
        loaded: A validated configuration.

    Returns:
        The endpoints with their settings, and notes.

    Raises:
        ConfigError: Sources that cannot be read or parsed, CIDR blocks that are too
            large; ``problems`` lists every one, each naming the file, field and line.
    """
    config = loaded.config
    name = str(loaded.path)
    problems: list[ConfigError] = []
    notes: list[str] = []
    found: dict[Target, ScheduledTarget] = {}

    def add(targets: Iterable[Target], entry: EndpointSettings, origin: str) -> None:
        # One entry's settings are the same for each of its endpoints: worked out once
        # (a source of 10,000 addresses copied its trust settings 10,000 times).
        schedule = _scheduler(entry, loaded, origin)
        for target in targets:
            scheduled = schedule(target=target)
            known = found.get(target)
            if known is None:
                found[target] = scheduled
            else:
                tags = tuple(dict.fromkeys((*known.tags, *scheduled.tags)))
                found[target] = replace(known, tags=tags)

    locate = locate_field(loaded)

    def located(path: tuple[str | int, ...]) -> int:
        return locate(path) or 0

    for index, entry in enumerate(config.targets):
        field = f"targets[{index}]"
        spec = TargetSpec(text=entry.host, source=name)
        try:
            parsed = parse_spec(spec, allow_large=config.scan.allow_large_cidr)
            add(parsed.expand(_options(entry, config.scan.allow_large_cidr)), entry, field)
        except TargetError as exc:
            problems.append(_problem(name, field, exc.reason, located(("targets", index))))
    for index, source in enumerate(config.sources):
        field = f"sources[{index}]"
        try:
            targets = list(_source_targets(source, loaded, notes))
            add(targets, source, field)
        except UsageError as exc:
            line = located(("sources", index, "path"))
            problems.append(_problem(name, f"{field}.path", str(exc), line))
    if problems:
        if len(problems) == 1:
            raise problems[0]
        raise ConfigError(
            name, f"{len(problems)} mistakes, the first: {problems[0]}", problems=tuple(problems)
        )
    return ExpandedTargets(targets=tuple(found.values()), notes=tuple(notes))


def _problem(name: str, field: str, reason: str, line: int | None) -> ConfigError:
    return ConfigError(name, reason, location=field, line=line)


def _options(entry: EndpointSettings, allow_large: bool) -> ExpansionOptions:
    return ExpansionOptions(
        default_ports=entry.port_list,
        sni=entry.sni,
        starttls=entry.starttls,
        allow_large=allow_large,
    )


def entry_targets(entry: TargetEntry, *, allow_large: bool = False) -> Iterator[Target]:
    """The endpoints one ``targets`` entry names, lazily (a CIDR block: each address).

    Raises:
        TargetError: The host cannot be parsed, or the block is too large.
    """
    spec = parse_spec(TargetSpec(text=entry.host), allow_large=allow_large)
    yield from spec.expand(_options(entry, allow_large))


def entry_schedule(
    target: Target, entry: EndpointSettings, loaded: LoadedConfig, origin: str
) -> ScheduledTarget:
    """One endpoint of ``entry`` with the settings that apply to it (the entry's own over
    the configuration's): its interval, time-out, thresholds, trust and checks.

    Args:
        target: The endpoint.
        entry: The entry that names it (from the file, or one the server assigned).
        loaded: The configuration whose defaults apply.
        origin: Where the entry came from, for messages.
    """
    return _scheduler(entry, loaded, origin)(target=target)


def _scheduler(
    entry: EndpointSettings, loaded: LoadedConfig, origin: str
) -> partial[ScheduledTarget]:
    """Makes the ``ScheduledTarget`` of each endpoint of ``entry`` (called with
    ``target=``): the entry's settings over the configuration's, worked out once for all
    its endpoints."""
    config = loaded.config
    trust = entry.trust if entry.trust is not None else config.trust
    trust = trust.model_copy(update={"ca_files": tuple(loaded.resolve(p) for p in trust.ca_files)})
    return partial(
        ScheduledTarget,
        tags=entry.tags,
        interval_s=entry.interval_s if entry.interval_s is not None else config.scan.interval_s,
        timeout_s=entry.timeout_s if entry.timeout_s is not None else config.scan.timeout_s,
        thresholds=entry.thresholds if entry.thresholds is not None else config.alerts.thresholds,
        trust=trust,
        origin=origin,
        checks=entry.checks.over(config.checks) if entry.checks is not None else config.checks,
    )


def _source_targets(
    source: SourceEntry, loaded: LoadedConfig, notes: list[str]
) -> Iterator[Target]:
    path = loaded.resolve(source.path)
    options = _options(source, loaded.config.scan.allow_large_cidr)
    if source.type is SourceKind.TARGET_FILE:
        yield from _target_file_targets(path, options)
        return
    if source.type is SourceKind.ZONE_FILE:
        names = read_zone_file(path, origin=source.origin)
    else:
        names = read_octodns_csv(path)
    selection = NameSelection(
        include=source.include,
        exclude=source.exclude,
        probe_wildcards=source.wildcards == "probe",
        wildcard_label=source.wildcard_label,
    )
    for host in select_names(names, selection):
        try:
            normalised = normalise_hostname(host)
        except ValueError as exc:
            notes.append(f"{path}: {host}: skipped: {exc}")
            continue
        for port in options.default_ports:
            yield from parse_spec(TargetSpec(text=normalised)).expand(
                replace(options, default_ports=(port,))
            )


def _target_file_targets(path: Path, options: ExpansionOptions) -> Iterator[Target]:
    stream = open_target_file(str(path))
    with stream:
        specs = list(iter_file_specs(stream, source=str(path)))
    for spec in specs:
        try:
            parsed = parse_spec(spec, allow_large=options.allow_large)
        except TargetError as exc:
            raise ConfigError(
                spec.source, f'"{spec.text}": {exc.reason}', line=spec.position
            ) from exc
        yield from parsed.expand(options)


def check_trust_files(loaded: LoadedConfig) -> tuple[ConfigError, ...]:
    """Every CA file named in the configuration that cannot be read as certificates.

    Args:
        loaded: A validated configuration.

    Returns:
        One error per unusable file, naming the field (``targets[2].trust.ca_files[0]``)
        and its line; empty when every file loads.
    """
    from certvigil.files.truststore import load_trust_store

    config = loaded.config
    locate = locate_field(loaded)
    name = str(loaded.path)
    places: list[tuple[tuple[str | int, ...], TrustSettings]] = [(("trust",), config.trust)]
    for section, entries in (("targets", config.targets), ("sources", config.sources)):
        for index, entry in enumerate(entries):
            if entry.trust is not None:
                places.append(((section, index, "trust"), entry.trust))
    problems: list[ConfigError] = []
    for prefix, trust in places:
        for index, ca_file in enumerate(trust.ca_files):
            path = (*prefix, "ca_files", index)
            try:
                load_trust_store(ca_files=(loaded.resolve(ca_file),), include_default=False)
            except UsageError as exc:
                problems.append(_problem(name, format_field_path(path), str(exc), locate(path)))
    return tuple(problems)
