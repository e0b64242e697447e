"""``certvigil demo``: start loopback endpoints with typical faults and scan them.

The demo builds a throwaway PKI, serves one endpoint per kind of trouble on 127.0.0.1,
scans them with Mozilla's roots plus the demo root, and prints the same table (or
JSON/CSV) a real scan prints. It then checks that every endpoint was judged as
expected: exit code 0 when it was (the findings are the point of the demo, not a
failure), 3 when some endpoint was not judged as the demo expects.
"""

from __future__ import annotations

from typing import Annotated, TextIO

import typer

from certvigil import __version__
from certvigil.analysis.model import EndpointReport, Severity
from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import OUTPUT_PANEL, DebugOption, ProgressOption
from certvigil.cli.scan_cmd import (
    build_trust,
    choose_format,
    open_output,
    run_scan,
    stderr_console,
)
from certvigil.demo.endpoints import DemoEndpoint, running_demo_lab
from certvigil.output.sink import OutputFormat, ReportSink
from certvigil.scan.options import ScanOptions


class _RecordingSink(ReportSink):
    """A sink that also keeps each report's target, failure and finding codes."""

    def __init__(self, output_format: OutputFormat, stream: TextIO) -> None:
        super().__init__(output_format, stream, command="demo", version=__version__)
        self.seen: dict[str, EndpointReport] = {}

    def write(self, report: EndpointReport, *, order: int = 0) -> None:
        """Record, then write as usual."""
        self.seen[str(report.target)] = report
        super().write(report, order=order)


def judgement_problem(endpoint: DemoEndpoint, report: EndpointReport | None) -> str | None:
    """Why ``report`` is not what the demo expects for ``endpoint``; ``None`` when it is.

    Args:
        endpoint: The demo endpoint and its expectation.
        report: The scan's report on it, ``None`` when none arrived.

    Returns:
        A phrase naming the difference, or ``None``.
    """
    if report is None:
        return "no report"
    if endpoint.expect_failure:
        return None if report.is_failed else "expected the probe to fail"
    if report.failure is not None:
        return f"probe failed: {report.failure.kind.value}: {report.failure.detail}"
    codes = {finding.code for finding in report.findings}
    missing = [code for code in endpoint.expected_codes if code not in codes]
    if missing:
        return f"expected {', '.join(missing)}; found {', '.join(sorted(codes)) or 'nothing'}"
    if not endpoint.expected_codes and report.verdict.rank > Severity.INFO.rank:
        return f"expected no problem; found {', '.join(sorted(codes))}"
    return None


DEMO_EXAMPLES = """[bold]Examples[/bold]
certvigil demo
certvigil demo --json"""


@app.command("demo", epilog=DEMO_EXAMPLES)
def demo_command(
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Write one JSON document.", rich_help_panel=OUTPUT_PANEL),
    ] = False,
    as_csv: Annotated[
        bool,
        typer.Option(
            "--csv", help="Write CSV, one row per endpoint.", rich_help_panel=OUTPUT_PANEL
        ),
    ] = False,
    progress: ProgressOption = None,
    debug: DebugOption = False,
) -> None:
    """Serve typical certificate faults on 127.0.0.1 and scan them (nothing else is touched)."""
    del debug  # read from argv by certvigil.cli.app.main
    output_format = choose_format(as_json=as_json, as_csv=as_csv)
    console = stderr_console()
    with running_demo_lab() as lab:
        console.print(
            f"certvigil demo: {len(lab.endpoints)} endpoints on 127.0.0.1, each with its own "
            "kind of trouble; trusting Mozilla's roots plus the demo root.",
            markup=False,
        )
        for endpoint in lab.endpoints:
            console.print(f"  {endpoint.label:<22} {endpoint.description}", markup=False)
        trust = build_trust([lab.ca_file], system_trust=False, default_ca=True)
        options = ScanOptions(connect_timeout_s=3.0, handshake_timeout_s=5.0, retries=0)
        with open_output(None) as stream:
            sink = _RecordingSink(output_format, stream)
            run_scan(
                lab.targets,
                options=options,
                trust=trust,
                sink=sink,
                console=console,
                show_progress=progress if progress is not None else console.is_terminal,
            )
    problems = [
        (endpoint, problem)
        for endpoint in lab.endpoints
        if (problem := judgement_problem(endpoint, sink.seen.get(str(endpoint.target))))
    ]
    for endpoint, problem in problems:
        console.print(f"demo: {endpoint.label} ({endpoint.target}): {problem}", markup=False)
    if problems:
        raise typer.Exit(int(ExitCode.UNKNOWN))
    console.print("demo: every endpoint was judged as expected.", markup=False)
    raise typer.Exit(int(ExitCode.OK))
