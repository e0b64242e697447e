"""The automatic worker count: one process for small scans, one per CPU for large ones."""

from certvigil.scan.workers import AUTO_WORKERS_MIN_TARGETS, choose_workers
from certvigil.targets.target import Target


def _targets(n: int) -> list[Target]:
    return [Target(host=f"127.0.{i // 250}.{i % 250 + 1}", port=443) for i in range(n)]


def test_small_scan_runs_in_one_process_and_keeps_every_target() -> None:
    """Fewer targets than the threshold: one worker, every target once, in order."""
    targets = _targets(AUTO_WORKERS_MIN_TARGETS - 1)

    workers, stream = choose_workers(iter(targets), cpus=4)

    assert workers == 1
    assert list(stream) == targets


def test_large_scan_gets_one_worker_per_cpu_and_keeps_every_target() -> None:
    """At the threshold: one worker per CPU, the peeked targets first, none lost."""
    targets = _targets(AUTO_WORKERS_MIN_TARGETS + 5)

    workers, stream = choose_workers(iter(targets), cpus=3)

    assert workers == 3
    assert list(stream) == targets


def test_large_scan_reads_only_the_threshold_ahead() -> None:
    """The lookahead stops at the threshold, so a huge target list stays lazy."""
    consumed = 0

    def endless():
        nonlocal consumed
        i = 0
        while True:
            consumed += 1
            yield Target(host=f"127.1.{(i // 250) % 250}.{i % 250 + 1}", port=443)
            i += 1

    workers, _ = choose_workers(endless(), cpus=2)

    assert workers == 2
    assert consumed == AUTO_WORKERS_MIN_TARGETS
