"""When each endpoint and each of its checks is next due: per-target and per-check
intervals on a monotonic clock, with jitter."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from certvigil.config.checks import CheckName, ChecksToRun, schedule_of
from certvigil.config.expand import ScheduledTarget
from certvigil.targets.target import Target

OPTIONAL_CHECKS = (CheckName.REVOCATION, CheckName.PROTOCOLS, CheckName.GRADE)
"""The checks that run only when due; the certificate check runs on every scan."""


class Schedule:
    """Which endpoints are due, which of their checks, and when the next one will be.

    An endpoint is scanned when its certificate check is due (its ``cert`` interval,
    by default the target's interval) or when one of its other checks is; a scan runs
    the certificate check and every check due at that moment. A check without an
    interval of its own runs on every scan. After a run a check is due again its
    interval later, plus up to its jitter (drawn from ``rng``), so that a daily
    protocol enumeration of a large fleet spreads over the jitter window.

    Times are seconds on a monotonic clock, so a wall-clock jump neither skips nor
    repeats scans. Every check is due at ``start_s`` unless ``last_run_ago_s`` says
    when it last ran (the daemon reads that from the store, so a restart does not
    repeat a daily enumeration; on a fresh database everything is due at once). Only
    checks with an interval of their own are seeded: the certificate check and those
    that run with every scan are due at once on every start.

    A schedule built for a reloaded configuration takes over from ``previous``: an
    endpoint both configurations name keeps its last run times; new ones are due at
    ``start_s``.

    Args:
        targets: The endpoints, their intervals and check settings.
        start_s: When all of them are first due.
        previous: The schedule of the configuration this one replaces.
        rng: Random source of the per-check jitter.
        last_run_ago_s: Per endpoint, seconds since each check last ran.
    """

    def __init__(
        self,
        targets: Sequence[ScheduledTarget],
        *,
        start_s: float,
        previous: Schedule | None = None,
        rng: random.Random | None = None,
        last_run_ago_s: Mapping[Target, Mapping[CheckName, float]] | None = None,
    ) -> None:
        self._targets = {s.target: s for s in targets}
        self._start_s = start_s
        self._rng = rng or random.Random()
        self._ran_s: dict[tuple[Target, CheckName], float] = {}
        self._check_due_s: dict[tuple[Target, CheckName], float] = {}
        for target in self._targets:
            for name in (CheckName.CERT, *OPTIONAL_CHECKS):
                self._check_due_s[(target, name)] = start_s
        if previous is not None:
            for (target, name), ran_s in previous._ran_s.items():
                if target in self._targets:
                    self._set_ran(target, name, ran_s)
        if last_run_ago_s:
            self.seed(last_run_ago_s)

    def seed(
        self,
        last_run_ago_s: Mapping[Target, Mapping[CheckName, float]],
        *,
        every_check: bool = False,
    ) -> None:
        """Take when checks with an interval of their own last ran (seconds ago at the
        schedule's start), so a restart does not repeat them early; checks that run on
        every scan, and the certificate check, stay due at once.

        With ``every_check`` the certificate check and the checks that run with every
        scan are taken too, so an endpoint scanned recently is not scanned again before
        its interval (the agent, which keeps its run times in its outbox file and is
        often started from cron).
        """
        for target, ago in last_run_ago_s.items():
            if target not in self._targets:
                continue
            scheduled = self._targets[target]
            for name, ago_s in ago.items():
                if not every_check and name is CheckName.CERT:
                    continue
                if not every_check and schedule_of(scheduled.checks, name).interval_s is None:
                    continue
                if (target, name) in self._ran_s:
                    continue  # known from the schedule this one replaces
                self._set_ran(target, name, self._start_s - max(0.0, ago_s))

    def __len__(self) -> int:
        return len(self._targets)

    def _interval_s(self, scheduled: ScheduledTarget, name: CheckName) -> float:
        interval = schedule_of(scheduled.checks, name).interval_s
        # Without an interval of its own, a check follows the target's.
        return scheduled.interval_s if interval is None else interval

    def _set_ran(self, target: Target, name: CheckName, at_s: float) -> None:
        scheduled = self._targets[target]
        settings = schedule_of(scheduled.checks, name)
        self._ran_s[(target, name)] = at_s
        if name is not CheckName.CERT and settings.interval_s is None:
            # Runs with every scan: due whenever the endpoint is.
            self._check_due_s[(target, name)] = float("inf")
            return
        jitter = self._rng.uniform(0.0, settings.jitter_s) if settings.jitter_s > 0 else 0.0
        self._check_due_s[(target, name)] = at_s + self._interval_s(scheduled, name) + jitter

    def _enabled(self, scheduled: ScheduledTarget, name: CheckName) -> bool:
        return schedule_of(scheduled.checks, name).enabled

    def _endpoint_due_s(self, target: Target) -> float:
        scheduled = self._targets[target]
        return min(
            self._check_due_s[(target, name)]
            for name in (CheckName.CERT, *OPTIONAL_CHECKS)
            if name is CheckName.CERT or self._enabled(scheduled, name)
        )

    def due(self, now_s: float) -> tuple[ScheduledTarget, ...]:
        """Endpoints due at ``now_s``, in configuration order."""
        return tuple(s for t, s in self._targets.items() if self._endpoint_due_s(t) <= now_s)

    def checks_due(self, target: Target, now_s: float) -> ChecksToRun:
        """The optional checks a scan of ``target`` at ``now_s`` runs.

        A check that runs on every scan is due whenever the endpoint is scanned.
        """
        scheduled = self._targets[target]

        def due(name: CheckName) -> bool:
            if not self._enabled(scheduled, name):
                return False
            settings = schedule_of(scheduled.checks, name)
            return settings.interval_s is None or self._check_due_s[(target, name)] <= now_s

        return ChecksToRun(
            revocation=due(CheckName.REVOCATION),
            tls_config=due(CheckName.PROTOCOLS) or due(CheckName.GRADE),
        )

    def mark_scanned(self, target: Target, at_s: float, ran: ChecksToRun | None = None) -> None:
        """Record that ``target`` was scanned at ``at_s`` with the checks ``ran``.

        Args:
            target: The endpoint.
            at_s: When the scan started.
            ran: The optional checks it ran; ``None`` for those due at ``at_s``.
        """
        if ran is None:
            ran = self.checks_due(target, at_s)
        for name in ran.names:
            self._set_ran(target, name, at_s)

    def next_due_s(self) -> float | None:
        """When the earliest endpoint is due; ``None`` when there are none."""
        return min((self._endpoint_due_s(t) for t in self._targets), default=None)


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
