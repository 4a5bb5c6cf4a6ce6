"""A sweep cancelled during its fan-out (moto jobs table): the fan-out stops, and the parent settles CANCELLED
with its counts once the children enqueued before the cancel are terminal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from aws.job_store import DynamoJobStore
from jobs.states import JobState
from lifecycle import fanout
from lifecycle.cancel import cancel_children
from lifecycle.fanout import fan_out
from lifecycle.finished import job_finished
from lifecycle.reconcile import housekeeping
from tests.lambdas.core.conftest import FakeClock
from tests.lambdas.core.helpers import World

S = JobState


class NoTasks:
    def stop_task(self, task_arn: str, reason: str) -> None:
        pass


class Queues:
    def __init__(self, on_batch: Any = None) -> None:
        self.batches: list[list[str]] = []
        self.sent: list[str] = []
        self.on_batch = on_batch

    def send(
        self, queue_url: str, body: str, attributes: Mapping[str, Mapping[str, str]], *, delay_seconds: int = 0
    ) -> str:
        self.sent.append(body)
        return "m"

    def send_batch(self, queue_url: str, bodies: Sequence[tuple[str, str]]) -> None:
        self.batches.append([index for index, _ in bodies])
        if self.on_batch:
            self.on_batch()


@pytest.fixture
def store(world: World, clients: dict[str, Any]) -> DynamoJobStore:
    return DynamoJobStore(clients["dynamodb"], world.table)


def run(store: DynamoJobStore, queues: Queues, clock: FakeClock, size: int) -> str:
    spec = fanout.JobSpec.model_validate({"job_id": "sw", "command": ["python", "t.py"], "array": {"size": size}})
    return fan_out(
        spec,
        store=store,
        queues=queues,
        clock=clock,
        dispatch_queue_url="dispatch",
        worker_queue_url="worker",
        reject=lambda why: pytest.fail(why),
    )


def test_a_parent_cancelled_mid_fan_out_settles_when_its_enqueued_children_end(
    store: DynamoJobStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "CHUNK", 10)
    queues = Queues()
    assert run(store, queues, clock, 30) == "ArrayFanOutContinued"
    store.transition("sw-0", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=clock())
    parent = store.request_cancel("sw", now=clock())
    cancel_children(store, parent, clock(), tasks=NoTasks())  # what `trainctl cancel` does
    assert run(store, queues, clock, 30) == "JobsCancelled"  # the re-sent fan-out message: no more children
    assert len(queues.batches) == 1 and store.get("sw-10") is None
    parent = store.get("sw")
    assert parent is not None and parent.state == S.SUBMITTED  # sw-0 still runs

    running = store.get("sw-0")
    assert running is not None and running.cancel_requested
    ended = store.transition("sw-0", S.CANCELLED, expected_states=S.RUNNING, expected_attempt=1, now=clock())
    job_finished(store, ended, clock())
    parent = store.get("sw")
    assert parent is not None and parent.state == S.CANCELLED
    assert parent.reason == "30 children: 10 CANCELLED (10 of 30 enqueued)"


def test_housekeeping_settles_a_cancelled_submitted_parent_whose_count_was_lost(
    store: DynamoJobStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "CHUNK", 10)
    run(store, Queues(), clock, 30)
    for i in range(10):  # ended without counting on the parent (e.g. a crash before the count)
        store.transition(
            f"sw-{i}", S.FAILED if i == 3 else S.CANCELLED, expected_states=S.SUBMITTED, expected_attempt=1, now=clock()
        )
    store.request_cancel("sw", now=clock())
    assert housekeeping(store, clock()) == {}
    clock.advance(601)
    assert housekeeping(store, clock()) == {"ParentsSettled": 1}
    parent = store.get("sw")
    assert parent is not None and parent.state == S.FAILED and "failed: sw-3" in str(parent.reason)


@pytest.mark.parametrize("size", [30, 10])
def test_a_cancel_during_a_fan_out_invocation_stops_it_and_never_runs_the_parent(
    store: DynamoJobStore, clock: FakeClock, size: int
) -> None:
    queues = Queues(on_batch=lambda: store.request_cancel("sw", now=clock()))  # arrives while group 1 is sent
    assert run(store, queues, clock, size) == "JobsCancelled"
    assert queues.batches == [[str(i) for i in range(10)]] and queues.sent == []
    parent = store.get("sw")
    assert parent is not None and parent.state == S.CANCELLED and parent.extra["enqueued"] == 10
    assert all(r.state == S.CANCELLED for r in store.get_many([f"sw-{i}" for i in range(10)]).values())
    assert [h["to"] for h in parent.history if "to" in h].count(S.RUNNING) == 0


def test_a_cancel_after_every_child_succeeded_settles_the_submitted_parent_succeeded(
    store: DynamoJobStore, clock: FakeClock
) -> None:
    def children_end_then_cancel() -> None:  # the last group's children all succeed, then a cancel lands
        for i in range(10):
            store.transition(f"sw-{i}", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=clock())
            ended = store.transition(f"sw-{i}", S.SUCCEEDED, expected_states=S.RUNNING, expected_attempt=1, now=clock())
            job_finished(store, ended, clock(), emit=lambda line: None)
        store.request_cancel("sw", now=clock())

    assert run(store, Queues(on_batch=children_end_then_cancel), clock, 10) == "JobsCancelled"
    parent = store.get("sw")
    assert parent is not None and parent.state == S.SUCCEEDED, parent.reason
    assert parent.reason == "10 children: 10 SUCCEEDED"
