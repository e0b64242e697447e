"""``certvigil scan``: probe endpoints and judge what they serve; results on stdout.

Results (table, ``--json`` or ``--csv``) go to stdout or ``--output``; progress,
malformed-target errors and the one-line summary go to stderr. The exit code comes
from the results (see ``certvigil.output.summary.Tally.exit_code``):

* 0 nothing to act on, 1 warnings, 2 critical findings;
* 3 some endpoints could not be checked: a probe failed, or a target was malformed
  (it is reported on stderr and in the JSON ``target_errors``; the others are still
  scanned), unless something critical was found;
* 64 a usage error: bad options, an unreadable target or CA file, or no usable
  target at all;
* 130 (SIGINT, Ctrl-C) or 143 (SIGTERM): the scan was stopped. No further target is
  started, endpoints in flight get ``INTERRUPT_GRACE_S`` to finish and are then
  cancelled, every finished result is written and the document is closed (the JSON
  ``interrupted`` field says how many targets were not scanned), and a one-line
  summary goes to stderr. A second signal cuts the grace short.

``--output FILE`` is written to a temporary file in the same directory and renamed
over ``FILE`` at the end, so ``FILE`` is never left half written.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
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
from certvigil.analysis.thresholds import thresholds_from_days
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
    DeadlineOption,
    DebugOption,
    DefaultCaOption,
    HandshakeTimeoutOption,
    OutputOption,
    PerIpOption,
    PortsOption,
    ProgressOption,
    RetriesOption,
    RetryTimeoutsOption,
    SniOption,
    StartTlsOption,
    SystemTrustOption,
    ThresholdsOption,
)
from certvigil.errors import CertvigilError, TargetError, UsageError
from certvigil.files.truststore import load_trust_store
from certvigil.output.safe_text import visible
from certvigil.output.sink import OutputFormat, ReportSink
from certvigil.probe.revocation_options import RevocationOptions
from certvigil.scan.checks import ALL_CHECKS, ScanChecks, parse_checks
from certvigil.scan.options import ScanOptions, utc_now
from certvigil.scan.scanner import ScanProgress
from certvigil.scan.workers import choose_workers, scan_stream_workers
from certvigil.targets.parse import (
    ExpansionOptions,
    TargetSpec,
    iter_argument_specs,
    iter_file_specs,
    iter_targets,
    normalise_hostname,
    open_target_file,
    parse_port_list,
)
from certvigil.targets.target import Target

_STDIN = "-"

INTERRUPT_GRACE_S = 1.5
"""After SIGINT or SIGTERM, how long endpoints in flight may take before they are cancelled."""

_COUNT_REST_LIMIT = 1_000_000  # most unread targets counted after an interruption


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
    """stdout, or ``path`` written atomically (late: only once the run can start).

    A regular file (or a new one) is written to a temporary file beside it and renamed
    over it when the block ends without an exception, so a killed or failed run never
    leaves a half-written file in its place; the temporary file is removed on failure.
    Other paths (``/dev/stdout``, a named pipe) are written directly. A write that fails
    (a full disk) becomes a one-line error; a closed pipe (``| head``) is left to end
    the process quietly.

    Raises:
        UsageError: The file cannot be opened for writing.
        CertvigilError: Writing the results failed.
    """
    name = "stdout" if path is None else str(path)
    try:
        if path is None:
            yield sys.stdout
            return
        if not _is_replaceable(path):
            try:
                stream = path.open("w", encoding="utf-8", newline="")
            except OSError as exc:
                raise UsageError(f"{path}: cannot write output: {exc.strerror or exc}") from exc
            with stream:
                yield stream
            return
        with _atomic_file(path) as atomic:
            yield atomic
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise
        raise CertvigilError(f"{name}: cannot write results: {exc.strerror or exc}") from exc


def _is_replaceable(path: Path) -> bool:
    """Whether ``path`` is a regular file or does not exist (so it can be renamed over)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _atomic_file(path: Path) -> Iterator[TextIO]:
    """A temporary file beside ``path``, renamed to ``path`` when the block succeeds."""
    directory = path.parent
    try:
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=directory
        )
    except OSError as exc:
        raise UsageError(f"{path}: cannot write output: {exc.strerror or exc}") from exc
    try:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            umask = os.umask(0o022)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


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
class _Feed:
    """The targets as the scan reads them: numbered in input order, stopped on a signal.

    Attributes:
        source: The targets not yet read.
        positions: Input position of each target read and not yet reported.
        read: Targets read so far.
        stopped_by: The signal that stopped the reading, if any.
    """

    source: Iterator[Target]
    positions: dict[Target, int] = field(default_factory=dict)
    read: int = 0
    stopped_by: signal.Signals | None = None
    _next_position: int = 0

    def __iter__(self) -> Iterator[Target]:
        while self.stopped_by is None:
            target = next(self.source, None)
            if target is None:
                return
            if target not in self.positions:  # a repeated target keeps no place of its own
                self.positions[target] = self._next_position
                self._next_position += 1
            self.read += 1
            yield target

    def position(self, report_target: Target) -> int:
        """Where this target stood in the input (forgotten once asked)."""
        return self.positions.pop(report_target, 0)

    def count_rest(self, *, limit: int) -> tuple[int, bool]:
        """Count the targets never read, up to ``limit``; and whether that was all of them."""
        rest = sum(1 for _ in itertools.islice(self.source, limit))
        return rest, next(self.source, None) is None


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
    count_rest: bool = True,
) -> ExitCode:
    """Scan ``targets`` into ``sink``, with progress and a summary on ``console``.

    SIGINT and SIGTERM stop the scan (see the module docstring): what finished is
    written and the exit code is 130 or 143.

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
        count_rest: After an interruption, read the rest of the input to count the
            targets not scanned (not for standard input, which may never end).

    Returns:
        The exit code the results call for.
    """
    started_at_utc = utc_now()
    if workers is None:
        # Before anything is written: Ctrl-C while reading ahead leaves no partial output.
        workers, targets = choose_workers(targets)
    sink.begin(started_at_utc=started_at_utc)
    with _ScanProgressBar(console, enabled=show_progress) as bar:
        feed = _Feed(source=iter(bar.count_read(targets)))
        asyncio.run(
            _consume(feed, options=options, trust=trust, sink=sink, workers=workers, bar=bar)
        )
    if feed.stopped_by is not None:
        rest, complete = feed.count_rest(limit=_COUNT_REST_LIMIT) if count_rest else (0, False)
        sink.tally.interrupt(
            feed.stopped_by,
            not_scanned=feed.read - sink.tally.endpoints + rest,
            input_read_to_end=complete,
        )
    sink.finish(finished_at_utc=utc_now())
    console.print(sink.tally.describe(), markup=False)
    return sink.tally.exit_code


