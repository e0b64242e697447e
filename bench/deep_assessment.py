"""Benchmark: certvigil's deep TLS assessment against testssl.sh and sslscan on loopback.

Starts ``openssl s_server`` endpoints on 127.0.0.1 in four configurations (modern,
legacy with TLS 1.0/1.1 and weak suites, TLS 1.3 only, server-ordered), then times

* certvigil's full deep assessment (probe + findings + grade + Mozilla profiles) of
  one endpoint and of all of them,
* ``sslscan`` and ``testssl.sh`` (Debian packages, installed with apt-get when
  missing) over the same endpoints, or over a sample of them when a tool is too slow
  for the time budget (the total is then extrapolated and marked so),

and prints the times side by side and how far the protocol and cipher verdicts agree
with certvigil's (per endpoint: same accepted protocols; same accepted suites per
protocol).  Not a test: it prints figures.

    .venv/bin/python bench/deep_assessment.py [--endpoints 100] [--testssl-sample 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from certvigil.analysis.deep_assessment import assess_tls
from certvigil.analysis.grade import CertificateVerdicts
from certvigil.analysis.model import KeyType
from certvigil.observed.tls_config import TlsConfigObservation
from certvigil.probe.tls_config import observe_tls_config
from certvigil.targets.target import Target
from certvigil.tls.cipher_suites import SUITES
from certvigil.tls.records import TlsProtocol

CONFIGS: dict[str, list[str]] = {
    "modern": ["-cipher", "ECDHE+AESGCM:ECDHE+CHACHA20"],
    "legacy": ["-cipher", "ALL:@SECLEVEL=0"],
    "tls13-only": ["-tls1_3"],
    "server-order": [
        "-no_tls1_3",
        "-serverpref",
        "-cipher",
        "ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA:ECDHE-RSA-AES128-SHA",
    ],
}
VERDICTS = CertificateVerdicts(
    is_trusted=True,
    hostname_matches=True,
    key_type=KeyType.RSA,
    key_bits=2048,
    signature_hash="sha256",
)
PROTOCOL_NAMES = {
    TlsProtocol.SSL_2_0: "SSLv2",
    TlsProtocol.SSL_3_0: "SSLv3",
    TlsProtocol.TLS_1_0: "TLSv1.0",
    TlsProtocol.TLS_1_1: "TLSv1.1",
    TlsProtocol.TLS_1_2: "TLSv1.2",
    TlsProtocol.TLS_1_3: "TLSv1.3",
}
OPENSSL_TO_CODE = {s.openssl_name: code for code, s in SUITES.items()}


@dataclass
class Verdict:
    """One tool's protocol and cipher verdict on one endpoint."""

    protocols: set[str] = field(default_factory=set)
    suites: dict[str, set[int]] = field(default_factory=dict)


@dataclass
class Endpoint:
    """A running s_server."""

    config: str
    port: int
    process: subprocess.Popen[str]


