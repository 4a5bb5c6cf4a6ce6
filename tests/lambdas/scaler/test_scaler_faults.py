"""Fault injection: AWS throttles the scaler's calls. Throttling is injected in front of
moto with a first-tier botocore ``before-send`` hook, so botocore's standard retry mode
really retries; its backoff delay is set to zero to keep the tests quick."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from scaler_testkit import GRACE_S, CallCounter, Scaler, World, build_world, scaler_environment

from aws.ecs_service import CLOCK_TAG
from jobs.errors import Throttled

T0 = 1_764_064_800.0
MAX_WORKERS = 10


class _Body:
    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._payload


class Throttler:
    """Answers the next N HTTP attempts of chosen operations with ThrottlingException.

    botocore emits ``before-send`` to every handler and uses the first response; handlers
    on ``before-send.<service>.*`` run before moto's catch-all ``before-send``. So that moto
    does not also carry out the throttled request, the attempt's URL is pointed at a host
    moto does not serve (botocore builds a fresh request for each retry)."""

    def __init__(self, client: Any) -> None:
        self.left: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        prefix = client.meta.service_model.endpoint_prefix
        client.meta.events.register_first(f"before-send.{prefix}.*", self._inject)

    def arm(self, operation: str, times: int) -> Throttler:
        self.left[operation] = times
        return self

    def disarm(self) -> None:
        self.left.clear()

    def _inject(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        if self.left[operation] <= 0:
            return None
        self.left[operation] -= 1
        self.sent[operation] += 1
        request.url = "https://throttled.invalid/"
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        return AWSResponse(request.url, 400, {"x-amzn-RequestId": "throttled"}, _Body(body))


def throttle(client: Any, operation: str, times: int) -> Throttler:
    return Throttler(client).arm(operation, times)


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)


def test_clients_use_standard_retry_mode(world: World) -> None:
    from scaler.wiring import client

    for name in ("sqs", "ecs"):
        assert client(name).meta.config.retries == {"mode": "standard", "total_max_attempts": 4}
        assert client(name) is client(name)  # created once


def test_throttled_update_is_retried_and_lands(world: World, scaler: Scaler, events: Any) -> None:
    _, ecs = scaler.clients()
    throttler = throttle(ecs, "UpdateService", times=2)
    world.send(4)
    response = scaler(events.alarm(), now=T0)
    assert response["desired"] == world.desired() == 4
    assert throttler.sent["UpdateService"] == 2
    assert scaler.counter.calls["UpdateService"] == 1  # one API call per decision ...
    assert scaler.counter.attempts["UpdateService"] == 3  # ... sent three times by the SDK
    assert scaler.counter.total == 3


def test_update_throttled_past_all_retries_changes_nothing_and_the_next_run_completes_it(
    world: World, scaler: Scaler, events: Any, stdout: Callable[[], str]
) -> None:
    _, ecs = scaler.clients()
    throttle(ecs, "UpdateService", times=4)  # every attempt of the decision
    world.send(4)
    with pytest.raises(Throttled, match="UpdateService"):
        scaler(events.alarm(), now=T0)
    assert world.desired() == 0
    assert scaler.counter.attempts["UpdateService"] == 4
    assert '"ScalerErrors":[1.0]' in stdout()
    # Lambda retries the async event (or the schedule fires): the decision completes.
    assert scaler(events.alarm(), now=T0 + 60)["desired"] == world.desired() == 4


def test_scale_in_throttled_keeps_the_old_count_and_its_clock(world: World, scaler: Scaler, events: Any) -> None:
    world.set_desired(3)
    scaler(events.schedule(), now=T0)  # grace starts
    clock = world.tags()[CLOCK_TAG]
    _, ecs = scaler.clients()
    throttle(ecs, "UpdateService", times=4)
    with pytest.raises(Throttled):
        scaler(events.schedule(), now=T0 + GRACE_S)
    assert (world.desired(), world.tags()[CLOCK_TAG]) == (3, clock)
    # The grace period was served: the next run scales in at once.
    assert scaler(events.schedule(), now=T0 + GRACE_S + 60)["reason"] == "scale_in"
    assert world.desired() == 0


def test_clock_write_throttled_never_starts_a_scale_in_early(world: World, scaler: Scaler, events: Any) -> None:
    world.set_desired(3)
    _, ecs = scaler.clients()
    throttle(ecs, "TagResource", times=4)
    with pytest.raises(Throttled, match="TagResource"):
        scaler(events.schedule(), now=T0)
    assert world.tags() == {}
    later = scaler(events.schedule(), now=T0 + GRACE_S)  # clock starts only now
    assert (later["reason"], world.desired()) == ("grace_started", 3)


@pytest.mark.parametrize(("client_index", "operation"), [(0, "GetQueueAttributes"), (1, "DescribeServices")])
def test_reads_throttled_past_all_retries_write_nothing(
    world: World, scaler: Scaler, events: Any, client_index: int, operation: str
) -> None:
    client = scaler.clients()[client_index]
    throttle(client, operation, times=4)
    world.send(2)
    with pytest.raises(Throttled, match=operation):
        scaler(events.alarm(), now=T0)
    assert scaler.counter.calls["UpdateService"] == 0
    assert world.desired() == 0


# --- random walk: throttling at random never breaks the invariants ---------------------------

steps = st.lists(
    st.tuples(
        st.sampled_from(["send", "take", "finish", "decide"]),
        st.integers(min_value=1, max_value=6),  # how many messages
        st.floats(min_value=0, max_value=2 * GRACE_S, allow_nan=False),  # time to advance
        st.sampled_from([0, 0, 1, 3, 4]),  # throttled attempts of the next write (4 = all)
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_random_walk_with_throttling_keeps_bounds_and_budget(
    steps: list[tuple[str, int, float, int]],
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    events: Any,
) -> None:
    from scaler.wiring import reset

    reset()
    with mock_aws():
        world = build_world()
        for name, value in scaler_environment(world.queue_url).items():
            monkeypatch.setenv(name, value)
        scaler = Scaler(context=lambda_context, counter=CallCounter())
        throttler = Throttler(scaler.clients()[1])
        now, in_flight = T0, []
        for action, count, advance, throttled in steps:
            now += advance
            if action == "send":
                world.send(count)
            elif action == "take":
                visible = world.visible()
                if visible:
                    in_flight += world.take(min(count, visible))
            elif action == "finish":
                world.finish(in_flight[:count])
                in_flight = in_flight[count:]
            else:
                for operation in ("UpdateService", "TagResource", "UntagResource"):
                    throttler.arm(operation, throttled)
                before = world.desired()
                try:
                    response = scaler(events.schedule(), now=now)
                except Throttled:
                    assert world.desired() == before
                else:
                    assert response["desired"] == world.desired()
                    assert scaler.counter.calls["UpdateService"] == (1 if response["changed"] else 0)
                    assert world.desired() >= min(len(in_flight), MAX_WORKERS)  # busy workers kept
                throttler.disarm()
                assert scaler.counter.total <= 3
                assert 0 <= world.desired() <= MAX_WORKERS