async def _consume(
    feed: _Feed,
    *,
    options: ScanOptions,
    trust: TrustStore,
    sink: ReportSink,
    workers: int,
    bar: _ScanProgressBar,
) -> None:
    """Scan what ``feed`` yields into ``sink`` until the end or a signal's grace runs out."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    grace = asyncio.timeout(None)

    def on_signal(signum: signal.Signals) -> None:
        if feed.stopped_by is not None:  # a second signal: stop waiting at once
            grace.reschedule(loop.time())
            return
        feed.stopped_by = signum
        stop.set()
        grace.reschedule(loop.time() + INTERRUPT_GRACE_S)

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in signals}
    handled: list[signal.Signals] = []
    try:
        async with grace:
            for signum in signals:
                try:
                    loop.add_signal_handler(signum, on_signal, signum)
                except (ValueError, RuntimeError):  # not the main thread: signals stay as they are
                    break
                handled.append(signum)
            async for report in scan_stream_workers(
                feed,
                options=options,
                trust=trust,
                workers=workers,
                on_progress=bar.on_progress,
                stop=stop,
            ):
                sink.write(report, order=feed.position(report.target))
    except TimeoutError:
        if feed.stopped_by is None:
            raise
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
            signal.signal(signum, previous[signum])


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # Outside the scan's own handler (start-up, writing the end): leave through the
    # normal unwinding, so the temporary output file is removed.
    raise SystemExit(int(ExitCode.TERMINATED))


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM unwinds the command (exit 143) rather than killing it, while in the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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


def policy_for(thresholds: list[int] | None) -> AnalysisPolicy:
    """The analysis policy of ``--threshold DAYS`` (repeatable), or the default one.

    Raises:
        ValueError: A threshold the policy refuses (the caller names the option).
    """
    if not thresholds:
        return AnalysisPolicy()
    return AnalysisPolicy(expiry_thresholds=thresholds_from_days(thresholds))


def _value_error(what: str, exc: ValueError) -> UsageError:
    return UsageError(f"{what}: {exc}")


SCAN_EXAMPLES = """[bold]Examples[/bold]
certvigil scan example.com www.example.org:8443
certvigil scan -f hosts.txt --json -o scan.json
certvigil scan 10.0.0.0/24 -p 443,8443 --threshold 21
certvigil scan mail.example.com:25 --starttls smtp --deep
certvigil scan example.com --deep --json --include-observation
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
    ports: PortsOption = None,
    sni: SniOption = None,
    starttls: StartTlsOption = None,
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
    per_ip: PerIpOption = 8,
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
    handshake_timeout: HandshakeTimeoutOption = 5.0,
    deadline: DeadlineOption = 30.0,
    retries: RetriesOption = 1,
    retry_timeouts: RetryTimeoutsOption = False,
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
    include_observation: Annotated[
        bool,
        typer.Option(
            "--include-observation",
            help="With --json: add everything the probes saw for each endpoint (an "
            "observation document, see docs/json-schema.md) and each CRL once.",
            rich_help_panel=OUTPUT_PANEL,
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
    if include_observation and output_format is not OutputFormat.JSON:
        raise UsageError("--include-observation needs --json")
    try:
        default_ports = parse_port_list(ports) if ports is not None else (443,)
    except ValueError as exc:
        raise _value_error(f'-p "{ports}"', exc) from exc
    try:
        sni_name = normalise_hostname(sni) if sni is not None else None
    except ValueError as exc:
        raise _value_error(f'--sni "{sni}"', exc) from exc
    if connect_timeout <= 0 or handshake_timeout <= 0 or deadline <= 0:
        raise UsageError("--connect-timeout, --handshake-timeout and --deadline must be positive")
    try:
        selected = ALL_CHECKS if deep else parse_checks(checks) if checks else ScanChecks()
    except ValueError as exc:
        raise _value_error(f'--checks "{checks}"', exc) from exc
    try:
        policy = policy_for(thresholds)
        options = ScanOptions(
            concurrency=concurrency,
            per_ip_concurrency=per_ip,
            per_subnet_concurrency=per_subnet,
            connect_timeout_s=connect_timeout,
            handshake_timeout_s=handshake_timeout,
            starttls_timeout_s=handshake_timeout,
            deadline_s=deadline,
            retries=retries,
            retry_timeouts=retry_timeouts,
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
    with _sigterm_exits():
        code = _scan_into(
            output,
            output_format=output_format,
            arguments=arguments,
            file_names=file_names,
            expansion=expansion,
            console=console,
            options=options,
            trust=trust,
            show_progress=show_progress,
            workers=workers,
            include_observation=include_observation,
        )
    raise typer.Exit(int(code))


def _scan_into(
    output: Path | None,
    *,
    output_format: OutputFormat,
    arguments: list[str],
    file_names: list[str],
    expansion: ExpansionOptions,
    console: Console,
    options: ScanOptions,
    trust: TrustStore,
    show_progress: bool,
    workers: int | None,
    include_observation: bool = False,
) -> ExitCode:
    """Scan into ``output`` (stdout when ``None``); the exit code."""
    sink: ReportSink | None = None
    try:
        with open_output(output) as stream:
            sink = ReportSink(
                output_format,
                stream,
                command="scan",
                version=__version__,
                color=False if output is not None else None,
                include_observation=include_observation,
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
                count_rest=_STDIN not in file_names,
            )
    except BrokenPipeError:
        # The reader closed stdout (`| head -1`): stop scanning, write nothing more and
        # exit with the code of the results judged so far (docs/json-schema.md).
        silence_stdout()
        code = sink.tally.exit_code if sink is not None else ExitCode.OK
    return code
