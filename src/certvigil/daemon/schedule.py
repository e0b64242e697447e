"""When each endpoint is next due: per-target intervals on a monotonic clock, with jitter."""

from __future__ import annotations

import random
from collections.abc import Sequence

from certvigil.config.expand import ScheduledTarget
from certvigil.targets.target import Target


class Schedule:
    """Which endpoints are due, and when the next one will be.

    Every endpoint is due at ``start_s``; once scanned at ``t`` it is due again at
    ``t + interval_s``. Times are seconds on a monotonic clock, so that a wall-clock
    jump neither skips nor repeats scans.

    A schedule built for a reloaded configuration takes over from ``previous``: an
    endpoint both configurations name is due its (new) interval after it was last
    scanned, not at once; new endpoints are due at ``start_s``.

    Args:
        targets: The endpoints and their intervals.
        start_s: When all of them are first due.
        previous: The schedule of the configuration this one replaces.
    """

    def __init__(
        self,
        targets: Sequence[ScheduledTarget],
        *,
        start_s: float,
        previous: Schedule | None = None,
    ) -> None:
        self._targets = {s.target: s for s in targets}
        self._due_s = dict.fromkeys(self._targets, start_s)
        self._scanned_s: dict[Target, float] = {}
        if previous is not None:
            for target, scanned_s in previous._scanned_s.items():
                if target in self._targets:
                    self._scanned_s[target] = scanned_s
                    self._due_s[target] = scanned_s + self._targets[target].interval_s

    def __len__(self) -> int:
        return len(self._targets)

    def due(self, now_s: float) -> tuple[ScheduledTarget, ...]:
        """Endpoints due at ``now_s``, in configuration order."""
        return tuple(self._targets[t] for t, due in self._due_s.items() if due <= now_s)

    def mark_scanned(self, target: Target, at_s: float) -> None:
        """Record that ``target`` was scanned at ``at_s``; it is due again an interval later."""
        self._scanned_s[target] = at_s
        self._due_s[target] = at_s + self._targets[target].interval_s

    def next_due_s(self) -> float | None:
        """When the earliest endpoint is due; ``None`` when there are none."""
        return min(self._due_s.values(), default=None)


def sleep_until_s(
    next_due_s: float | None, *, now_s: float, jitter_s: float, rng: random.Random
) -> float:
    """How long to wait before the next cycle: until the next endpoint is due, plus jitter.

    Args:
        next_due_s: When the earliest endpoint is due (monotonic seconds).
        now_s: The time now on the same clock.
        jitter_s: Up to this many seconds are added at random.
        rng: The random source (seeded in tests).

    Returns:
        Seconds to wait, 0 or more.
    """
    if next_due_s is None:
        return jitter_s
    wait_s = max(0.0, next_due_s - now_s)
    return wait_s + (rng.uniform(0.0, jitter_s) if jitter_s > 0 else 0.0)
