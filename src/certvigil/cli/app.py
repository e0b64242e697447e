"""The typer application and the process entry point."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Annotated

import typer

from certvigil.cli.exitcodes import ExitCode
from certvigil.errors import CertvigilError, StoreError, UsageError
from certvigil.output.safe_text import visible

app = typer.Typer(
    name="certvigil",
    help="Keep TLS certificates from surprising you: scan endpoints, judge what they serve.",
    epilog=(
        "[bold]Examples[/bold]\n"
        "certvigil demo\n"
        "certvigil scan example.com\n"
        "certvigil config init certvigil.yaml\n"
        "certvigil run -c certvigil.yaml\n"
        "certvigil COMMAND --help"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        from certvigil import __version__

        typer.echo(f"certvigil {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show a traceback for errors instead of one line.")
    ] = False,
) -> None:
    # --debug is read from argv by main(); declaring it here lets it stand before the
    # sub-command (`certvigil --debug scan ...`).
    del version, debug


_COMMAND_MODULES = {
    "scan": "certvigil.cli.scan_cmd",
    "cert": "certvigil.cli.cert_cmd",
    "demo": "certvigil.cli.demo_cmd",
    "grade": "certvigil.cli.grade_cmd",
    "inventory": "certvigil.cli.inventory_cmd",
    "history": "certvigil.cli.inventory_cmd",
    "changes": "certvigil.cli.changes_cmd",
    "where": "certvigil.cli.changes_cmd",
    "run": "certvigil.cli.run_cmd",
    "alerts": "certvigil.cli.alerts_cmd",
    "config": "certvigil.cli.config_cmd",
    "check": "certvigil.cli.check_cmd",
    "exporter": "certvigil.cli.exporter_cmd",
    "users": "certvigil.cli.users_cmd",
    "serve": "certvigil.cli.serve_cmd",
    "keys": "certvigil.cli.keys_cmd",
    "agent": "certvigil.cli.agent_cmd",
}
"""The module that defines each sub-command; importing one registers its commands."""


def register_commands(argv: list[str]) -> None:
    """Import the module of the sub-command named in ``argv`` (all of them if unsure)."""
    # Imported for their side effect of adding commands to ``app``. A command imports
    # only its own module: the others pull in SQLAlchemy, alembic and apprise, which
    # would add up to a second to a scan's start-up and a third of one to a cron job's
    # `inventory`. The top-level help, a mistyped command and no command get them all.
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    module = _COMMAND_MODULES.get(command or "")
    for name in (module,) if module is not None else dict.fromkeys(_COMMAND_MODULES.values()):
        importlib.import_module(name)


def _exception_classes(name: str) -> tuple[type[BaseException], ...]:
    # typer >= 0.20 carries its own copy of click (typer._click) whose exceptions are
    # not click's, and defines Exit and Abort itself; commands may raise either family.
    import click.exceptions

    modules: list[types.ModuleType] = [click.exceptions, typer]
    try:
        import typer._click.exceptions as typer_click_exceptions
    except ImportError:
        pass
    else:
        modules.append(typer_click_exceptions)
    found = {getattr(module, name, None) for module in modules}
    return tuple(cls for cls in found if isinstance(cls, type) and issubclass(cls, BaseException))


def main(argv: list[str] | None = None) -> None:
    """Run the command line and exit with a documented exit code."""
    register_commands(argv if argv is not None else sys.argv[1:])
    exits = _exception_classes("Exit")
    aborts: tuple[type[BaseException], ...] = (*_exception_classes("Abort"), KeyboardInterrupt)
    no_args = _exception_classes("NoArgsIsHelpError")
    click_errors = _exception_classes("ClickException")
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        # Without standalone mode, a command's typer.Exit(code) comes back as the return
        # value rather than as an exception.
        result = app(args=argv, standalone_mode=False)
    except exits as exc:
        sys.exit(getattr(exc, "exit_code", ExitCode.OK))
    except aborts:
        sys.stderr.write("error: aborted\n")
        sys.exit(130)
    except no_args as exc:
        sys.stderr.write(f"{visible(_message(exc))}\n")
        sys.exit(ExitCode.USAGE)
    except click_errors as exc:
        sys.stderr.write(f"error: {visible(_message(exc))}\n")
        sys.exit(ExitCode.USAGE)
    except CertvigilError as exc:
        if debug:
            _write_details(exc)
            raise
        sys.stderr.write(f"error: {visible(str(exc))}\n")
        sys.exit(error_exit_code(exc))
    sys.exit(result if isinstance(result, int) else ExitCode.OK)


def error_exit_code(exc: CertvigilError) -> ExitCode:
    """The exit code for an error that ended a command.

    Usage and configuration errors exit 64, database failures 74 (EX_IOERR); any other
    error means that what was asked could not be checked (3). Library texts are never
    part of the one-line message; ``--debug`` shows them in the traceback.
    """
    if isinstance(exc, UsageError):
        return ExitCode.USAGE
    if isinstance(exc, StoreError):
        return ExitCode.DATABASE
    return ExitCode.UNKNOWN


def _write_details(exc: BaseException) -> None:
    """Under ``--debug``: the libraries' own texts kept out of the one-line message."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        detail = getattr(current, "detail", None)
        if isinstance(detail, str) and detail:
            sys.stderr.write(f"detail: {visible(detail)}\n")
        current = current.__cause__ or current.__context__


def _message(exc: BaseException) -> str:
    format_message = getattr(exc, "format_message", None)
    return str(format_message()) if callable(format_message) else str(exc)
