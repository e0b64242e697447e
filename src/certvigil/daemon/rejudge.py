"""Re-judging stored observations with today's policy and trust store, without a scan.

Each endpoint's latest observation, kept whole by the store, is judged again
(``analysis.judge``) with the trust store and thresholds the configuration names now (a
CA file added, thresholds changed), and the new judgement replaces the stored one; the
alert engine then opens and resolves alerts for it as after a scan (an "untrusted"
alert resolves once the new CA makes the chain verify). Nothing touches the network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.rules import AlertEvent, AlertPolicy
from certvigil.analysis.judge import judge
from certvigil.analysis.policy import AnalysisPolicy
from certvigil.analysis.trust import TrustStore
from certvigil.config.expand import ScheduledTarget
from certvigil.config.model import TrustSettings
from certvigil.store import Store
from certvigil.store.observations import StoredObservation, latest_observations, record_judgement
from certvigil.targets.target import Target


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejudged:
    """One endpoint's observation judged again.

    Attributes:
        target: The endpoint.
        observation_id: The stored observation.
        observed_at_utc: When it was observed.
        verdict_before: The stored verdict (``ok``, ``warning``, ``critical``).
        verdict_after: Today's verdict; ``None`` when the observation could not be read.
        trusted_before: The stored chain verdict.
        trusted_after: Today's chain verdict.
        problem: Why the stored observation could not be read, ``None`` when it was.
        events: Alert events the new judgement caused (empty for a dry run).
    """

    target: Target
    observation_id: int
    observed_at_utc: datetime | None
    verdict_before: str
    verdict_after: str | None
    trusted_before: bool | None
    trusted_after: bool | None
    problem: str | None = None
    events: tuple[AlertEvent, ...] = ()

    @property
    def changed(self) -> bool:
        """The verdict or the chain verdict differs from the stored one."""
        return (self.verdict_after, self.trusted_after) != (
            self.verdict_before,
            self.trusted_before,
        )


def rejudge_store(
    store: Store,
    *,
    targets: Sequence[ScheduledTarget],
    default_trust: TrustSettings,
    trust_for: Callable[[TrustSettings], TrustStore],
    alert_policy: AlertPolicy,
    engine: AlertEngine | None,
    now: datetime,
    base_policy: AnalysisPolicy | None = None,
) -> list[Rejudged]:
    """Judge every endpoint's latest kept observation again and record the result.

    Args:
        store: The inventory.
        targets: The configuration's endpoints: their trust settings and thresholds
            apply; stored endpoints the configuration no longer names get the global
            ones.
        default_trust: The configuration's global trust settings.
        trust_for: Loads (and caches) a trust store for settings.
        alert_policy: Thresholds (global and per target) as the alert rules use them.
        engine: Applies the alert rules to each new judgement; ``None`` for a dry run
            (nothing is written).
        now: The evaluation time (aware UTC).
        base_policy: Minimums and other knobs besides the thresholds.

    Returns:
        One entry per endpoint with a kept observation, in endpoint order.
    """
    by_target: Mapping[Target, ScheduledTarget] = {s.target: s for s in targets}
    base = base_policy or AnalysisPolicy()
    with store.read() as connection:
        stored = list(latest_observations(connection))
    results: list[Rejudged] = []
    for item in stored:
        results.append(
            _rejudge_one(
                store,
                item,
                scheduled=by_target.get(item.target),
                default_trust=default_trust,
                trust_for=trust_for,
                policy=replace(
                    base,
                    expiry_thresholds=alert_policy.thresholds_for(item.target),
                    day_threshold_max_fraction=alert_policy.day_threshold_max_fraction,
                ),
                engine=engine,
                now=now,
            )
        )
    return results


def _rejudge_one(
    store: Store,
    item: StoredObservation,
    *,
    scheduled: ScheduledTarget | None,
    default_trust: TrustSettings,
    trust_for: Callable[[TrustSettings], TrustStore],
    policy: AnalysisPolicy,
    engine: AlertEngine | None,
    now: datetime,
) -> Rejudged:
    observation = item.observation
    if observation is None:
        return Rejudged(
            target=item.target,
            observation_id=item.observation_id,
            observed_at_utc=None,
            verdict_before=item.previous_verdict,
            verdict_after=None,
            trusted_before=item.previous_trusted,
            trusted_after=None,
            problem=item.problem,
        )
    trust = trust_for(scheduled.trust if scheduled is not None else default_trust)
    report = judge(observation, now, trust, policy)
    events: tuple[AlertEvent, ...] = ()
    if engine is not None:
        with store.write() as connection:
            record_judgement(connection, item.observation_id, item.endpoint_id, report)
            events = engine.process_in(connection, report, now, observation_id=item.observation_id)
    chain = report.chain
    return Rejudged(
        target=item.target,
        observation_id=item.observation_id,
        observed_at_utc=observation.observed_at_utc,
        verdict_before=item.previous_verdict,
        verdict_after=report.verdict.value,
        trusted_before=item.previous_trusted,
        trusted_after=chain.is_trusted if chain is not None else None,
        events=events,
    )
