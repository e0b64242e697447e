"""``certvigil scan``: probe endpoints and judge what they serve; results on stdout.

Results (table, ``--json`` or ``--csv``) go to stdout or ``--output``; progress,
malformed-target errors and the one-line summary go to stderr. The exit code comes
from the results (see ``certvigil.output.summary.Tally.exit_code``):

* 0 nothing to act on, 1 warnings, 2 critical findings;
* 3 some endpoints could not be checked: a probe failed, or a target was malformed
  (it is reported on stderr and in the JSON ``target_errors``; the others are still
  scanned), unless something critical was found;
* 64 a usage error: bad options, an unreadable target or CA file, or no usable
  target at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from certvigil import __version__
from certvigil.analysis.policy import AnalysisPolicy
from certvigil.analysis.trust import TrustStore
from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import (
    CHECKS_PANEL,
    CONNECTION_PANEL,
    OUTPUT_PANEL,
    TARGETS_PANEL,
    CaFilesOption,
    ConnectTimeoutOption,
    DebugOption,
    DefaultCaOption,
    HandshakeTimeoutOption,
    OutputOption,
    ProgressOption,
    SystemTrustOption,
    ThresholdsOption,
)
from certvigil.errors import CertvigilError, TargetError, UsageError
from certvigil.output.safe_text import visible
from certvigil.output.sink import OutputFormat, ReportSink
from certvigil.probe.revocation_options import RevocationOptions
from certvigil.scan import ScanOptions, ScanProgress, utc_now
from certvigil.scan_checks import ALL_CHECKS, ScanChecks, parse_checks
from certvigil.scan_workers import choose_workers, scan_stream_workers
from certvigil.target import StartTLS, Target
from certvigil.targets import (
    ExpansionOptions,
    TargetSpec,
    iter_argument_specs,
    iter_file_specs,
    iter_targets,
    normalise_hostname,
    open_target_file,
    parse_port_list,
)
from certvigil.truststore import load_trust_store

_STDIN = "-"


def stderr_console() -> Console:
    """The console for progress, errors and summaries (never stdout)."""
    # soft_wrap: an error line stays one line, whatever the terminal width.
    return Console(stderr=True, highlight=False, soft_wrap=True)


def choose_format(*, as_json: bool, as_csv: bool) -> OutputFormat:
    """The output format the flags ask for.

    Raises:
        UsageError: Both ``--json`` and ``--csv`` were given.
    """
    if as_json and as_csv:
        raise UsageError("--json and --csv: choose one output format")
    if as_json:
        return OutputFormat.JSON
    return OutputFormat.CSV if as_csv else OutputFormat.TABLE


def build_trust(ca_files: Iterable[Path], *, system_trust: bool, default_ca: bool) -> TrustStore:
    """Load the trust store once for the whole run (``ConfigError`` on a bad CA file)."""
    return load_trust_store(
        ca_files=tuple(ca_files), use_system=system_trust, include_default=default_ca
    )


@contextlib.contextmanager
def open_output(path: Path | None) -> Iterator[TextIO]:
    """stdout, or ``path`` opened for writing (late: only once the run can start).

    A write that fails (a full disk) becomes a one-line error; a closed pipe
    (``| head``) is left to end the process quietly.

    Raises:
        UsageError: The file cannot be opened for writing.
        CertvigilError: Writing the results failed.
    """
    name = "stdout" if path is None else str(path)
    try:
        if path is None:
            yield sys.stdout
            return
        try:
            stream = path.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise UsageError(f"{path}: cannot write output: {exc.strerror or exc}") from exc
        with stream:
            yield stream
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise
        raise CertvigilError(f"{name}: cannot write results: {exc.strerror or exc}") from exc


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the final flush of a closed pipe raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout has no descriptor of its own (captured output)
    finally:
        os.close(devnull)


@dataclass(slots=True)
class _Ordering:
    """Remembers where each target stood in the input, for the table only."""

    positions: dict[Target, int]

    def track(self, targets: Iterable[Target]) -> Iterator[Target]:
        for target in targets:
            self.positions.setdefault(target, len(self.positions))
            yield target


class _ScanProgressBar:
    """A rich progress bar on stderr: endpoints done out of targets read so far."""

    def __init__(self, console: Console, *, enabled: bool) -> None:
        self._enabled = enabled
        self._read = 0
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]scanning[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} not checked"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not enabled,
        )
        self._task = self._progress.add_task("scan", total=None, failed=0)

    def __enter__(self) -> _ScanProgressBar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.__exit__(None, None, None)

    def count_read(self, targets: Iterable[Target]) -> Iterator[Target]:
        """Pass targets through, growing the bar's total as they are read."""
        for target in targets:
            self._read += 1
            if self._enabled:
                self._progress.update(self._task, total=self._read)
            yield target

    def on_progress(self, progress: ScanProgress) -> None:
        """Advance the bar (called by the scanner after each endpoint)."""
        if self._enabled:
            self._progress.update(self._task, completed=progress.completed, failed=progress.failed)


