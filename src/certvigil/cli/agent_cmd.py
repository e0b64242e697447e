"""``certvigil agent --config FILE [--once]``: scan inside a network, report to the server.

The configuration is certvigil's own with a ``server:`` section (``url`` and ``key`` or
``key_file``), or an SSL Scout JSON file unchanged (``api_endpoint`` and ``api_key``
name the server). Exit codes: 0 everything sent; 1 some batches are still in the
outbox (the server could not be reached in time; they go with the next run); 64 a
configuration mistake.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from certvigil.agent.client import ServerClient, ServerUrls
from certvigil.agent.outbox import AgentOutbox
from certvigil.agent.runner import Agent
from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import DebugOption
from certvigil.config.loading import LoadedConfig, load_config
from certvigil.daemon.logs import configure_logging
from certvigil.errors import UsageError
from certvigil.server.keys import MAX_TOKEN_CHARS

AGENT_EXAMPLES = (
    "[bold]Examples[/bold]\n"
    "certvigil agent --config agent.yaml\n"
    "certvigil agent --config /etc/dnsscience/sslscout.json --once\n"
    "agent.yaml:  server: {url: https://cv.example:8750, key_file: agent.key}"
)


def read_key(loaded: LoadedConfig) -> tuple[str, str]:
    """The server's URL and the agent's API key (``server.key`` or ``server.key_file``).

    Raises:
        UsageError: Neither is set, the file cannot be read, or the key is malformed.
    """
    server = loaded.config.server
    if server is None or server.url is None:
        raise UsageError(
            f"{loaded.path}: no server to report to; add server: {{url: ..., key_file: ...}} "
            "(or api_endpoint in an SSL Scout file)"
        )
    if server.key is not None:
        key = server.key.strip()
    elif server.key_file is not None:
        path = loaded.resolve(server.key_file)
        try:
            with path.open(encoding="ascii", errors="replace") as handle:
                key = handle.read(MAX_TOKEN_CHARS + 2).strip()
        except OSError as exc:
            raise UsageError(f"server.key_file {path}: {exc.strerror or exc}") from exc
    else:
        raise UsageError(f"{loaded.path}: server: give key or key_file (api_key in SSL Scout)")
    if not key or len(key) > MAX_TOKEN_CHARS or not key.isprintable() or " " in key:
        raise UsageError(f"{loaded.path}: server key: not an API key")
    return server.url, key


def outbox_path(loaded: LoadedConfig, name: str) -> Path:
    """Where the outbox lives: ``server.outbox``; else systemd's state directory
    (``$STATE_DIRECTORY``) when there is one; else next to the configuration file."""
    server = loaded.config.server
    if server is not None and server.outbox is not None:
        return loaded.resolve(server.outbox)
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    directory = Path(state) if state else loaded.base_dir
    return directory / f"{loaded.path.stem}.{name}.outbox.db"


@app.command("agent", epilog=AGENT_EXAMPLES)
def agent_command(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", metavar="FILE", help="The agent's configuration file."),
    ],
    once: Annotated[
        bool,
        typer.Option("--once", help="Scan what is due once, send everything, exit (cron)."),
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Scan local and server-assigned targets; send observations to the server."""
    loaded = load_config(config)
    for note in loaded.notes:
        sys.stderr.write(f"note: {note}\n")
    url, key = read_key(loaded)
    server = loaded.config.server
    if server is None:  # read_key refuses a file without one
        raise UsageError(f"{loaded.path}: no server section")
    name = server.name or socket.gethostname() or "agent"
    settings = loaded.config.logging
    configure_logging(
        format=settings.format.value,
        level="debug" if debug else settings.level.value,
        file=loaded.resolve(settings.file) if settings.file is not None else None,
    )
    path = outbox_path(loaded, name)
    if not path.parent.is_dir():
        raise UsageError(f"outbox {path}: the directory does not exist")
    outbox = AgentOutbox(path, max_bytes=int(server.outbox_max_mb * 1024 * 1024))
    ca_file = loaded.resolve(server.ca_file) if server.ca_file is not None else None

    async def main() -> int:
        client = ServerClient(ServerUrls.from_configured(url), key, ca_file=ca_file)
        agent = Agent(loaded, client=client, outbox=outbox, name=name)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            stats = await agent.run(once=once, stop=stop)
        finally:
            await client.aclose()
        return ExitCode.OK if stats.backlog == 0 else 1

    try:
        code = asyncio.run(main())
    finally:
        outbox.close()
    raise typer.Exit(code)
