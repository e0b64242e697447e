"""``certvigil ship elasticsearch``: observations and certificates into Elasticsearch/OpenSearch.

Exit codes: 0 every document indexed; 1 the cluster refused some documents (each is
listed on stderr with its id and reason, the others were indexed); 3 the run stopped
(a request refused as a whole, the retries or the deadline ran out); 64 for a bad
option, configuration or URL; 74 when the database cannot be read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import (
    CONNECTION_PANEL,
    DatabaseOption,
    DebugOption,
    StoreConfigOption,
)
from certvigil.cli.snapshot_source import (
    FromScanOption,
    IndexPrefixOption,
    SinceOption,
    ecs_documents,
    index_prefix,
    snapshot_source,
)
from certvigil.errors import UsageError
from certvigil.integrations.ecs import DEFAULT_INDEX_PREFIX
from certvigil.integrations.es_template import ilm_policy, index_template
from certvigil.output.safe_text import visible
from certvigil.sinks.elasticsearch import ElasticsearchShipper, ShipOptions

API_KEY_ENV = "CERTVIGIL_ES_API_KEY"
PASSWORD_ENV = "CERTVIGIL_ES_PASSWORD"
AUTH_PANEL = "Authentication"

ship_app = typer.Typer(
    name="ship",
    help="Send the inventory to another system.",
    no_args_is_help=True,
)
app.add_typer(ship_app, name="ship")


def _cluster_url(text: str) -> str:
    """The cluster's base URL: http or https, a host, no query or fragment.

    Raises:
        UsageError: Anything else.
    """
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f'URL "{text}": {exc}') from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f'URL "{text}": expected http(s)://HOST[:PORT][/PATH]')
    if parts.query or parts.fragment:
        raise UsageError(f'URL "{text}": no query or fragment, please')
    if parts.username or parts.password:
        raise UsageError(f'URL "{text}": put credentials in --user or ${API_KEY_ENV}, not the URL')
    del port
    return text.rstrip("/")


SHIP_ES_EXAMPLES = """[bold]Examples[/bold]
certvigil ship elasticsearch https://es.example.net:9200 -c certvigil.yaml \
--install-template
CERTVIGIL_ES_API_KEY=... certvigil ship elasticsearch https://es:9200 --since 1h
certvigil ship elasticsearch http://127.0.0.1:9200 --user elastic --since 7d
certvigil ship elasticsearch https://os:9200 --from-scan scan.json --index tls"""


@ship_app.command("elasticsearch", epilog=SHIP_ES_EXAMPLES)
def ship_elasticsearch_command(
    url: Annotated[
        str,
        typer.Argument(metavar="URL", help="The cluster, http(s)://HOST:PORT."),
    ],
    since: SinceOption = "24h",
    index: IndexPrefixOption = DEFAULT_INDEX_PREFIX,
    install_template: Annotated[
        bool,
        typer.Option(
            "--install-template",
            help="First install (or replace) the index template and ILM policy.",
        ),
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            metavar="KEY",
            envvar=API_KEY_ENV,
            show_envvar=False,
            help=f"Elasticsearch API key (base64 id:key); better: ${API_KEY_ENV}.",
            rich_help_panel=AUTH_PANEL,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="USER",
            help=f"Basic authentication as USER; password from ${PASSWORD_ENV}.",
            rich_help_panel=AUTH_PANEL,
        ),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            "--ca-file",
            metavar="PEM",
            help="Verify the cluster's certificate with this CA.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Do not verify the cluster's certificate.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            metavar="S",
            min=0.1,
            help="Longest wait for one request, seconds.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = 30.0,
    deadline: Annotated[
        float,
        typer.Option(
            "--deadline",
            metavar="S",
            min=0.1,
            help="Longest the whole run may take, seconds.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = 600.0,
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            metavar="N",
            min=0,
            max=20,
            help="Retries of a batch answered 429 or 5xx.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = 5,
    batch_docs: Annotated[
        int,
        typer.Option(
            "--batch-docs",
            metavar="N",
            min=1,
            max=10000,
            help="Most documents per _bulk request.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = 500,
    batch_bytes: Annotated[
        int,
        typer.Option(
            "--batch-bytes",
            metavar="B",
            min=4096,
            max=100 * 1024 * 1024,
            help="Most bytes per _bulk request.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = 5 * 1024 * 1024,
    from_scan: FromScanOption = None,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Index observations and certificates in Elasticsearch or OpenSearch (ECS fields).

    Documents go in _bulk batches with stable ids: sending twice overwrites.

    429 and 5xx answers are retried with back-off.

    A refused document is listed with its id and reason; the others are indexed.
    """
    del debug  # read from argv by certvigil.cli.app.main
    base = _cluster_url(url)
    prefix = index_prefix(index)
    if api_key and user:
        raise UsageError("--api-key and --user cannot be used together")
    if insecure and ca_file is not None:
        raise UsageError("--insecure and --ca-file cannot be used together")
    if ca_file is not None and not ca_file.is_file():
        raise UsageError(f"--ca-file {ca_file}: no such file")
    options = ShipOptions(
        url=base,
        api_key=api_key or None,
        user=user,
        password=os.environ.get(PASSWORD_ENV) if user is not None else None,
        verify=False if insecure else (str(ca_file) if ca_file is not None else True),
        index_prefix=prefix,
        max_batch_docs=batch_docs,
        max_batch_bytes=batch_bytes,
        timeout_s=timeout,
        deadline_s=deadline,
        retries=retries,
    )
    snapshots, store = snapshot_source(from_scan=from_scan, db=db, config=config, since=since)
    try:
        with ElasticsearchShipper(options) as shipper:
            if install_template:
                shipper.install(policy=ilm_policy(), template=index_template(prefix))
                sys.stderr.write(f"installed ILM policy and index template {prefix}\n")
            result = shipper.ship(ecs_documents(snapshots))
    finally:
        if store is not None:
            store.close()
    for item in result.rejected:
        sys.stderr.write(
            f"rejected: {visible(item.doc_id)} ({visible(item.index)}): HTTP {item.status} "
            f"{visible(item.error_type)}: {visible(item.reason)}\n"
        )
    sys.stderr.write(
        f"{result.indexed} indexed, {len(result.rejected)} rejected in "
        f"{result.requests} request{'s' if result.requests != 1 else ''}"
        f" ({result.retried} retried) to {visible(base)}\n"
    )
    raise typer.Exit(ExitCode.WARNING if result.rejected else ExitCode.OK)
