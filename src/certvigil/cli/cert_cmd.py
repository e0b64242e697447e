"""``certvigil cert``: judge certificate files offline with the analysis a scan uses.

Each file is read as a chain, leaf first (PEM bundle, DER, or PKCS#7); ``--each``
judges every certificate in it on its own instead (a bundle of unrelated
certificates). A file that cannot be read is reported on stderr, the others are still
judged, and the exit code is 3 unless something critical was found (64 when no file
could be read at all). Nothing touches the network: missing intermediates are not
fetched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from certvigil import __version__
from certvigil.analysis.policy import AnalysisPolicy
from certvigil.analysis.report import analyse_chain_der
from certvigil.analysis.thresholds import thresholds_from_days
from certvigil.cli.app import app
from certvigil.cli.options import (
    CHECKS_PANEL,
    OUTPUT_PANEL,
    CaFilesOption,
    DebugOption,
    DefaultCaOption,
    OutputOption,
    SystemTrustOption,
    ThresholdsOption,
)
from certvigil.cli.scan_cmd import (
    build_trust,
    choose_format,
    open_output,
    stderr_console,
)
from certvigil.errors import CertificateLoadError, TargetError, UsageError
from certvigil.files.certificates import load_certificate_file
from certvigil.output.files import (
    FileReport,
    render_files_table,
    write_files_csv,
    write_files_json,
)
from certvigil.output.safe_text import visible
from certvigil.output.sink import OutputFormat
from certvigil.output.summary import Tally
from certvigil.scan.options import utc_now

CERT_EXAMPLES = """[bold]Examples[/bold]
certvigil cert fullchain.pem --host www.example.com
certvigil cert server.der intermediate.pem --json
certvigil cert ca-bundle.pem --each --csv -o bundle.csv"""


@app.command("cert", epilog=CERT_EXAMPLES)
def cert_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE...", help="PEM/DER/PKCS#7 files: a chain, leaf first, or a bundle."
        ),
    ],
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            metavar="NAME",
            help="Check that the leaf covers NAME.",
            rich_help_panel=CHECKS_PANEL,
        ),
    ] = None,
    each: Annotated[
        bool,
        typer.Option(
            "--each",
            help="Judge every certificate in a file on its own.",
            rich_help_panel=CHECKS_PANEL,
        ),
    ] = False,
    ca_files: CaFilesOption = None,
    system_trust: SystemTrustOption = False,
    default_ca: DefaultCaOption = True,
    thresholds: ThresholdsOption = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Write one JSON document.", rich_help_panel=OUTPUT_PANEL),
    ] = False,
    as_csv: Annotated[
        bool,
        typer.Option("--csv", help="Write CSV, one row per file.", rich_help_panel=OUTPUT_PANEL),
    ] = False,
    output: OutputOption = None,
    debug: DebugOption = False,
) -> None:
    """Judge certificate files offline: expiry, chain, trust, hostname, key and signature."""
    # --debug is also read from argv by certvigil.cli.app.main (tracebacks); here it
    # adds the parsing library's text to a file's one-line error.
    output_format = choose_format(as_json=as_json, as_csv=as_csv)
    try:
        policy = (
            AnalysisPolicy(expiry_thresholds=thresholds_from_days(thresholds))
            if thresholds
            else AnalysisPolicy()
        )
    except ValueError as exc:
        raise UsageError(f"--threshold: {exc}") from exc
    trust = build_trust(ca_files or (), system_trust=system_trust, default_ca=default_ca)
    console = stderr_console()
    started = now = utc_now()
    tally = Tally()
    reports: list[FileReport] = []
    for position, path in enumerate(files, start=1):
        try:
            chain = load_certificate_file(path)
        except CertificateLoadError as exc:
            error = TargetError(str(path), exc.reason, position=position)
            console.print(f"error: {visible(str(error))}", markup=False, highlight=False)
            if debug and exc.detail:
                console.print(f"  detail: {visible(exc.detail)}", markup=False, highlight=False)
            tally.add_target_error(error)
            continue
        chains: list[tuple[str, tuple[bytes, ...]]] = [(str(path), chain)]
        if each:
            chains = [(f"{path}#{i}", (der,)) for i, der in enumerate(chain, start=1)]
        for source, ders in chains:
            analysis = analyse_chain_der(
                ders, now=now, trust=trust, policy=policy, expected_name=host
            )
            reports.append(FileReport(source=source, analysis=analysis))
            tally.add_verdict(analysis.verdict)
    with open_output(output) as stream:
        if output_format is OutputFormat.JSON:
            write_files_json(
                reports,
                stream,
                tally=tally,
                version=__version__,
                started_at_utc=started,
                finished_at_utc=utc_now(),
            )
        elif output_format is OutputFormat.CSV:
            write_files_csv(reports, stream)
        elif reports:
            render_files_table(reports, stream)
    noun = "certificate" if each else "file"
    console.print(tally.describe().replace("endpoint", noun, 1))
    raise typer.Exit(int(tally.exit_code))
