"""The configuration models: what a certvigil configuration file may say, validated."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from certvigil.analysis.model import Severity
from certvigil.config.checks import ChecksOverride, ChecksSettings
from certvigil.config.ct import CtSettings
from certvigil.config.units import DelayS, DurationS, Threshold
from certvigil.errors import TargetError
from certvigil.targets.ipaddr import ip_or_none
from certvigil.targets.parse import TargetSpec as SpecText
from certvigil.targets.parse import normalise_hostname, parse_spec
from certvigil.targets.target import StartTLS

DEFAULT_THRESHOLDS: tuple[Threshold, ...] = tuple(Threshold(days=d) for d in (30, 14, 7, 1))
"""The alert thresholds when a configuration names none (30/14/7/1 days)."""

STARTTLS_DEFAULT_PORTS: dict[StartTLS, int] = {
    StartTLS.SMTP: 25,
    StartTLS.IMAP: 143,
    StartTLS.POP3: 110,
    StartTLS.FTP: 21,
    StartTLS.LDAP: 389,
    StartTLS.XMPP: 5222,
    StartTLS.POSTGRES: 5432,
}
"""The port a STARTTLS target gets when it names none."""


MIN_INTERVAL_S = 1.0
"""The shortest scan interval (durations are otherwise bounded in ``config.units``)."""


def _check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ValueError("must be 1..65535")
    return port


Port = Annotated[int, AfterValidator(_check_port)]


_MAX_PATH_LENGTH = 4096
_MAX_TEXT_LENGTH = 4096


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def _check_path(path: Path) -> Path:
    text = str(path)
    if not text or text == ".":
        raise ValueError("must name a file")
    if len(text) > _MAX_PATH_LENGTH:
        raise ValueError(f"a path of more than {_MAX_PATH_LENGTH} characters")
    if _has_control(text):
        raise ValueError("a path must not contain control characters")
    return path


FilePath = Annotated[Path, AfterValidator(_check_path)]
"""A file path: not empty, no control characters (NUL would only fail later)."""


def _check_text(text: str) -> str:
    if len(text) > _MAX_TEXT_LENGTH:
        raise ValueError(f"more than {_MAX_TEXT_LENGTH} characters")
    if _has_control(text):
        raise ValueError("must not contain control characters")
    return text


Text = Annotated[str, AfterValidator(_check_text)]
"""A one-line setting: bounded, no control characters."""


def _check_sni(name: str) -> str:
    if ip_or_none(name.strip("[]")) is not None:
        raise ValueError(f'"{name}": an IP address is never sent as SNI; leave sni out')
    try:
        return normalise_hostname(name)
    except ValueError as exc:
        raise ValueError(f'"{name}": not a server name: {exc}') from None


ServerName = Annotated[str, AfterValidator(_check_sni)]
"""A DNS name to send as SNI, normalised like a target host (lower case, A-labels)."""


def _check_tag(tag: str) -> str:
    if (
        not tag
        or len(tag) > 200
        or any(c.isspace() or c == "," or not c.isprintable() for c in tag)
    ):
        raise ValueError(f'"{tag}": a tag is a non-empty word without spaces or commas')
    return tag


Tag = Annotated[str, AfterValidator(_check_tag)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TrustSettings(_Model):
    """Which certificate authorities count as trusted.

    Attributes:
        public: Trust Mozilla's public roots (as shipped by certifi).
        system: Also trust the operating system's CA bundle.
        ca_files: PEM files of extra trust anchors (an internal CA), relative to the
            configuration file.
    """

    public: bool = True
    system: bool = False
    ca_files: tuple[FilePath, ...] = ()

    @model_validator(mode="after")
    def _some_anchor(self) -> TrustSettings:
        if not (self.public or self.system or self.ca_files):
            raise ValueError("trusts nothing: keep public or system, or name ca_files")
        return self


class ScanSettings(_Model):
    """How and how often the daemon scans.

    Attributes:
        interval_s: Seconds between two scans of a target (``interval`` in the file).
        jitter_s: Up to this many seconds are added at random to each wait, so that many
            daemons do not scan in step (``jitter``).
        timeout_s: Connect, STARTTLS and handshake time-out of one probe (``timeout``;
            5 s, as the command line's ``--handshake-timeout``).
        deadline_s: Most time one endpoint may take from its first connection,
            retries included (``deadline``; the command line's ``--deadline``).
        retry_timeouts: Retry an endpoint that timed out, not only one that was reset
            (the command line's ``--retry-timeouts``).
        concurrency: Probes running at the same time.
        per_ip_concurrency: Connections open at once to one address (``per_ip``; the
            command line's ``--per-ip``), held across all workers of a distributed scan.
        shutdown_grace_s: On SIGTERM, how long in-flight probes may take to finish
            (``shutdown_grace``).
        allow_large_cidr: Accept CIDR blocks larger than /16 (IPv4) or /112 (IPv6); off,
            so that a typo (``/8`` for ``/24``) does not start a scan of millions.
    """

    interval_s: DurationS = Field(default=3600.0, alias="interval", ge=MIN_INTERVAL_S)
    jitter_s: DelayS = Field(default=60.0, alias="jitter")
    timeout_s: DurationS = Field(default=5.0, alias="timeout")
    deadline_s: DurationS = Field(default=30.0, alias="deadline")
    retry_timeouts: bool = False
    concurrency: int = Field(default=32, ge=1, le=4096)
    per_ip_concurrency: int = Field(default=8, alias="per_ip", ge=1, le=256)
    shutdown_grace_s: DurationS = Field(default=30.0, alias="shutdown_grace")
    allow_large_cidr: bool = False


class Route(_Model):
    """Where alerts go: one apprise URL with the alerts it wants.

    Attributes:
        url: An apprise URL (``mailtos://…``, ``slack://…``, ``json://host/path``).
        name: A label for logs; defaults to the URL's scheme.
        min_severity: Alerts below this severity are not sent here.
        tags: Only alerts for targets carrying at least one of these tags; empty means
            every target.
    """

    url: Text
    name: Text | None = None
    min_severity: Severity = Severity.WARNING
    tags: tuple[Tag, ...] = ()

    @field_validator("url")
    @classmethod
    def _url_has_scheme(cls, url: str) -> str:
        scheme, sep, rest = url.partition("://")
        if not sep or not scheme or not rest:
            raise ValueError(f'"{url}" is not an apprise URL (scheme://…)')
        return url


class AlertSettings(_Model):
    """When to alert and where to send alerts.

    Attributes:
        thresholds: Default thresholds for every target (days, or share of lifetime).
        routes: Delivery routes; an alert goes to every route that wants it.
    """

    thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS
    routes: tuple[Route, ...] = ()


class LogFormat(StrEnum):
    """How log records are written."""

    TEXT = "text"
    JSON = "json"


class LogLevel(StrEnum):
    """The least severe log record written."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogSettings(_Model):
    """Where and how the daemon logs.

    Attributes:
        format: ``text`` (one line per record) or ``json`` (one JSON object per line).
        level: The least severe record written.
        file: A file to append to; ``None`` writes to stderr (the journal under systemd).
    """

    format: LogFormat = LogFormat.TEXT
    level: LogLevel = LogLevel.INFO
    file: FilePath | None = None


class EndpointSettings(_Model):
    """Settings a target or a target source may set for the endpoints it yields.

    Attributes:
        port: One port (``port``); exclusive with ``ports``.
        ports: Several ports, each a separate endpoint.
        sni: The server name to send and to match the certificate against.
        starttls: The in-band upgrade protocol; the port then defaults to its usual one.
        tags: Labels used by alert routes and queries.
        interval_s: Scan this endpoint this often instead of the global interval.
        timeout_s: Probe time-out instead of the global one.
        thresholds: Alert thresholds instead of the global ones.
        trust: Trust store instead of the global one.
        checks: Check schedules that differ from the global ``checks:``.
    """

    port: Port | None = None
    ports: tuple[Port, ...] | None = None
    sni: ServerName | None = None
    starttls: StartTLS | None = None
    tags: tuple[Tag, ...] = ()
    interval_s: DurationS | None = Field(default=None, alias="interval", ge=MIN_INTERVAL_S)
    timeout_s: DurationS | None = Field(default=None, alias="timeout")
    thresholds: tuple[Threshold, ...] | None = None
    trust: TrustSettings | None = None
    checks: ChecksOverride | None = None

    @model_validator(mode="after")
    def _one_port_form(self) -> EndpointSettings:
        if self.port is not None and self.ports is not None:
            raise ValueError("give either port or ports, not both")
        if self.ports is not None and not self.ports:
            raise ValueError("ports must not be empty")
        return self

    @property
    def port_list(self) -> tuple[int, ...]:
        """The ports to scan: ``ports``, else ``port``, else 443 or the STARTTLS port."""
        if self.ports is not None:
            return self.ports
        if self.port is not None:
            return (self.port,)
        if self.starttls is not None:
            return (STARTTLS_DEFAULT_PORTS[self.starttls],)
        return (443,)


class TargetEntry(EndpointSettings):
    """One entry of ``targets``: a host name, an IP address or a CIDR block.

    Attributes:
        host: A DNS name, an IP address, or a CIDR block (every usable address in it).
    """

    host: str

    @model_validator(mode="after")
    def _host_is_usable(self) -> TargetEntry:
        try:
            parsed = parse_spec(SpecText(text=self.host), allow_large=True)
        except TargetError as exc:
            raise ValueError(f'"{self.host}": {exc.reason}') from None
        if parsed.ports and (self.port is not None or self.ports is not None):
            raise ValueError("the host names its ports; drop port/ports or the :port suffix")
        return self


class SourceKind(StrEnum):
    """The kinds of files that targets may come from."""

    ZONE_FILE = "zone_file"
    OCTODNS_CSV = "octodns_csv"
    TARGET_FILE = "target_file"


class WildcardPolicy(StrEnum):
    """What a DNS source does with a wildcard owner such as ``*.apps.example.org``.

    ``probe`` scans a concrete name under it (``wildcard-probe.apps.example.org``, which
    the wildcard record answers for, so its certificate must cover it); ``skip`` drops it.
    """

    PROBE = "probe"
    SKIP = "skip"


class SourceEntry(EndpointSettings):
    """One entry of ``sources``: a file whose names become targets.

    Attributes:
        type: ``zone_file`` (BIND master file), ``octodns_csv`` (an OctoDNS CSV
            export) or ``target_file`` (one ``host[:port]`` per line).
        path: The file, relative to the configuration file.
        origin: The zone's origin for a zone file without ``$ORIGIN`` (default: from
            the file).
        include: Glob patterns (``*.example.org``); a name is kept when it matches one
            (all names when empty).
        exclude: Glob patterns; a name matching one is dropped (exclude wins).
        wildcards: What to do with wildcard owners.
        wildcard_label: The label put in place of ``*`` when ``wildcards`` is ``probe``.
    """

    type: SourceKind
    path: FilePath
    origin: Text | None = None
    include: tuple[Text, ...] = ()
    exclude: tuple[Text, ...] = ()
    wildcards: WildcardPolicy = WildcardPolicy.PROBE
    wildcard_label: str = "wildcard-probe"

    @model_validator(mode="after")
    def _fields_fit_type(self) -> SourceEntry:
        if self.origin is not None and self.type is not SourceKind.ZONE_FILE:
            raise ValueError("origin applies to zone_file sources only")
        label = self.wildcard_label
        if "." in label or "*" in label or not _is_label(label):
            raise ValueError("wildcard_label must be one DNS label, without dots or '*'")
        return self


def _is_label(text: str) -> bool:
    try:
        normalise_hostname(text + ".invalid")
    except ValueError:
        return False
    return True


class DistributedSettings(_Model):
    """Scans spread over Celery workers (``certvigil worker``, ``run --distributed``).

    Attributes:
        broker_url: The Celery broker (``redis://host:6379/0`` or ``amqp://…``).
        queue: The broker queue the shards go to.
        shard_size: Most endpoints in one task.
        max_attempts: Deliveries of one shard before its remaining endpoints are
            recorded as failed (a worker that keeps dying).
        poison_after: Times scanning one endpoint may end a worker process before that
            endpoint is set aside and reported.
        visibility_timeout_s: How long a shard taken by a worker that vanished waits
            before the broker hands it to another (Redis); longer than a shard takes.
        per_subnet: Keep each /24 (IPv4) or /64 (IPv6) network on one worker at a time,
            not just each address.
        store_wait_s: How long a worker that cannot write to the store keeps its shard
            and retries before handing the shard back to the broker (at most half the
            visibility time-out, so the broker never hands out a shard still held).
    """

    broker_url: Text
    queue: Text = "certvigil"
    shard_size: int = Field(default=500, ge=1, le=10_000)
    max_attempts: int = Field(default=5, ge=1, le=100)
    poison_after: int = Field(default=2, ge=1, le=100)
    visibility_timeout_s: DurationS = Field(default=3600.0, alias="visibility_timeout", ge=1)
    per_subnet: bool = False
    store_wait_s: DurationS = Field(default=300.0, alias="store_wait", ge=0, le=86_400)


class ServerLink(_Model):
    """Where an agent reports (the ``server:`` section of ``certvigil agent``'s file).

    Attributes:
        url: The server's base URL (``https://certvigil.example:8750``); a URL ending in
            ``/api/sslscout/report`` (SSL Scout's ``api_endpoint``) names the same server;
            ``certvigil agent`` needs it, other commands ignore the section.
        key: The agent's API key (scope ``agent``); exclusive with ``key_file``.
        key_file: A file holding the key, relative to the configuration file.
        name: The agent's name on the server; the host name when unset.
        tags: Targets the server assigns to these tags are scanned by this agent.
        outbox: The SQLite file keeping reports until the server has them; next to the
            configuration file (``<name>.outbox.db``) when unset.
        outbox_max_mb: Most disk the outbox may use; past it the oldest reports are
            dropped with a warning.
        batch_size: Observations sent in one request.
        ca_file: PEM bundle to verify the server's own TLS certificate with.
    """

    url: Text | None = None
    key: Text | None = None
    key_file: FilePath | None = None
    name: Text | None = None
    tags: tuple[Tag, ...] = ()
    outbox: FilePath | None = None
    outbox_max_mb: float = Field(default=100.0, gt=0, le=1_000_000)
    batch_size: int = Field(default=100, ge=1, le=1000)
    ca_file: FilePath | None = None

    @model_validator(mode="after")
    def _one_key(self) -> ServerLink:
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f'url "{self.url}": give an http:// or https:// URL')
        if self.key is not None and self.key_file is not None:
            raise ValueError("give either key or key_file, not both")
        return self


class Assignment(_Model):
    """Targets the server hands to agents, by the agent's name or one of its tags.

    Attributes:
        agent: The agent's name; exclusive with ``tag``.
        tag: Every agent announcing this tag.
        targets: The endpoints it scans, as in ``targets``.
    """

    agent: Text | None = None
    tag: Tag | None = None
    targets: tuple[TargetEntry, ...] = ()

    @model_validator(mode="after")
    def _one_selector(self) -> Assignment:
        if (self.agent is None) == (self.tag is None):
            raise ValueError("give exactly one of agent or tag")
        return self


class ServeSettings(_Model):
    """The central server's settings (the ``serve:`` section of ``certvigil serve``'s file).

    Attributes:
        scan_allow: What ``POST /api/v1/scans`` may probe, and where fetches made on
            behalf of a request (AIA, OCSP, CRL) may go: CIDR blocks and host name
            patterns (``*.internal.example``). Empty: no scan on request at all.
        scan_allow_dns: ``check``: a name matching a pattern is resolved once and only
            its addresses inside the CIDR blocks are used (none: refused); ``trust``:
            its addresses are used as DNS gives them (``server/allowlist.py``).
        assignments: Targets handed to agents.
        agent_silence_intervals: An agent silent for more than this many of its own
            scan intervals raises an alert.
        trusted_proxies: CIDR blocks of the reverse proxies in front of the server:
            only from them are ``X-Forwarded-For`` (the dashboard's log-in throttle
            counts the client it names) and ``X-Forwarded-Proto`` believed.
        kept_certificates: Certificates whose facts and chain verdicts each server
            process keeps in memory (2 to 3 KiB each), so that an endpoint reported
            again with a certificate seen before is neither parsed nor verified again.
            Set it above the distinct certificates the agents report; beyond it the
            oldest are let go and parsed again when next reported.
    """

    scan_allow: tuple[Text, ...] = ()
    scan_allow_dns: Literal["check", "trust"] = "check"
    assignments: tuple[Assignment, ...] = ()
    agent_silence_intervals: int = Field(default=3, ge=1, le=1000)
    trusted_proxies: tuple[Text, ...] = Field(default=(), max_length=256)
    kept_certificates: int = Field(default=100_000, ge=1, le=10_000_000)

    @field_validator("trusted_proxies")
    @classmethod
    def _cidr_blocks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r}: give a CIDR block or an IP address") from None
        return value


MAX_RETENTION_DAYS = 36500
"""The longest retention a configuration may give (a hundred years)."""


class Config(_Model):
    """A whole certvigil configuration.

    Attributes:
        database_url: The inventory: a SQLAlchemy URL (``sqlite:////var/lib/…/x.db``,
            ``postgresql+psycopg://…``) or a SQLite file path (relative to the
            configuration file); ``None`` uses ``CERTVIGIL_DATABASE_URL`` or the default
            SQLite file.
        scan: Scan schedule and limits.
        trust: Default trust store.
        alerts: Thresholds and delivery routes.
        checks: Which checks the daemon runs and how often (``config.checks``).
        logging: Log format, level and destination.
        retention_days: Observations older than this many days are deleted; ``None``
            keeps them for ever.
        targets: Endpoints named in the file.
        sources: Files (zone files, CSV exports, target lists) that name more endpoints.
        distributed: The broker and shard settings of distributed scans (``None``: one
            machine).
        ct: The Certificate Transparency watch (``certvigil ct watch``); ``None``: off.
        server: Where ``certvigil agent`` reports; ``None`` outside agents.
        serve: The central server's settings (``certvigil serve``).
    """

    database_url: Text | None = None
    scan: ScanSettings = ScanSettings()
    trust: TrustSettings = TrustSettings()
    alerts: AlertSettings = AlertSettings()
    checks: ChecksSettings = ChecksSettings()
    logging: LogSettings = LogSettings()
    retention_days: int | None = Field(default=400, ge=1, le=MAX_RETENTION_DAYS)
    targets: tuple[TargetEntry, ...] = ()
    sources: tuple[SourceEntry, ...] = ()
    distributed: DistributedSettings | None = None
    ct: CtSettings | None = None
    server: ServerLink | None = None
    serve: ServeSettings = ServeSettings()


FOREIGN_KEYS: dict[str, str] = {
    "websocket_alerts": "certvigil's server streams alerts to WebSocket clients on its own",
}
"""Keys of SSL Scout configurations that are accepted and ignored, with the reason."""

SEED_RENAMES: dict[str, tuple[str, str]] = {
    "scan_interval": ("scan", "interval"),
    "timeout": ("scan", "timeout"),
    "alert_days_before_expiry": ("alerts", "thresholds"),
    "log_file": ("logging", "file"),
    "api_key": ("server", "key"),
    "api_endpoint": ("server", "url"),
}
"""SSL Scout top-level keys and where certvigil keeps the same setting."""

ConfigFormat = Literal["yaml", "toml", "json"]
