"""The ``--csv`` output: a header, then one row per endpoint, written as reports arrive."""

from __future__ import annotations

import csv
from typing import TextIO

from certvigil.analysis.model import EndpointReport
from certvigil.output.json_doc import verdict_text
from certvigil.output.safe_text import safe_csv_row
from certvigil.output.summary import days_remaining

COLUMNS: tuple[str, ...] = (
    "endpoint",
    "host",
    "port",
    "sni",
    "starttls",
    "status",
    "verdict",
    "subject",
    "issuer",
    "not_before_utc",
    "not_after_utc",
    "days_remaining",
    "key",
    "signature_algorithm",
    "sha256",
    "san_dns",
    "protocol",
    "cipher",
    "is_trusted",
    "hostname_matches",
    "failure_kind",
    "failure_detail",
    "findings",
    "evaluated_at_utc",
    "revocation_status",
)
"""The header, in order. Lists inside a cell are joined with ``;``; a missing value is
empty; booleans are ``true``/``false``; times are ISO 8601 UTC. A text cell that would
start a spreadsheet formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) gets a
leading ``'`` (``certvigil.output.safe_text.csv_cell``)."""

_NUMBER_COLUMNS = frozenset({"port", "days_remaining"})


def _bool(value: bool | None) -> str:
    if value is None:
        return ""
    return "true" if value else "false"


def row_for(report: EndpointReport) -> dict[str, str]:
    """The CSV cells for one report, keyed by column name.

    Args:
        report: The endpoint's report.

    Returns:
        A value (possibly empty) for every name in ``COLUMNS``.
    """
    target = report.target
    leaf = report.leaf
    observation = report.observation
    failure = report.failure
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        endpoint=target.endpoint,
        host=target.host,
        port=str(target.port),
        sni=target.sni or "",
        starttls=target.starttls.value if target.starttls else "",
        status="failed" if report.is_failed else "observed",
        verdict=verdict_text(report),
        hostname_matches=_bool(report.hostname_matches),
        findings=";".join(finding.code for finding in report.findings),
        evaluated_at_utc=report.evaluated_at_utc.isoformat(),
    )
    if leaf is not None:
        key = f"{leaf.key_type.value}-{leaf.key_curve or leaf.key_bits}"
        row.update(
            subject=leaf.subject,
            issuer=leaf.issuer,
            not_before_utc=leaf.not_before_utc.isoformat(),
            not_after_utc=leaf.not_after_utc.isoformat(),
            days_remaining=str(days_remaining(leaf.not_after_utc, now=report.evaluated_at_utc)),
            key=key,
            signature_algorithm=leaf.signature_algorithm,
            sha256=leaf.sha256_hex,
            san_dns=";".join(leaf.san_dns),
        )
    if report.chain is not None:
        row["is_trusted"] = _bool(report.chain.is_trusted)
    if observation is not None:
        row.update(protocol=observation.protocol, cipher=observation.cipher)
    if report.revocation is not None and report.revocation.leaf_status is not None:
        row["revocation_status"] = report.revocation.leaf_status.value
    if failure is not None:
        row.update(failure_kind=failure.kind.value, failure_detail=failure.detail)
    return safe_csv_row(row, numbers=_NUMBER_COLUMNS)


class CsvWriter:
    """Writes the header on ``begin`` and one row per ``write``, flushing each."""

    def __init__(self, stream: TextIO) -> None:
        """Prepare to write to ``stream`` (stdout or an ``--output`` file).

        Args:
            stream: A text stream; rows end in ``\\r\\n`` as RFC 4180 says.
        """
        self._stream = stream
        self._writer = csv.DictWriter(stream, fieldnames=COLUMNS)

    def begin(self) -> None:
        """Write the header row."""
        self._writer.writeheader()

    def write(self, report: EndpointReport) -> None:
        """Write one endpoint's row."""
        self._writer.writerow(row_for(report))
        self._stream.flush()
