"""AWS calls per scaling decision, counted with a botocore ``before-call`` hook on the
scaler's own clients: at most 3 per decision, and one UpdateService exactly when the
desired count changes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from scaler_testkit import GRACE_S, Scaler, World

T0 = 1_764_064_800.0
READS = {"GetQueueAttributes": 1, "DescribeServices": 1}


def check_budget(scaler: Scaler, response: dict[str, Any]) -> Counter[str]:
    calls = scaler.counter.calls
    assert scaler.counter.total <= 3, calls
    assert calls["UpdateService"] == (1 if response["changed"] else 0), calls
    assert scaler.counter.attempts == calls  # no hidden retries in these cases
    return calls


def test_calls_per_decision_through_a_whole_cycle(world: World, scaler: Scaler, events: Any) -> None:
    cases: list[tuple[str, Counter[str]]] = []

    def decide(label: str, event: dict[str, Any], now: float) -> None:
        response = scaler(event, now=now)
        cases.append((label, Counter(check_budget(scaler, response))))

    decide("steady, empty queue", events.schedule(), T0)
    world.send(3)
    decide("scale out from zero", events.alarm(), T0 + 1)
    decide("steady, backlog served", events.schedule(), T0 + 2)
    world.finish(world.take(3))
    decide("surplus: grace period starts", events.schedule(), T0 + 60)
    decide("hold during grace", events.schedule(), T0 + 120)
    decide("scale in after grace", events.schedule(), T0 + 60 + GRACE_S)
    decide("stale clock removed", events.schedule(), T0 + 120 + GRACE_S)
    decide("steady at zero", events.schedule(), T0 + 180 + GRACE_S)

    assert cases == [
        ("steady, empty queue", Counter(READS)),
        ("scale out from zero", Counter({**READS, "UpdateService": 1})),
        ("steady, backlog served", Counter(READS)),
        ("surplus: grace period starts", Counter({**READS, "TagResource": 1})),
        ("hold during grace", Counter(READS)),
        ("scale in after grace", Counter({**READS, "UpdateService": 1})),
        ("stale clock removed", Counter({**READS, "UntagResource": 1})),
        ("steady at zero", Counter(READS)),
    ]


def test_scale_out_during_grace_is_one_update_and_no_untag(world: World, scaler: Scaler, events: Any) -> None:
    world.set_desired(2)
    scaler(events.schedule(), now=T0)  # grace starts
    world.send(4)
    response = scaler(events.nudge(), now=T0 + 5)
    assert check_budget(scaler, response) == Counter({**READS, "UpdateService": 1})
    assert world.desired() == 4


def test_work_returning_during_grace_stops_the_clock_in_one_write(world: World, scaler: Scaler, events: Any) -> None:
    world.set_desired(2)
    scaler(events.schedule(), now=T0)
    world.send(2)
    response = scaler(events.alarm(), now=T0 + 5)
    assert check_budget(scaler, response) == Counter({**READS, "UntagResource": 1})


def test_a_burst_of_nudges_on_a_served_queue_only_reads(world: World, scaler: Scaler, events: Any) -> None:
    world.send(5)
    scaler(events.alarm(), now=T0)
    for i in range(10):
        response = scaler(events.nudge(f"job {i} submitted"), now=T0 + i)
        assert check_budget(scaler, response) == Counter(READS)
    assert world.desired() == 5