def run_scan(
    targets: Iterable[Target],
    *,
    options: ScanOptions,
    trust: TrustStore,
    sink: ReportSink,
    console: Console,
    show_progress: bool,
    workers: int | None = 1,
) -> ExitCode:
    """Scan ``targets`` into ``sink``, with progress and a summary on ``console``.

    Args:
        targets: The endpoints (consumed lazily; malformed ones were already routed
            to ``sink.tally`` by the generator that makes them).
        options: Scan options.
        trust: The anchors.
        sink: Where reports go.
        console: The stderr console.
        show_progress: Draw the progress bar.
        workers: Scanner processes (1 scans in this process; ``None`` chooses by the
            number of targets, see ``scan_workers.choose_workers``).

    Returns:
        The exit code the results call for.
    """
    ordering = _Ordering(positions={}) if sink.format is OutputFormat.TABLE else None
    sink.begin(started_at_utc=utc_now())
    if workers is None:
        workers, targets = choose_workers(targets)
    with _ScanProgressBar(console, enabled=show_progress) as bar:
        stream = bar.count_read(targets)
        if ordering is not None:
            stream = ordering.track(stream)

        async def consume() -> None:
            async for report in scan_stream_workers(
                stream,
                options=options,
                trust=trust,
                workers=workers,
                on_progress=bar.on_progress,
            ):
                order = ordering.positions.get(report.target, 0) if ordering else 0
                sink.write(report, order=order)

        asyncio.run(consume())
    sink.finish(finished_at_utc=utc_now())
    console.print(sink.tally.describe())
    return sink.tally.exit_code


def report_target_error(console: Console, sink: ReportSink, error: TargetError) -> None:
    """Print a malformed target on stderr at once and count it."""
    console.print(f"error: {visible(str(error))}", markup=False, highlight=False)
    sink.tally.add_target_error(error)


def _specs(arguments: list[str], files: list[str], *, stdin: TextIO) -> Iterator[TargetSpec]:
    yield from iter_argument_specs(arguments)
    for name in files:
        stream = open_target_file(name, stdin=stdin)
        try:
            yield from iter_file_specs(stream, source=name)
        finally:
            if stream is not stdin:
                stream.close()


def _check_files_readable(files: list[str]) -> None:
    # Fail before scanning rather than half-way through: a wrong -f is a usage error.
    if files.count(_STDIN) > 1:
        raise UsageError("-f -: standard input can be read only once")
    for name in files:
        if name != _STDIN:
            open_target_file(name).close()


def _value_error(what: str, exc: ValueError) -> UsageError:
    return UsageError(f"{what}: {exc}")


SCAN_EXAMPLES = """[bold]Examples[/bold]
certvigil scan example.com www.example.org:8443
certvigil scan -f hosts.txt --json -o scan.json
certvigil scan 10.0.0.0/24 -p 443,8443 --threshold 21
certvigil scan mail.example.com:25 --starttls smtp --deep
certvigil scan internal.example --ca-file corp-root.pem --no-default-ca"""