def write_certificate(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def start_endpoint(config: str, cert: Path, key: Path) -> Endpoint:
    process = subprocess.Popen(
        [
            "openssl",
            "s_server",
            "-accept",
            "127.0.0.1:0",
            "-cert",
            str(cert),
            "-key",
            str(key),
            "-www",
            *CONFIGS[config],
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("ACCEPT"):
            return Endpoint(config, int(line.strip().rsplit(":", 1)[1]), process)
    raise RuntimeError(f"s_server ({config}) did not start")


def ensure_tool(command: str, package: str) -> bool:
    """Install ``package`` with apt-get when ``command`` is missing; say whether it is there."""
    if shutil.which(command):
        return True
    print(f"installing {package} with apt-get ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*prefix, "apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(
        [*prefix, "apt-get", "install", "-y", "-qq", package],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return shutil.which(command) is not None


def certvigil_verdict(obs: TlsConfigObservation) -> Verdict:
    verdict = Verdict()
    for support in obs.protocols:
        if support.is_accepted:
            name = PROTOCOL_NAMES[support.protocol]
            verdict.protocols.add(name)
            if support.protocol is not TlsProtocol.SSL_2_0:
                verdict.suites[name] = set(support.cipher_suites)
    return verdict


async def run_certvigil(
    endpoints: list[Endpoint],
) -> tuple[dict[str, float], float, list[Verdict]]:
    async def one(endpoint: Endpoint) -> Verdict:
        obs = await observe_tls_config(Target(host="127.0.0.1", port=endpoint.port))
        if not isinstance(obs, TlsConfigObservation):
            raise RuntimeError(f"certvigil could not assess port {endpoint.port}: {obs}")
        assess_tls(obs, VERDICTS)
        return certvigil_verdict(obs)

    singles: dict[str, float] = {}
    for endpoint in endpoints[: len(CONFIGS)]:
        started = time.perf_counter()
        await one(endpoint)
        singles[endpoint.config] = time.perf_counter() - started
    started = time.perf_counter()
    verdicts = await asyncio.gather(*(one(e) for e in endpoints))
    return singles, time.perf_counter() - started, list(verdicts)


_SSLSCAN_PROTOCOL = {
    "SSLv2": "SSLv2",
    "SSLv3": "SSLv3",
    "TLSv1.0": "TLSv1.0",
    "TLSv1.1": "TLSv1.1",
    "TLSv1.2": "TLSv1.2",
    "TLSv1.3": "TLSv1.3",
}


def run_sslscan(port: int) -> Verdict:
    out = subprocess.run(
        [
            "sslscan",
            "--no-colour",
            "--xml=-",
            "--no-check-certificate",
            "--no-heartbleed",
            "--no-groups",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    ).stdout
    verdict = Verdict()
    for kind, version in re.findall(r'<protocol type="(\w+)" version="([\d.]+)" enabled="1"', out):
        verdict.protocols.add(f"SSLv{version[0]}" if kind == "ssl" else f"TLSv{version}")
    for version, name in re.findall(
        r'<cipher status="\w+" sslversion="([\w.]+)"[^>]*? cipher="([^"]+)"', out
    ):
        proto = _SSLSCAN_PROTOCOL.get(version, version)
        code = OPENSSL_TO_CODE.get(name)
        if code is not None:
            verdict.suites.setdefault(proto, set()).add(code)
    return verdict


_TESTSSL_PROTOCOL = {
    "SSLv2": "SSLv2",
    "SSLv3": "SSLv3",
    "TLS1": "TLSv1.0",
    "TLS1_1": "TLSv1.1",
    "TLS1_2": "TLSv1.2",
    "TLS1_3": "TLSv1.3",
}
_TESTSSL_CIPHER_PROTOCOL = {
    "ssl2": "SSLv2",
    "ssl3": "SSLv3",
    "tls1": "TLSv1.0",
    "tls1_1": "TLSv1.1",
    "tls1_2": "TLSv1.2",
    "tls1_3": "TLSv1.3",
}


def run_testssl(port: int, workdir: Path) -> Verdict:
    command = shutil.which("testssl.sh") or shutil.which("testssl") or "testssl"
    json_path = workdir / f"testssl-{port}.json"
    json_path.unlink(missing_ok=True)
    subprocess.run(
        [
            command,
            "--quiet",
            "--warnings",
            "off",
            "--color",
            "0",
            "-p",
            "-E",
            "--jsonfile",
            str(json_path),
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    verdict = Verdict()
    if not json_path.exists():
        return verdict
    for item in json.loads(json_path.read_text() or "[]"):
        ident, finding = item.get("id", ""), item.get("finding", "")
        if ident in _TESTSSL_PROTOCOL and finding.startswith("offered"):
            verdict.protocols.add(_TESTSSL_PROTOCOL[ident])
        match = re.fullmatch(r"cipher-(tls1_3|tls1_2|tls1_1|tls1|ssl3)_x([0-9a-f]+)", ident)
        if match:
            proto = _TESTSSL_CIPHER_PROTOCOL[match.group(1)]
            verdict.suites.setdefault(proto, set()).add(int(match.group(2), 16))
    return verdict


def agreement(ours: list[Verdict], theirs: list[Verdict]) -> tuple[int, int, list[str]]:
    """(endpoints with the same protocols, endpoints with the same suites, differences)."""
    same_protocols = same_suites = 0
    notes: list[str] = []
    for index, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        same_protocols += a.protocols == b.protocols
        protos = a.protocols | b.protocols
        if all(a.suites.get(p, set()) == b.suites.get(p, set()) for p in protos):
            same_suites += 1
        elif len(notes) < 6:
            for p in sorted(protos):
                only_a = {
                    SUITES[c].openssl_name for c in a.suites.get(p, set()) - b.suites.get(p, set())
                }
                only_b = {
                    SUITES[c].openssl_name if c in SUITES else hex(c)
                    for c in b.suites.get(p, set()) - a.suites.get(p, set())
                }
                if only_a or only_b:
                    notes.append(
                        f"endpoint {index} {p}: only certvigil {sorted(only_a)}, "
                        f"only the other {sorted(only_b)}"
                    )
    return same_protocols, same_suites, notes


def timed_tool(
    name: str, run: object, endpoints: list[Endpoint], sample: int, budget_s: float
) -> tuple[dict[str, float], float | None, int, list[Verdict]]:
    """(seconds per configuration, all-endpoint seconds or extrapolation, count, verdicts)."""
    verdicts: list[Verdict] = []
    durations: list[float] = []
    by_config: dict[str, float] = {}
    started = time.perf_counter()
    for endpoint in endpoints[:sample]:
        if durations and time.perf_counter() - started > budget_s:
            break
        one = time.perf_counter()
        verdicts.append(run(endpoint.port))  # type: ignore[operator]
        durations.append(time.perf_counter() - one)
        by_config.setdefault(endpoint.config, durations[-1])
        print(
            f"  {name}: endpoint {len(durations)} ({endpoint.config}) {durations[-1]:.1f} s",
            file=sys.stderr,
        )
    if not durations:
        return by_config, None, 0, verdicts
    total = sum(durations) * len(endpoints) / len(durations)
    return by_config, total, len(durations), verdicts


@dataclass
class Row:
    """One tool's figures."""

    name: str
    by_config: dict[str, float]
    total_s: float | None
    count: int
    agreement: str = ""
    notes: str = ""


def report(rows: list[Row], endpoint_count: int) -> None:
    print(
        f"deep assessment of loopback endpoints ({', '.join(CONFIGS)} in turn; "
        f"{os.cpu_count()} CPUs)"
    )
    print()
    print("seconds for one endpoint, by configuration")
    print(f"{'configuration':<14}" + "".join(f"{r.name:>12}" for r in rows))
    for config in CONFIGS:
        cells = [f"{r.by_config[config]:.2f}" if config in r.by_config else "-" for r in rows]
        print(f"{config:<14}" + "".join(f"{c:>12}" for c in cells))
    print()
    print(
        f"{'tool':<11} {f'{endpoint_count} endpoints':>16} {'run on':>7}  agreement with certvigil"
    )
    for r in rows:
        extrapolated = 0 < r.count < endpoint_count
        many = f"{r.total_s:.1f} s{'*' if extrapolated else ''}" if r.total_s is not None else "-"
        print(f"{r.name:<11} {many:>16} {r.count:>7}  {r.agreement}")
    base = rows[0]
    for r in rows[1:]:
        common = [c for c in r.by_config if c in base.by_config]
        if not common or r.total_s is None or base.total_s is None:
            continue
        ratios = ", ".join(f"{c} {r.by_config[c] / base.by_config[c]:.0f}x" for c in common)
        print(
            f"certvigil vs {r.name}: one endpoint {ratios}; "
            f"{endpoint_count} endpoints {r.total_s / base.total_s:.0f}x"
        )
    print("* extrapolated from the endpoints actually run (sample size / time budget)")
    for r in rows:
        if r.notes:
            print(f"differences ({r.name}): {r.notes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--sslscan-sample", type=int, default=100)
    parser.add_argument("--testssl-sample", type=int, default=4)
    parser.add_argument(
        "--tool-budget-s",
        type=float,
        default=240.0,
        help="stop running a comparison tool after this many seconds",
    )
    args = parser.parse_args()
    have_sslscan = ensure_tool("sslscan", "sslscan")
    have_testssl = ensure_tool("testssl", "testssl.sh") or bool(shutil.which("testssl.sh"))

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cert, key = write_certificate(workdir)
        names = list(CONFIGS)
        endpoints = [
            start_endpoint(names[i % len(names)], cert, key) for i in range(args.endpoints)
        ]
        try:
            singles, all_s, ours = asyncio.run(run_certvigil(endpoints))
            rows = [Row("certvigil", singles, all_s, len(endpoints))]
            tools = (
                ("sslscan", have_sslscan, run_sslscan, args.sslscan_sample),
                (
                    "testssl.sh",
                    have_testssl,
                    lambda p: run_testssl(p, workdir),
                    args.testssl_sample,
                ),
            )
            for name, present, run, sample in tools:
                if not present:
                    rows.append(Row(name, {}, None, 0, "not installed"))
                    continue
                by_config, total, count, theirs = timed_tool(
                    name, run, endpoints, sample, args.tool_budget_s
                )
                same_p, same_s, notes = agreement(ours[:count], theirs)
                agree = f"{same_p}/{count} same protocols, {same_s}/{count} same suites"
                rows.append(Row(name, by_config, total, count, agree, "; ".join(notes)))
        finally:
            for endpoint in endpoints:
                endpoint.process.terminate()
            for endpoint in endpoints:
                endpoint.process.wait(timeout=10)
                if endpoint.process.stdout is not None:
                    endpoint.process.stdout.close()
    report(rows, len(endpoints))


if __name__ == "__main__":
    main()
