"""Scan throughput: N TLS endpoints on loopback, each with its own certificate.

Brings up one nginx process serving N endpoints, one per loopback address
(127.1.x.y:8443, so the per-address limit never throttles the scan), each with its own
leaf certificate (one shared EC P-256 key, N leaves from one throwaway intermediate).
Then runs the real command line, ``certvigil scan -f targets --json -o /dev/null`` with
only the throwaway root trusted (certificate, chain and analysis; no revocation), and
measures endpoints per second and the scanner's peak memory: the largest single process
(``wait4`` rusage) and the peak of the sum over the scanner and its worker processes
(proportional set size from ``/proc``, sampled every 50 ms, so pages the forked
workers share with the parent count once).
For comparison it times a sequential ``openssl s_client`` loop over a sample of the same
endpoints and extrapolates it to N.

    .venv/bin/python bench/scan_throughput.py            # N = 2000
    .venv/bin/python bench/scan_throughput.py --n 10000
    .venv/bin/python bench/scan_throughput.py --workers 1   # one scanner process

Needs nginx (Debian's nginx-light; ``scripts/install-system-deps.sh``) and openssl.
Only loopback addresses are used. Everything lives in a temporary directory and the
nginx child is stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from installed_bytecode import as_installed

from certvigil.demo.pki import KeySpec, ThrowawayPki, shared_key

PORT = 8443
MAX_N = 10_000


def endpoint_address(index: int) -> str:
    """The loopback address of endpoint ``index`` (0-based): 127.1.0.1, 127.1.0.2, ..."""
    return f"127.1.{index // 250}.{index % 250 + 1}"


def write_certificates(
    n: int, directory: Path, *, extra_dns_names: tuple[str, ...] = ()
) -> tuple[Path, Path, float]:
    """Write the root, the shared leaf key and one chain file per endpoint.

    Each leaf names its endpoint's address, ``epI.bench.test`` and ``extra_dns_names``.

    Returns:
        The root's path, the key's path and the seconds it took.
    """
    started = time.perf_counter()
    pki = ThrowawayPki.create(key=KeySpec.EC_P256)
    key = shared_key(KeySpec.EC_P256)
    root_path = directory / "root.pem"
    root_path.write_bytes(pki.root.pem)
    intermediate_pem = pki.intermediate.pem
    for index in range(n):
        leaf = pki.intermediate.issue_leaf(
            dns_names=(f"ep{index}.bench.test", *extra_dns_names),
            ip_addresses=(endpoint_address(index),),
            key=key,
        )
        (directory / f"ep{index}.pem").write_bytes(leaf.pem + intermediate_pem)
    key_path = directory / "leaf.key"
    key_path.write_bytes(pki.issue_leaf(key=key).key_pem)
    return root_path, key_path, time.perf_counter() - started


def write_nginx_config(n: int, directory: Path, key_path: Path) -> Path:
    """An nginx configuration with one TLS server block per endpoint address."""
    blocks = "\n".join(
        f"  server {{ listen {endpoint_address(i)}:{PORT} ssl; "
        f"ssl_certificate {directory}/ep{i}.pem; return 200; }}"
        for i in range(n)
    )
    config = f"""
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {n + 4096};
pid {directory}/nginx.pid;
error_log {directory}/error.log error;
events {{ worker_connections {min(n + 2048, 16384)}; }}
http {{
  access_log off;
  client_body_temp_path {directory}/body;
  proxy_temp_path {directory}/proxy;
  fastcgi_temp_path {directory}/fastcgi;
  uwsgi_temp_path {directory}/uwsgi;
  scgi_temp_path {directory}/scgi;
  ssl_certificate_key {key_path};
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_tickets off;
  default_type text/plain;
{blocks}
}}
"""
    path = directory / "nginx.conf"
    path.write_text(config)
    return path


def wait_until_listening(address: str, process: subprocess.Popen[bytes], deadline_s: float) -> None:
    """Wait until ``address:PORT`` accepts connections, or fail with nginx's own words."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            with socket.create_connection((address, PORT), timeout=1):
                return
        except OSError:
            if process.poll() is not None:
                said = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise SystemExit(f"nginx exited ({process.returncode}): {said.strip()}") from None
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


