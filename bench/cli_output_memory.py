"""Peak memory of the scan command's output path: streamed JSON/CSV versus the table.

Run: .venv/bin/python bench/cli_output_memory.py [--endpoints 1000 4000]

One TLS server on 127.0.0.1, in a child process so that its own bookkeeping is not
measured, answers every endpoint; each endpoint is a distinct target (its own SNI name,
so none is de-duplicated). The targets come from a generator and the
results go to /dev/null through the same ``run_scan`` and ``ReportSink`` that
``certvigil scan`` uses. Printed per format and size: wall time, endpoints per second,
and the peak of Python allocations (tracemalloc) during the run. Streamed formats should
stay flat as the number of endpoints grows; the table keeps every report.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import time
import tracemalloc
from collections.abc import Iterator
from multiprocessing.connection import Connection

from rich.console import Console

from certvigil.analysis.trust import TrustStore
from certvigil.cli.scan_cmd import run_scan
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.output.sink import OutputFormat, ReportSink
from certvigil.scan.options import ScanOptions
from certvigil.targets.target import Target


def _targets(host: str, port: int, count: int) -> Iterator[Target]:
    for index in range(count):
        yield Target(host=host, port=port, sni=f"h{index}.bench.test")


def _measure(
    output_format: OutputFormat, count: int, *, host: str, port: int, trust: TrustStore
) -> tuple[float, int]:
    sink_stream = open("/dev/null", "w", encoding="utf-8")
    with sink_stream:
        sink = ReportSink(output_format, sink_stream, command="scan", version="bench")
        console = Console(file=io.StringIO())
        options = ScanOptions(concurrency=100, per_ip_concurrency=100, retries=0)
        tracemalloc.start()
        started = time.perf_counter()
        run_scan(
            _targets(host, port, count),
            options=options,
            trust=trust,
            sink=sink,
            console=console,
            show_progress=False,
        )
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return elapsed, peak


def _serve(chain: tuple[bytes, ...], key_pem: bytes, channel: Connection) -> None:
    with TlsServer(chain=chain, key_pem=key_pem) as address:
        channel.send(tuple(address))
        channel.recv()  # until the parent says stop


def main() -> None:
    """Run the measurements and print one line per (format, size)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, nargs="+", default=[1000, 4000])
    args = parser.parse_args()
    pki = ThrowawayPki.create()
    leaf = pki.issue_leaf(dns_names=("*.bench.test",))
    trust = TrustStore.from_certificates([pki.root.certificate], source="bench root")
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=_serve, args=(pki.served_chain_der(leaf), leaf.key_pem, child), daemon=True
    )
    server.start()
    host, port = parent.recv()
    try:
        print(f"{'format':<6} {'endpoints':>9} {'seconds':>8} {'per s':>7} {'peak MiB':>9}")
        for output_format in (OutputFormat.JSON, OutputFormat.CSV, OutputFormat.TABLE):
            for count in args.endpoints:
                elapsed, peak = _measure(output_format, count, host=host, port=port, trust=trust)
                print(
                    f"{output_format.value:<6} {count:>9} {elapsed:>8.1f} "
                    f"{count / elapsed:>7.0f} {peak / 2**20:>9.1f}",
                    flush=True,
                )
    finally:
        parent.send("stop")
        server.join(10)


if __name__ == "__main__":
    main()
