"""Property-based tests (hypothesis) of the scaling policy's invariants."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.scaling_policy import Decision, QueueState, Reason, ScalingConfig, ServiceState, decide, tasks_for

# Module-local settings (a loaded profile would change every other module's tests too).
thorough = settings(deadline=None, max_examples=300)

counts = st.integers(min_value=0, max_value=400)


@st.composite
def configs(draw: st.DrawFn) -> ScalingConfig:
    lo = draw(st.integers(min_value=0, max_value=20))
    hi = draw(st.integers(min_value=lo, max_value=60))
    return ScalingConfig(
        min_tasks=lo,
        max_tasks=hi,
        jobs_per_task=draw(st.integers(min_value=1, max_value=8)),
        scale_in_grace_s=draw(st.floats(min_value=0, max_value=900, allow_nan=False)),
    )


queues = st.builds(QueueState, visible=counts, in_flight=counts, delayed=counts)
services = st.builds(
    ServiceState,
    desired=st.integers(min_value=0, max_value=80),
    running=st.integers(min_value=0, max_value=80),
    pending=st.integers(min_value=0, max_value=80),
)
nows = st.floats(min_value=0, max_value=2e9, allow_nan=False)


@st.composite
def clocks(draw: st.DrawFn, now: float) -> float | None:
    """No clock, a clock in the past, or (clock skew) one in the future."""
    return draw(
        st.one_of(
            st.none(),
            st.floats(min_value=0, max_value=2000, allow_nan=False).map(lambda age: now - age),
            st.floats(min_value=0.001, max_value=100, allow_nan=False).map(lambda ahead: now + ahead),
        )
    )


@st.composite
def situations(draw: st.DrawFn) -> tuple[QueueState, ServiceState, ScalingConfig, float, float | None]:
    now = draw(nows)
    return draw(queues), draw(services), draw(configs()), now, draw(clocks(now))


def busy_tasks(queue: QueueState, config: ScalingConfig) -> int:
    return min(tasks_for(queue.in_flight, config.jobs_per_task), config.max_tasks)


@thorough
@given(situations())
def test_desired_stays_within_bounds(s: tuple[QueueState, ServiceState, ScalingConfig, float, float | None]) -> None:
    queue, service, config, now, since = s
    decision = decide(queue, service, config, now=now, surplus_since=since)
    assert config.min_tasks <= decision.desired <= config.max_tasks


@thorough
@given(situations())
def test_never_below_tasks_busy_with_jobs(
    s: tuple[QueueState, ServiceState, ScalingConfig, float, float | None],
) -> None:
    queue, service, config, now, since = s
    decision = decide(queue, service, config, now=now, surplus_since=since)
    assert decision.desired >= busy_tasks(queue, config)


@thorough
@given(situations())
def test_backlog_is_served_at_once(s: tuple[QueueState, ServiceState, ScalingConfig, float, float | None]) -> None:
    queue, service, config, now, since = s
    decision = decide(queue, service, config, now=now, surplus_since=since)
    demand = tasks_for(queue.visible + queue.in_flight, config.jobs_per_task)
    needed = min(max(demand, config.min_tasks), config.max_tasks)
    assert decision.desired >= needed
    if needed > service.desired:
        assert decision.desired == needed
        assert decision.reason in {Reason.BACKLOG, Reason.BELOW_MIN}


@thorough
@given(situations())
def test_scale_in_only_after_the_grace_period(
    s: tuple[QueueState, ServiceState, ScalingConfig, float, float | None],
) -> None:
    queue, service, config, now, since = s
    decision = decide(queue, service, config, now=now, surplus_since=since)
    if decision.desired < service.desired and service.desired <= config.max_tasks:
        assert decision.reason == Reason.SCALE_IN
        waited = 0.0 if since is None or since > now else now - since
        assert waited >= config.scale_in_grace_s


@thorough
@given(situations())
def test_count_change_and_clock_are_never_written_together(
    s: tuple[QueueState, ServiceState, ScalingConfig, float, float | None],
) -> None:
    queue, service, config, now, since = s
    decision = decide(queue, service, config, now=now, surplus_since=since)
    if decision.desired != service.desired:
        assert decision.surplus_since is None
    if decision.surplus_since is not None:
        assert decision.surplus_since <= now


@thorough
@given(situations(), st.sampled_from(["visible", "in_flight", "delayed"]), counts)
def test_monotone_in_backlog(
    s: tuple[QueueState, ServiceState, ScalingConfig, float, float | None], field: str, extra: int
) -> None:
    queue, service, config, now, since = s
    more = replace(queue, **{field: getattr(queue, field) + extra})
    fewer_decision = decide(queue, service, config, now=now, surplus_since=since)
    more_decision = decide(more, service, config, now=now, surplus_since=since)
    assert more_decision.desired >= fewer_decision.desired


@thorough
@given(
    queues,
    services,
    configs(),
    nows,
    st.lists(st.floats(min_value=0, max_value=400, allow_nan=False), min_size=1, max_size=40),
)
def test_no_flapping_on_a_steady_queue(
    queue: QueueState, service: ServiceState, config: ScalingConfig, start: float, steps: list[float]
) -> None:
    """Fed back its own decisions on an unchanging queue, the policy moves the count in
    one direction only and settles: at most one change (two when it starts out of bounds:
    clamp to max, then scale in)."""
    now, since, current = start, None, service
    seen = [service.desired]
    for step in steps:
        decision: Decision = decide(queue, current, config, now=now, surplus_since=since)
        current = replace(current, desired=decision.desired)
        since = decision.surplus_since
        seen.append(decision.desired)
        now += step
    changes = [b - a for a, b in itertools.pairwise(seen) if b != a]
    assert all(c > 0 for c in changes) or all(c < 0 for c in changes)
    in_bounds = config.min_tasks <= service.desired <= config.max_tasks
    assert len(changes) <= (1 if in_bounds else 2)


@thorough
@given(queues, services, configs(), nows)
def test_settles_after_one_grace_period(
    queue: QueueState, service: ServiceState, config: ScalingConfig, start: float
) -> None:
    """Three decisions a grace period apart (clamp, start the clock, scale in) reach a fixed point."""
    now, since, current = start, None, service
    for _ in range(3):
        decision = decide(queue, current, config, now=now, surplus_since=since)
        current, since = replace(current, desired=decision.desired), decision.surplus_since
        now += config.scale_in_grace_s + 1
    final = decide(queue, current, config, now=now + 1e6, surplus_since=since)
    assert final.desired == current.desired
    assert final.reason == Reason.STEADY