@contextmanager
def nginx(n: int, directory: Path, key_path: Path) -> Iterator[tuple[float, int]]:
    """Run nginx in the foreground as a child; yields its start-up seconds and its pid."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    config = write_nginx_config(n, directory, key_path)
    started = time.perf_counter()
    process = subprocess.Popen(
        [binary, "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_listening(endpoint_address(n - 1), process, deadline_s=120)
        yield time.perf_counter() - started, process.pid
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannerRun:
    """One run of the command line.

    Attributes:
        seconds: Wall time from start to exit.
        peak_mb: Peak resident memory of the largest single scanner process.
        tree_peak_mb: Peak of the summed memory (PSS) of the scanner and its workers.
        cpu_s: User + system CPU seconds of the scanner and its workers.
        summary: What it printed on stderr.
    """

    seconds: float
    peak_mb: float
    tree_peak_mb: float
    cpu_s: float
    summary: str


def tree_memory_mb(pid: int) -> float:
    """Memory of ``pid`` and its children now, in MB (0 once it is gone).

    Proportional set size (``Pss`` in ``smaps_rollup``): a page the forked workers
    still share with the parent counts once over all of them, not once per process.
    """
    total_kb = 0
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        return 0.0
    for each in pids:
        try:
            rollup = Path(f"/proc/{each}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def run_scanner(
    targets_path: Path, root_path: Path, *, concurrency: int, per_ip: int, workers: int | None
) -> ScannerRun:
    """Run ``certvigil scan`` as a child and measure it and its workers (``wait4`` rusage)."""
    command = [
        sys.executable,
        "-m",
        "certvigil",
        "scan",
        "-f",
        str(targets_path),
        "--ca-file",
        str(root_path),
        "--no-default-ca",
        "--concurrency",
        str(concurrency),
        "--per-ip",
        str(per_ip),
        "--retries",
        "0",
        "--json",
        "-o",
        os.devnull,
        "--no-progress",
    ]
    if workers is not None:
        command += ["--workers", str(workers)]
    # As installed, Python keeps compiled modules: let the scanner write and read them
    # even where the caller's environment says not to (the first, one-endpoint run
    # writes them), so that every run measures what users run.
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment
    )
    tree_peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            tree_peak[0] = max(tree_peak[0], tree_memory_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert process.stderr is not None
    summary = process.stderr.read().decode(errors="replace").strip()
    stop.set()
    sampler.join()
    # The rusage of a reaped child covers its reaped workers too: CPU summed, the
    # largest single peak RSS.
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return ScannerRun(
        seconds=seconds,
        peak_mb=usage.ru_maxrss / 1024,
        tree_peak_mb=tree_peak[0],
        cpu_s=usage.ru_utime + usage.ru_stime,
        summary=summary,
    )


_BARE_HANDSHAKES = """
import asyncio, ssl, sys, time
async def main(addresses, port, concurrency):
    context = ssl.create_default_context(cafile=sys.argv[3])
    context.check_hostname = False
    gate = asyncio.Semaphore(concurrency)
    ok = 0
    async def one(address):
        nonlocal ok
        async with gate:
            try:
                _r, writer = await asyncio.wait_for(
                    asyncio.open_connection(address, port, ssl=context), 10
                )
            except (OSError, TimeoutError):
                return
            ok += writer.get_extra_info("ssl_object").getpeercert(True) is not None
            writer.close()
    await asyncio.gather(*(one(a) for a in addresses))
    print(ok)
addresses = open(sys.argv[1]).read().split()
asyncio.run(main(addresses, int(sys.argv[2]), int(sys.argv[4])))
"""


def run_bare_handshakes(
    addresses_path: Path, root_path: Path, *, concurrency: int
) -> tuple[float, float, int]:
    """Bare asyncio TLS handshakes over every address in one process: no analysis at all.

    The floor the scanner is compared with: the same endpoints, the same concurrency, the
    chain verified by OpenSSL against the root, nothing else.

    Returns:
        Wall seconds, CPU seconds (user + system) and handshakes completed.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            _BARE_HANDSHAKES,
            str(addresses_path),
            str(PORT),
            str(root_path),
            str(concurrency),
        ],
        capture_output=True,
        timeout=600,
        check=True,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu_s, int(completed.stdout.strip() or 0)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_openssl_loop(addresses: list[str], root_path: Path) -> tuple[float, int]:
    """A sequential ``openssl s_client`` per address; return (seconds, handshakes that worked)."""
    ok = 0
    started = time.perf_counter()
    for address in addresses:
        completed = subprocess.run(
            [
                "openssl",
                "s_client",
                "-connect",
                f"{address}:{PORT}",
                "-CAfile",
                str(root_path),
                "-showcerts",
            ],
            input=b"",
            capture_output=True,
            timeout=30,
            check=False,
        )
        ok += b"-----BEGIN CERTIFICATE-----" in completed.stdout
    return time.perf_counter() - started, ok


