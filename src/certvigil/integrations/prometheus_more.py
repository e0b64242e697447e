"""Metrics of the CT watch and of distributed scan workers, for the inventory's ``/metrics``.

Each function is a ``MetricsSource`` (``integrations.prometheus_store``): it reads on the
inventory's read transaction and returns families. Labels are bounded: one series per
CT log the watch reads (tens) and per scan worker (as many as were started).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from certvigil.integrations.prometheus import Family, MetricType, Sample

if TYPE_CHECKING:
    from sqlalchemy import Connection


def ct_log_metrics(connection: Connection, now: datetime) -> Iterable[Family]:
    """Per CT log: tree size, position, backlog in entries and seconds, rate, faults."""
    from certvigil.ct.watch.persist import list_logs

    logs = list_logs(connection)
    if not logs:
        return ()
    tree, position, backlog, lag, rate, errors, success = ([] for _ in range(7))
    for log in logs:
        labels = (("log", log.description[:100]),)
        state = log.state
        size = state.tree_size if state.tree_size is not None else state.position
        tree.append(Sample(labels, float(size)))
        position.append(Sample(labels, float(state.position)))
        backlog.append(Sample(labels, float(max(size - state.position, 0))))
        if state.head_timestamp and log.last_entry_timestamp_ms is not None:
            behind_ms = max(state.head_timestamp - log.last_entry_timestamp_ms, 0)
            lag.append(Sample(labels, behind_ms / 1000.0 if size > state.position else 0.0))
        if log.entries_per_second is not None:
            rate.append(Sample(labels, log.entries_per_second))
        errors.append(Sample(labels, float(log.errors_total)))
        if state.last_success is not None:
            success.append(Sample(labels, state.last_success.timestamp()))
    return (
        Family(
            name="certvigil_ct_log_tree_size",
            type=MetricType.GAUGE,
            help="Size of the last verified tree head of the log.",
            samples=tuple(tree),
        ),
        Family(
            name="certvigil_ct_log_position",
            type=MetricType.GAUGE,
            help="Entries of the log processed so far.",
            samples=tuple(position),
        ),
        Family(
            name="certvigil_ct_log_backlog_entries",
            type=MetricType.GAUGE,
            help="Entries of the verified tree not yet processed.",
            samples=tuple(backlog),
        ),
        Family(
            name="certvigil_ct_log_backlog_seconds",
            type=MetricType.GAUGE,
            help="Age of the tree head minus age of the last entry processed.",
            samples=tuple(lag),
        ),
        Family(
            name="certvigil_ct_log_entries_per_second",
            type=MetricType.GAUGE,
            help="Entries per second of the last pass over the log.",
            samples=tuple(rate),
        ),
        Family(
            name="certvigil_ct_log_errors_total",
            type=MetricType.COUNTER,
            help="Passes over the log that ended in a fault.",
            samples=tuple(errors),
        ),
        Family(
            name="certvigil_ct_log_last_success_timestamp_seconds",
            type=MetricType.GAUGE,
            help="When a pass last reached the log's tree head.",
            samples=tuple(success),
        ),
    )


def scan_worker_metrics(connection: Connection, now: datetime) -> Iterable[Family]:
    """Per distributed scan worker: endpoints and shards done, rate, CPU, heartbeat age."""
    from certvigil.store.distributed import workers

    rows = workers(connection)
    if not rows:
        return ()
    endpoints, shards, rate, cpu, age = ([] for _ in range(5))
    for row in rows:
        labels = (("worker", row.name[:100]),)
        endpoints.append(Sample(labels, float(row.endpoints_done)))
        shards.append(Sample(labels, float(row.shards_done)))
        rate.append(Sample(labels, row.endpoints_per_s))
        cpu.append(Sample(labels, row.cpu_s))
        age.append(Sample(labels, max((now - row.heartbeat_at_utc).total_seconds(), 0.0)))
    return (
        Family(
            name="certvigil_worker_endpoints_total",
            type=MetricType.COUNTER,
            help="Endpoints the worker recorded since it started.",
            samples=tuple(endpoints),
        ),
        Family(
            name="certvigil_worker_shards_total",
            type=MetricType.COUNTER,
            help="Shards the worker finished since it started.",
            samples=tuple(shards),
        ),
        Family(
            name="certvigil_worker_endpoints_per_second",
            type=MetricType.GAUGE,
            help="The worker's endpoints per second since it started.",
            samples=tuple(rate),
        ),
        Family(
            name="certvigil_worker_cpu_seconds_total",
            type=MetricType.COUNTER,
            help="CPU seconds the worker process used.",
            samples=tuple(cpu),
        ),
        Family(
            name="certvigil_worker_heartbeat_age_seconds",
            type=MetricType.GAUGE,
            help="Seconds since the worker's last heartbeat.",
            samples=tuple(age),
        ),
    )


INVENTORY_EXTRAS = (ct_log_metrics, scan_worker_metrics)
"""The sources ``/metrics`` adds to the inventory's own families."""
