"""``certvigil serve --config FILE``: the central server (API, alert stream, outbox).

It listens on 127.0.0.1:8750 by default; ``--tls-cert``/``--tls-key`` serve HTTPS.
Several workers (``--workers N``) are allowed on PostgreSQL only: SQLite has one
writer at a time, and the workers would queue on its lock. The OpenAPI document is at
``/api/v1/openapi.json``.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from certvigil.cli.app import app
from certvigil.cli.options import DebugOption, parse_listen
from certvigil.config.loading import load_config
from certvigil.errors import UsageError
from certvigil.store import open_store

DEFAULT_LISTEN = "127.0.0.1:8750"

SHUTDOWN_GRACE_S = 10
"""On SIGTERM, how long requests in flight may finish; open streams are then closed."""

SERVE_EXAMPLES = (
    "[bold]Examples[/bold]\n"
    "certvigil serve --config server.yaml\n"
    "certvigil serve -c server.yaml --listen 0.0.0.0:8750 \\\n"
    "  --tls-cert server.pem --tls-key server.key\n"
    "certvigil serve -c server.yaml --workers 4   # PostgreSQL only\n"
    "curl -H 'X-API-Key: cvk_...' http://127.0.0.1:8750/api/v1/alerts?unread=true"
)


@app.command("serve", epilog=SERVE_EXAMPLES)
def serve_command(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", metavar="FILE", help="The server's configuration file."),
    ],
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="Where to serve HTTP.")
    ] = DEFAULT_LISTEN,
    workers: Annotated[
        int,
        typer.Option("--workers", metavar="N", min=1, max=64, help="Processes (PostgreSQL)."),
    ] = 1,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", metavar="FILE", help="PEM certificate chain for HTTPS."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", metavar="FILE", help="PEM private key for HTTPS.")
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Serve the API, the web dashboard, the live alert stream and the alert outbox."""
    del debug
    import uvicorn

    host, port = parse_listen(listen, example=DEFAULT_LISTEN)
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    for option, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if path is not None and not path.is_file():
            raise UsageError(f"{option} {path}: no such file")
    loaded = load_config(config)
    store = open_store(loaded.database_url)
    if workers > 1 and store.dialect_name != "postgresql":
        store.close()
        raise UsageError(
            f"--workers {workers}: several workers need PostgreSQL; "
            "SQLite takes one writer at a time (use --workers 1 or a postgresql:// URL)"
        )
    certfile = str(tls_cert) if tls_cert else None
    keyfile = str(tls_key) if tls_key else None
    scheme = "https" if tls_cert else "http"
    try:
        sock = socket.create_server(
            (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
        )
    except OSError as exc:
        store.close()
        raise UsageError(f"--listen {listen}: cannot listen: {exc.strerror or exc}") from exc
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    sys.stderr.write(f"certvigil serve: listening on {scheme}://{shown}:{bound[1]}/\n")
    sys.stderr.flush()
    if workers > 1:
        store.close()
        from certvigil.server.factory import CONFIG_ENV

        os.environ[CONFIG_ENV] = str(config.resolve())
        uv_config = uvicorn.Config(
            "certvigil.server.factory:app_from_environment",
            factory=True,
            workers=workers,
            log_level="warning",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            # X-Forwarded-* are read by server/proxies.py from serve.trusted_proxies only;
            # uvicorn's own handling would believe them from 127.0.0.1 by default.
            proxy_headers=False,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        from uvicorn.supervisors.multiprocess import Multiprocess

        Multiprocess(uv_config, sockets=[sock]).run()
        return
    from certvigil.server.app import create_app
    from certvigil.server.dashboard.wiring import attach_dashboard

    app = create_app(loaded, store, announce_ready=True)
    attach_dashboard(app, store)
    uv_config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        # X-Forwarded-* are read by server/proxies.py from serve.trusted_proxies only;
        # uvicorn's own handling would believe them from 127.0.0.1 by default.
        proxy_headers=False,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    try:
        # Server.run, not asyncio.run(Server.serve()): run sets up the event loop the
        # configuration names ("auto": uvloop when installed), as each worker of
        # --workers N does.
        uvicorn.Server(uv_config).run(sockets=[sock])
    finally:
        store.close()