def main() -> int:
    """Parse arguments, run the benchmark, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="endpoints (default 2000)")
    parser.add_argument("--concurrency", type=int, default=200, help="scanner --concurrency")
    parser.add_argument("--per-ip", type=int, default=8, help="scanner --per-ip")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="scanner --workers (default: the scanner's own default)",
    )
    parser.add_argument(
        "--openssl-sample", type=int, default=200, help="endpoints in the s_client loop"
    )
    arguments = parser.parse_args()
    if not 1 <= arguments.n <= MAX_N:
        parser.error(f"--n must be in 1..{MAX_N}")
    as_installed()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="certvigil-bench-") as temporary:
        directory = Path(temporary)
        root_path, key_path, cert_s = write_certificates(arguments.n, directory)
        addresses = [endpoint_address(i) for i in range(arguments.n)]
        targets_path = directory / "targets.txt"
        targets_path.write_text("".join(f"{a}:{PORT}\n" for a in addresses))
        print(f"certificates: {arguments.n} leaves written in {cert_s:.1f} s", file=sys.stderr)
        with nginx(arguments.n, directory, key_path) as (startup_s, nginx_pid):
            print(f"nginx: {arguments.n} endpoints up in {startup_s:.1f} s", file=sys.stderr)
            one_path = directory / "one.txt"
            one_path.write_text(f"{addresses[0]}:{PORT}\n")
            fixed = run_scanner(
                one_path, root_path, concurrency=1, per_ip=1, workers=arguments.workers
            )
            nginx_before_s = process_cpu_s(nginx_pid)
            full = run_scanner(
                targets_path,
                root_path,
                concurrency=arguments.concurrency,
                per_ip=arguments.per_ip,
                workers=arguments.workers,
            )
            nginx_cpu_s = process_cpu_s(nginx_pid) - nginx_before_s
            addresses_path = directory / "addresses.txt"
            addresses_path.write_text("\n".join(addresses))
            bare_s, bare_cpu_s, bare_ok = run_bare_handshakes(
                addresses_path, root_path, concurrency=arguments.concurrency
            )
            sample = addresses[:: max(1, arguments.n // arguments.openssl_sample)]
            sample = sample[: arguments.openssl_sample]
            openssl_s, openssl_ok = run_openssl_loop(sample, root_path)
    n = arguments.n
    openssl_rate = len(sample) / openssl_s
    print(f"scanner summary: {full.summary}")
    print(
        f"fixed cost of one 'certvigil scan' (start-up, trust store, one endpoint): "
        f"{fixed.seconds:.2f} s, {fixed.peak_mb:.0f} MB"
    )
    print(
        f"CPU per endpoint: scanner {1000 * full.cpu_s / n:.2f} ms, "
        f"nginx {1000 * nginx_cpu_s / n:.2f} ms (2 cores shared by both); "
        f"bare asyncio handshakes {1000 * bare_cpu_s / n:.2f} ms"
    )
    print(
        f"peak memory: {full.tree_peak_mb:.0f} MB PSS summed over the scanner and its "
        f"workers, {full.peak_mb:.0f} MB RSS in the largest process"
    )
    print(f"load average before: {load_before:.2f}, at the end: {os.getloadavg()[0]:.2f}")
    print()
    print(f"{'run':<46} {'endpoints':>9} {'seconds':>8} {'endpoints/s':>12} {'peak MB':>8}")
    rows = [
        ("certvigil scan --json, whole run", n, full.seconds, f"{full.tree_peak_mb:.0f}"),
        (
            "certvigil scan --json, less the fixed cost",
            n,
            max(full.seconds - fixed.seconds, 1e-9),
            "",
        ),
        ("bare asyncio handshakes, one process", n, bare_s, ""),
        ("openssl s_client loop, measured sample", len(sample), openssl_s, ""),
        ("openssl s_client loop, extrapolated to N", n, n / openssl_rate, ""),
    ]
    for label, count, seconds, peak in rows:
        print(f"{label:<46} {count:>9} {seconds:>8.2f} {count / seconds:>12.0f} {peak:>8}")
    print(f"(s_client handshakes that returned a chain: {openssl_ok}/{len(sample)})")
    print(f"(bare asyncio handshakes that completed: {bare_ok}/{n})")
    scan_s = max(full.seconds - fixed.seconds, 1e-9)
    print(
        f"scan rate / bare handshake rate: {bare_s / scan_s:.2f}x "
        f"(less the fixed cost; {bare_s / full.seconds:.2f}x whole run)"
    )
    # On a shared machine the wall-clock rates swing with the load; CPU per endpoint
    # does not, so the same ratio over CPU is the steadier figure.
    print(
        f"scan CPU rate / bare handshake CPU rate: {bare_cpu_s / full.cpu_s:.2f}x "
        "(whole run, fixed cost included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
