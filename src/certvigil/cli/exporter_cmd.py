"""``certvigil exporter --config FILE``: a blackbox-style Prometheus exporter.

``GET /probe?target=HOST:PORT[&module=default|revocation|deep]`` scans the endpoint on
request with the scan's own code and answers its metrics
(``certvigil.integrations.prometheus``); only endpoints the configuration file names
(``targets`` and ``sources``, with their SNI, STARTTLS, time-out and trust settings)
may be probed, anything else is refused with 403, so the exporter cannot be used to
scan arbitrary hosts. ``GET /metrics`` answers the exporter's own counters and, when a
database is configured (``--db`` or the file's ``database_url``), the inventory's state
from the store (``certvigil.integrations.prometheus_store``), read in a thread, one
read at a time.

The probe's time limit is the scrape's (Prometheus's
``X-Prometheus-Scrape-Timeout-Seconds`` header, less half a second, as
blackbox_exporter does), else 20 s; a probe that runs out of time answers
``probe_success 0`` rather than nothing. Requests are read with a 10 s limit and a
16 KiB header cap; at most 8 probes run at once. See docs/monitoring.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

import typer

from certvigil.analysis.model import EndpointReport
from certvigil.analysis.trust import TrustStore
from certvigil.cli.app import app
from certvigil.cli.options import DebugOption, parse_listen
from certvigil.cli.store_access import open_existing_store
from certvigil.config.expand import ScheduledTarget, expand_targets
from certvigil.config.loading import load_config
from certvigil.errors import StoreError, TargetError, UsageError
from certvigil.files.truststore import TrustStoreCache
from certvigil.integrations.prometheus import (
    CONTENT_TYPE,
    Family,
    MetricType,
    Sample,
    failed_probe_families,
    probe_families,
    render,
)
from certvigil.integrations.prometheus_more import INVENTORY_EXTRAS
from certvigil.integrations.prometheus_store import render_inventory_metrics
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import one_endpoint_options, scan_stream
from certvigil.store import Store
from certvigil.targets.parse import ExpansionOptions, iter_argument_specs, iter_targets

DEFAULT_LISTEN = "127.0.0.1:9219"
MODULES = ("default", "revocation", "deep")
"""``default``: handshake, chain, trust, name. ``revocation``: plus OCSP/CRL.
``deep``: plus revocation, protocols, ciphers and the grade."""
_DEFAULT_BUDGET_S = 20.0
_MAX_BUDGET_S = 120.0
_REQUEST_TIMEOUT_S = 10.0
_HEADER_LIMIT = 16 * 1024
_MAX_PROBES = 8


class _HttpError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class _Counters:
    probes: dict[tuple[str, str], int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    denied: int = 0
    in_flight: int = 0


class Exporter:
    """The exporter's state: the allow-list, trust stores and counters."""

    def __init__(self, targets: tuple[ScheduledTarget, ...], store: Store | None = None) -> None:
        """Serve probes for ``targets`` (the configuration's endpoints) and, with a
        ``store``, the inventory's state on ``/metrics``."""
        self._store = store
        self._store_lock = asyncio.Lock()
        self._allowed: dict[tuple[str, int], ScheduledTarget] = {}
        for scheduled in targets:
            self._allowed.setdefault((scheduled.target.host, scheduled.target.port), scheduled)
        self._trust = TrustStoreCache()
        self._slots = asyncio.Semaphore(_MAX_PROBES)
        self._counters = _Counters()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one HTTP/1.1 request, then close the connection."""
        try:
            try:
                status, reason, body, content_type = await self._answer(reader)
            except _HttpError as exc:
                status, reason, body, content_type = (
                    exc.status,
                    exc.reason,
                    f"{exc}\n",
                    "text/plain; charset=utf-8",
                )
            data = body.encode("utf-8", errors="replace")
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode("ascii")
                + data
            )
            await writer.drain()
            if status >= 400:
                await _linger(reader, writer)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, str, str, str]:
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            raise _HttpError(408, "Request Timeout", "no complete request in time") from None
        except asyncio.LimitOverrunError:
            raise _HttpError(431, "Request Header Fields Too Large", "headers too large") from None
        except asyncio.IncompleteReadError:
            raise _HttpError(400, "Bad Request", "incomplete request") from None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _HttpError(400, "Bad Request", "not an HTTP/1.x request line")
        method, url, _ = parts
        if method != "GET":
            raise _HttpError(405, "Method Not Allowed", "only GET is served")
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        split = urlsplit(url)
        if split.path == "/metrics":
            return 200, "OK", await self.metrics(), CONTENT_TYPE
        if split.path == "/probe":
            try:
                query = parse_qs(split.query, max_num_fields=8)
            except ValueError:
                raise _HttpError(400, "Bad Request", "too many query parameters") from None
            budget = _budget(headers.get("x-prometheus-scrape-timeout-seconds"))
            body = await self.probe(
                query.get("target", [""])[0], query.get("module", ["default"])[0], budget
            )
            return 200, "OK", body, CONTENT_TYPE
        if split.path == "/":
            text = "certvigil exporter: /probe?target=HOST:PORT[&module=...], /metrics\n"
            return 200, "OK", text, "text/plain; charset=utf-8"
        raise _HttpError(404, "Not Found", "not found")

    def _allowed_target(self, text: str) -> ScheduledTarget:
        if not text:
            raise _HttpError(400, "Bad Request", "target parameter is missing")
        errors: list[TargetError] = []
        targets = list(
            iter_targets(
                iter_argument_specs([text[:300]]),
                options=ExpansionOptions(default_ports=(443,)),
                on_error=errors.append,
            )
        )
        if errors or len(targets) != 1:
            reason = errors[0].reason if errors else "names more than one endpoint"
            raise _HttpError(400, "Bad Request", f"target: {reason}")
        scheduled = self._allowed.get((targets[0].host, targets[0].port))
        if scheduled is None:
            self._counters.denied += 1
            raise _HttpError(403, "Forbidden", "target is not in the configuration")
        return scheduled

    async def probe(self, target_text: str, module: str, budget_s: float) -> str:
        """Scan one allowed endpoint with ``module`` within ``budget_s``; its exposition.

        Raises:
            _HttpError: 400 for a bad target or module, 403 for a target not configured.
        """
        if module not in MODULES:
            raise _HttpError(400, "Bad Request", f"module must be one of {', '.join(MODULES)}")
        scheduled = self._allowed_target(target_text)
        each = min(scheduled.timeout_s, budget_s)
        options = one_endpoint_options(
            each_s=each,
            budget_s=budget_s,
            deep=module == "deep",
            revocation=module != "default",
        )
        started = time.perf_counter()
        self._counters.in_flight += 1
        try:
            async with asyncio.timeout(budget_s):
                async with self._slots:
                    trust = await self._trust.get(scheduled.trust)
                    report = await _scan_one(scheduled, options, trust)
        except TimeoutError:
            families = failed_probe_families(
                duration_s=time.perf_counter() - started, reason_kind="timeout"
            )
            self._count(module, None, "timeout")
        else:
            families = probe_families(report, duration_s=time.perf_counter() - started)
            self._count(module, report, report.failure.kind.value if report.failure else None)
        finally:
            self._counters.in_flight -= 1
        return render(families)

    def _count(self, module: str, report: EndpointReport | None, failure: str | None) -> None:
        result = "failure" if failure is not None else "success"
        key = (module, result)
        self._counters.probes[key] = self._counters.probes.get(key, 0) + 1
        if failure is not None:
            self._counters.failures[failure] = self._counters.failures.get(failure, 0) + 1

    async def metrics(self) -> str:
        """The ``/metrics`` text: the exporter's counters, then the inventory's state."""
        if self._store is None:
            return render(self.own_families())
        store = self._store
        async with self._store_lock:
            try:
                inventory = await asyncio.to_thread(
                    render_inventory_metrics,
                    store,
                    now=datetime.now(UTC),
                    extra_sources=INVENTORY_EXTRAS,
                )
            except StoreError as exc:
                sys.stderr.write(f"certvigil exporter: /metrics: {exc}\n")
                inventory = ""
        store_up = Family(
            name="certvigil_exporter_store_up",
            type=MetricType.GAUGE,
            help="1 when the inventory database could be read for this scrape",
            samples=(Sample((), 1 if inventory else 0),),
        )
        return render([*self.own_families(), store_up]) + inventory

    def own_families(self) -> list[Family]:
        """The exporter's own metrics, for ``/metrics``."""
        counters = self._counters
        return [
            Family(
                name="certvigil_exporter_probes_total",
                type=MetricType.COUNTER,
                help="Probes answered, by module and whether the endpoint was observed",
                samples=tuple(
                    Sample((("module", module), ("result", result)), count)
                    for (module, result), count in sorted(counters.probes.items())
                ),
            ),
            Family(
                name="certvigil_exporter_probe_errors_total",
                type=MetricType.COUNTER,
                help="Probes that could not observe the endpoint, by failure kind",
                samples=tuple(
                    Sample((("kind", kind),), count)
                    for kind, count in sorted(counters.failures.items())
                ),
            ),
            Family(
                name="certvigil_exporter_probes_denied_total",
                type=MetricType.COUNTER,
                help="Probe requests refused because the target is not configured",
                samples=(Sample((), counters.denied),),
            ),
            Family(
                name="certvigil_exporter_probes_in_flight",
                type=MetricType.GAUGE,
                help="Probes running now",
                samples=(Sample((), counters.in_flight),),
            ),
            Family(
                name="certvigil_exporter_targets",
                type=MetricType.GAUGE,
                help="Endpoints the configuration allows to be probed",
                samples=(Sample((), len(self._allowed)),),
            ),
        ]


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close and read what the client still sends (up to 1 MiB or 1 s), so that
    closing with unread input does not reset the connection and lose the error answer."""
    if writer.can_write_eof():
        writer.write_eof()
    left = 1024 * 1024
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(1.0):
            while left > 0 and (chunk := await reader.read(65536)):
                left -= len(chunk)


async def _scan_one(
    scheduled: ScheduledTarget, options: ScanOptions, trust: TrustStore
) -> EndpointReport:
    async for report in scan_stream([scheduled.target], options=options, trust=trust):
        return report
    raise AssertionError("scan_stream yields one report per target")  # pragma: no cover


def _budget(header: str | None) -> float:
    if header is None:
        return _DEFAULT_BUDGET_S
    try:
        value = float(header)
    except ValueError:
        return _DEFAULT_BUDGET_S
    if not 0 < value < float("inf"):  # also NaN
        return _DEFAULT_BUDGET_S
    return min(max(value - 0.5, 0.5), _MAX_BUDGET_S)


async def _serve(exporter: Exporter, host: str, port: int) -> None:
    server = await asyncio.start_server(exporter.handle, host, port, limit=_HEADER_LIMIT)
    bound = server.sockets[0].getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    sys.stderr.write(f"certvigil exporter: listening on http://{shown}:{bound[1]}/\n")
    sys.stderr.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


EXPORTER_EXAMPLES = """[bold]Examples[/bold]
certvigil exporter --config /etc/certvigil/certvigil.yaml
certvigil exporter --config certvigil.yaml --listen 127.0.0.1:9219
certvigil exporter --config certvigil.yaml --db /var/lib/certvigil/certvigil.db
curl 'http://127.0.0.1:9219/probe?target=www.example.org:443&module=deep'"""


@app.command("exporter", epilog=EXPORTER_EXAMPLES)
def exporter_command(
    config: Annotated[
        Path,
        typer.Option("--config", metavar="FILE", help="The daemon's configuration file."),
    ],
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="Where to serve HTTP.")
    ] = DEFAULT_LISTEN,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help="Inventory for /metrics (default: the file's database_url, if any).",
        ),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Serve blackbox-style /probe and /metrics for Prometheus over the configured targets."""
    del debug  # read from argv by certvigil.cli.app.main
    host, port = parse_listen(listen, example=DEFAULT_LISTEN)
    loaded = load_config(config)
    expanded = expand_targets(loaded)
    store = open_existing_store(db, config) if db or loaded.database_url else None
    exporter = Exporter(expanded.targets, store)
    try:
        asyncio.run(_serve(exporter, host, port))
    except OSError as exc:
        raise UsageError(f"--listen {listen}: cannot listen: {exc.strerror or exc}") from exc
    finally:
        if store is not None:
            store.close()
