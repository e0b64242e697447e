"""Wall time of ``certvigil check`` (and check_ssl_cert) and ``/probe`` latency (and
blackbox_exporter's) against the same loopback TLS endpoint.

    .venv/bin/python bench/monitoring_check.py [--runs 10]

Starts one loopback TLS server (a throwaway PKI's leaf and intermediate), then:

1. runs ``certvigil check localhost:PORT --rootcert-file ROOT`` as a process ``--runs``
   times and prints the median and worst wall time, and the median CPU time of the child;
2. the same with Debian's ``check_ssl_cert`` (monitoring-plugins-contrib, which also
   needs ``host`` from bind9-host) when installed;
3. the same with ``certvigil zabbix get localhost:PORT json`` (the Zabbix external
   check: one scan, one JSON document);
4. starts ``certvigil exporter`` on the endpoint and times ``/probe`` (median of
   ``--runs`` after one warm-up) and the exporter process's CPU time per probe (from
   ``/proc/PID/stat``), then the same for ``prometheus-blackbox-exporter`` with a
   ``tcp`` + TLS module on the same endpoint when installed.

Figures taken on a shared, loaded machine are indicative only.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer, closed_port

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC)}


def _timed(command: list[str]) -> tuple[float, float, int, str]:
    """(wall s, child CPU s, exit code, first output line) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    first = (done.stdout.splitlines() or [done.stderr.strip()])[0]
    return wall, cpu, done.returncode, first


def _report(name: str, command: list[str], runs: int) -> None:
    results = [_timed(command) for _ in range(runs)]
    walls = [r[0] for r in results]
    cpus = [r[1] for r in results]
    print(
        f"{name:<16} median {statistics.median(walls):.3f} s  worst {max(walls):.3f} s  "
        f"CPU median {statistics.median(cpus):.3f} s  exit {results[-1][2]}"
    )
    print(f"{'':<16} {results[-1][3][:150]}")


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _probe_latency(url: str, runs: int, pid: int) -> tuple[float, float, float]:
    """(median s, worst s, server CPU s per probe) of ``runs`` probes after a warm-up."""
    with urllib.request.urlopen(url, timeout=30) as response:  # warm-up
        response.read()
    times = []
    cpu_before = _cpu_s(pid)
    for _ in range(runs):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read().decode()
        times.append(time.perf_counter() - started)
    cpu = (_cpu_s(pid) - cpu_before) / runs
    assert "probe_success 1" in body, body[:500]
    return statistics.median(times), max(times), cpu


def _print_latency(name: str, median: float, worst: float, cpu: float) -> None:
    print(
        f"{name:<16} median {median * 1000:.1f} ms  worst {worst * 1000:.1f} ms  "
        f"server CPU {cpu * 1000:.1f} ms per probe"
    )


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    pki = ThrowawayPki.create()
    leaf = pki.issue_leaf(dns_names=("localhost",))
    with (
        tempfile.TemporaryDirectory() as tmp,
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as address,
    ):
        root = Path(tmp) / "root.pem"
        root.write_bytes(pki.root.pem)
        endpoint = f"localhost:{address.port}"
        print(f"endpoint {endpoint}, {runs} runs each, {os.cpu_count()} CPUs")
        _report(
            "certvigil check",
            [sys.executable, "-m", "certvigil", "check", endpoint, "--rootcert-file", str(root)],
            runs,
        )
        plugin = shutil.which("check_ssl_cert") or next(
            (p for p in ("/usr/lib/nagios/plugins/check_ssl_cert",) if Path(p).exists()), None
        )
        if plugin is None:
            print("check_ssl_cert    not installed (monitoring-plugins-contrib)")
        else:
            _report(
                "check_ssl_cert",
                [
                    plugin,
                    "-H",
                    "localhost",
                    "-p",
                    str(address.port),
                    "-r",
                    str(root),
                    "--ignore-sct",
                    "--cn",
                    "localhost",
                ],
                runs,
            )
        _report(
            "zabbix get json",
            [
                *(sys.executable, "-m", "certvigil", "zabbix", "get", endpoint, "json"),
                *("--rootcert-file", str(root)),
            ],
            runs,
        )
        config = Path(tmp) / "certvigil.yaml"
        config.write_text(
            f"trust:\n  public: false\n  ca_files: [{root}]\ntargets:\n  - host: {endpoint}\n"
        )
        exporter = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "certvigil",
                "exporter",
                "--config",
                str(config),
                "--listen",
                "127.0.0.1:0",
            ],
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        try:
            assert exporter.stderr is not None
            match = re.search(r"(http://\S+)/", exporter.stderr.readline())
            assert match
            url = f"{match.group(1)}/probe?target={endpoint}"
            _print_latency("certvigil /probe", *_probe_latency(url, runs, exporter.pid))
        finally:
            exporter.terminate()
            exporter.wait(10)
        blackbox = shutil.which("prometheus-blackbox-exporter")
        if blackbox is None:
            print("blackbox_exporter not installed (prometheus-blackbox-exporter)")
            return
        bb_config = Path(tmp) / "blackbox.yml"
        bb_config.write_text(
            "modules:\n  tls:\n    prober: tcp\n    timeout: 10s\n    tcp:\n      tls: true\n"
            f"      tls_config:\n        ca_file: {root}\n        server_name: localhost\n"
        )
        with closed_port() as free:
            port = free.port
        process = subprocess.Popen(
            [blackbox, f"--config.file={bb_config}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)
            url = f"http://127.0.0.1:{port}/probe?module=tls&target={endpoint}"
            _print_latency("blackbox /probe", *_probe_latency(url, runs, process.pid))
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