@app.command("scan", epilog=SCAN_EXAMPLES)
def scan_command(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TARGET...",
            help="host, host:port, \\[v6addr]:port, IP, CIDR block (host:PORTS for a list).",
            show_default=False,
        ),
    ] = None,
    files: Annotated[
        list[str] | None,
        typer.Option(
            "-f",
            "--file",
            metavar="FILE",
            help="Read targets from FILE ('-' for stdin; '#' starts a comment). Repeatable.",
            show_default=False,
            rich_help_panel=TARGETS_PANEL,
        ),
    ] = None,
    ports: Annotated[
        str | None,
        typer.Option(
            "-p",
            "--ports",
            metavar="PORTS",
            help="Ports for targets without one, e.g. 443,8443,9000-9010 \\[default: 443].",
            show_default=False,
            rich_help_panel=TARGETS_PANEL,
        ),
    ] = None,
    sni: Annotated[
        str | None,
        typer.Option(
            "--sni",
            metavar="NAME",
            help="Send NAME as SNI and match certificates against it.",
            rich_help_panel=TARGETS_PANEL,
        ),
    ] = None,
    starttls: Annotated[
        StartTLS | None,
        typer.Option(
            "--starttls",
            metavar="PROTO",
            help="Upgrade with PROTO first: smtp, imap, pop3, ftp, ldap, xmpp or postgres "
            "\\[default: by port: 25/587 smtp, 143 imap, 110 pop3, 21 ftp, 389 ldap, "
            "5222 xmpp, 5432 postgres].",
            show_default=False,
            rich_help_panel=TARGETS_PANEL,
        ),
    ] = None,
    allow_large_cidr: Annotated[
        bool,
        typer.Option(
            "--allow-large-cidr",
            help="Accept blocks larger than /16 (IPv6: /112).",
            rich_help_panel=TARGETS_PANEL,
        ),
    ] = False,
    ca_files: CaFilesOption = None,
    system_trust: SystemTrustOption = False,
    default_ca: DefaultCaOption = True,
    thresholds: ThresholdsOption = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            metavar="N",
            min=1,
            help="Most connections open at once.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = 200,
    per_ip: Annotated[
        int,
        typer.Option(
            "--per-ip",
            metavar="N",
            min=1,
            help="Most connections open to one address.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = 8,
    per_subnet: Annotated[
        int | None,
        typer.Option(
            "--per-subnet",
            metavar="N",
            min=1,
            help="Most connections open to one IPv4 /24 or IPv6 /64 \\[default: no limit].",
            show_default=False,
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            metavar="N",
            min=1,
            help=(
                "Scanner processes \\[default: 1 below 2,000 targets, one per CPU from 2,000 on]."
            ),
            show_default=False,
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = None,
    connect_timeout: ConnectTimeoutOption = 5.0,
    handshake_timeout: HandshakeTimeoutOption = 10.0,
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            metavar="N",
            min=0,
            help="Retries after a time-out or reset.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = 1,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="Run every check: revocation, protocols, cipher suites, TLS options and "
            "an SSL Labs-style grade (same as --checks cert,revocation,protocols,ciphers,"
            "grade; docs/grading.md).",
            rich_help_panel=CHECKS_PANEL,
        ),
    ] = False,
    checks: Annotated[
        str | None,
        typer.Option(
            "--checks",
            metavar="LIST",
            help="Checks to run, comma-separated: cert (always), revocation, protocols, "
            "ciphers, grade (implies protocols, ciphers and revocation) \\[default: cert].",
            show_default=False,
            rich_help_panel=CHECKS_PANEL,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Write one JSON document (docs/json-schema.md).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    as_csv: Annotated[
        bool,
        typer.Option(
            "--csv", help="Write CSV, one row per endpoint.", rich_help_panel=OUTPUT_PANEL
        ),
    ] = False,
    output: OutputOption = None,
    progress: ProgressOption = None,
    debug: DebugOption = False,
) -> None:
    """Scan TLS endpoints and judge expiry, chain, trust, hostname, key and signature."""
    del debug  # read from argv by certvigil.cli.app.main
    arguments, file_names = list(targets or ()), list(files or ())
    if not arguments and not file_names:
        raise UsageError("no targets: give TARGET arguments or -f FILE")
    output_format = choose_format(as_json=as_json, as_csv=as_csv)
    try:
        default_ports = parse_port_list(ports) if ports is not None else (443,)
    except ValueError as exc:
        raise _value_error(f'-p "{ports}"', exc) from exc
    try:
        sni_name = normalise_hostname(sni) if sni is not None else None
    except ValueError as exc:
        raise _value_error(f'--sni "{sni}"', exc) from exc
    if connect_timeout <= 0 or handshake_timeout <= 0:
        raise UsageError("--connect-timeout and --handshake-timeout must be positive")
    try:
        selected = ALL_CHECKS if deep else parse_checks(checks) if checks else ScanChecks()
    except ValueError as exc:
        raise _value_error(f'--checks "{checks}"', exc) from exc
    try:
        policy = (
            AnalysisPolicy(thresholds_days=tuple(sorted(set(thresholds), reverse=True)))
            if thresholds
            else AnalysisPolicy()
        )
        options = ScanOptions(
            concurrency=concurrency,
            per_ip_concurrency=per_ip,
            per_subnet_concurrency=per_subnet,
            connect_timeout_s=connect_timeout,
            handshake_timeout_s=handshake_timeout,
            retries=retries,
            policy=policy,
            deep=selected.tls_config,
            revocation=selected.revocation,
            revocation_options=RevocationOptions(timeout_s=connect_timeout),
        )
    except ValueError as exc:
        raise UsageError(f"options: {exc}") from exc
    _check_files_readable(file_names)
    trust = build_trust(ca_files or (), system_trust=system_trust, default_ca=default_ca)
    expansion = ExpansionOptions(
        default_ports=default_ports,
        sni=sni_name,
        starttls=starttls,
        allow_large=allow_large_cidr,
    )
    console = stderr_console()
    show_progress = progress if progress is not None else console.is_terminal
    sink: ReportSink | None = None
    try:
        with open_output(output) as stream:
            sink = ReportSink(
                output_format,
                stream,
                command="scan",
                version=__version__,
                color=False if output is not None else None,
            )
            generated = iter_targets(
                _specs(arguments, file_names, stdin=sys.stdin),
                options=expansion,
                on_error=lambda error: report_target_error(console, sink, error),
            )
            code = run_scan(
                generated,
                options=options,
                trust=trust,
                sink=sink,
                console=console,
                show_progress=show_progress,
                workers=workers,
            )
    except BrokenPipeError:
        # The reader closed stdout (`| head -1`): stop scanning, write nothing more and
        # exit with the code of the results judged so far (docs/json-schema.md).
        silence_stdout()
        code = sink.tally.exit_code if sink is not None else ExitCode.OK
    raise typer.Exit(int(code))
