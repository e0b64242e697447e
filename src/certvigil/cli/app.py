"""The typer application and the process entry point."""

from __future__ import annotations

import sys

import typer

from certvigil.cli.exitcodes import ExitCode
from certvigil.errors import CertvigilError, UsageError

app = typer.Typer(
    name="certvigil",
    help="Keep TLS certificates from surprising you: scan endpoints, judge what they serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    # Imported for their side effect of adding commands to ``app``.
    from certvigil.cli import commands  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Run the command line and exit with a documented exit code."""
    import click

    _register_commands()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.stderr.write("error: aborted\n")
        sys.exit(130)
    except click.UsageError as exc:
        sys.stderr.write(f"error: {exc.format_message()}\n")
        sys.exit(ExitCode.USAGE)
    except click.ClickException as exc:
        sys.stderr.write(f"error: {exc.format_message()}\n")
        sys.exit(ExitCode.USAGE)
    except UsageError as exc:
        if debug:
            raise
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(ExitCode.USAGE)
    except CertvigilError as exc:
        if debug:
            raise
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(ExitCode.UNKNOWN)
    sys.exit(ExitCode.OK)
