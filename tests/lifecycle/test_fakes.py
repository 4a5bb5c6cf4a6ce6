"""The fakes behave like the services they stand for: ECS (tasks, capacity, idempotent launches), SQS (what it
accepts and refuses), the clock, and faults injected into any of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import CONTAINER_NAME
from fakes.clock import START, ManualClock
from fakes.ecs import FakeEcs
from fakes.queues import FakeQueues
from fakes.store import InMemoryJobStore
from jobs.ecs import is_capacity_reason
from jobs.errors import JobStateConflict, RequestRejected, Throttled, TransientAwsError
from jobs.states import JobState

DEFINITION = "arn:aws:ecs:us-east-1:123456789012:task-definition/training:3"


def run_request(job_id: str, provider: str = "FARGATE_SPOT", **extra: object) -> dict[str, object]:
    return {
        "cluster": "training",
        "taskDefinition": DEFINITION,
        "count": 1,
        "capacityProviderStrategy": [{"capacityProvider": provider, "weight": 1, "base": 0}],
        "overrides": {"containerOverrides": [{"name": CONTAINER_NAME, "command": ["python", "train.py"]}]},
        "startedBy": job_id,
        "clientToken": f"{job_id}-{provider}",
        **extra,
    }


def launch(ecs: FakeEcs, job_id: str, provider: str = "FARGATE_SPOT") -> str:
    (task,) = ecs.run_task(run_request(job_id, provider))["tasks"]
    return str(task["taskArn"])


# --- clock -------------------------------------------------------------------------------------------


def test_the_clock_moves_only_when_told() -> None:
    clock = ManualClock()
    assert clock() == clock() == START
    assert clock.advance(90) == clock() == datetime(2026, 1, 1, 0, 1, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2026, 1, 1))


# --- ECS ---------------------------------------------------------------------------------------------


def test_run_task_starts_a_task_ecs_then_lists_and_describes(ecs: FakeEcs, clock: ManualClock) -> None:
    arn = launch(ecs, "job-1")
    task = ecs.describe_tasks([arn, "arn:unknown"])[arn]
    assert task["startedBy"] == "job-1" and task["capacityProviderName"] == "FARGATE_SPOT"
    assert (task["lastStatus"], task["desiredStatus"], task["createdAt"]) == ("PROVISIONING", "RUNNING", clock())
    assert [c["name"] for c in task["containers"]] == [CONTAINER_NAME]
    assert ecs.count_active(("training",)) == 1 and ecs.count_active(("other",)) == 0
    assert ecs.list_running_task_arns() == ecs.list_started_by("job-1") == [arn]
    assert ecs.find_task_started_by("job-1") == (arn, "FARGATE_SPOT")
    assert ecs.find_task_started_by("job-2") is None and ecs.list_started_by("job-2") == []
    assert ecs.run_requests[0]["startedBy"] == "job-1"


def test_a_full_capacity_provider_answers_with_a_capacity_failure(clock: ManualClock) -> None:
    ecs = FakeEcs(clock, capacity={"FARGATE_SPOT": 1})
    first = launch(ecs, "job-1")
    response = ecs.run_task(run_request("job-2"))
    assert response["tasks"] == [] and is_capacity_reason(response["failures"][0]["reason"])
    launch(ecs, "job-2", "FARGATE")  # another provider still has room
    ecs.stop_task(first, "done")
    launch(ecs, "job-2")  # the stop freed the Spot slot


def test_a_repeated_client_token_returns_the_first_launch(ecs: FakeEcs) -> None:
    first = ecs.run_task(run_request("job-1"))
    again = ecs.run_task(run_request("job-1"))
    assert again == first and len(ecs.tasks) == 1 and len(ecs.run_requests) == 2


def test_injected_throttling_fails_the_next_calls_only(ecs: FakeEcs) -> None:
    ecs.inject("run_task", Throttled("RunTask", "ThrottlingException", "Rate exceeded"), times=2)
    for _ in range(2):
        with pytest.raises(Throttled):
            ecs.run_task(run_request("job-1"))
    assert launch(ecs, "job-1") in ecs.tasks and ecs.run_requests and len(ecs.run_requests) == 1
    with pytest.raises(ValueError, match="no operation"):
        ecs.inject("run_tasks", Throttled("RunTask", "ThrottlingException", "Rate exceeded"))


def test_tasks_run_and_end_as_the_test_says(ecs: FakeEcs, clock: ManualClock) -> None:
    arn = launch(ecs, "job-1")
    clock.advance(30)
    assert ecs.start(arn)["lastStatus"] == "RUNNING" and ecs.tasks[arn]["startedAt"] == clock()
    clock.advance(60)
    ended = ecs.end(arn, exit_code=3)
    assert (ended["lastStatus"], ended["desiredStatus"], ended["stopCode"]) == (
        "STOPPED",
        "STOPPED",
        "EssentialContainerExited",
    )
    assert ended["containers"][0]["exitCode"] == 3 and ended["stoppedAt"] == clock()
    assert ecs.count_active(("training",)) == 0 and ecs.list_started_by("job-1") == []
    spot = launch(ecs, "job-2")
    assert ecs.end(spot, stop_code="SpotInterruption", reason="Your Spot Task was interrupted.")["stopCode"] == (
        "SpotInterruption"
    )


def test_stop_task_stops_once_and_refuses_an_unknown_task(ecs: FakeEcs) -> None:
    arn = launch(ecs, "job-1")
    ecs.stop_task(arn, "cancelled by user " + "x" * 300)
    stopped = ecs.describe_tasks([arn])[arn]
    assert (stopped["lastStatus"], stopped["stopCode"], len(stopped["stoppedReason"])) == (
        "STOPPED",
        "UserInitiated",
        255,
    )
    ecs.stop_task(arn, "again")
    assert ecs.tasks[arn]["stoppedReason"].startswith("cancelled by user")
    assert [reason for _, reason in ecs.stop_requests][1] == "again"
    with pytest.raises(RequestRejected):
        ecs.stop_task("arn:aws:ecs:us-east-1:123456789012:task/training/nope", "x")


def test_ecs_forgets_tasks_and_describes_at_most_100(ecs: FakeEcs) -> None:
    arn = launch(ecs, "job-1")
    ecs.end(arn, exit_code=0)
    ecs.forget(arn)
    assert ecs.describe_tasks([arn]) == {}
    assert launch(ecs, "job-2") != arn
    with pytest.raises(RequestRejected):
        ecs.describe_tasks([arn] * 101)


def test_described_tasks_are_copies(ecs: FakeEcs) -> None:
    arn = launch(ecs, "job-1")
    ecs.describe_tasks([arn])[arn]["containers"].clear()
    assert ecs.tasks[arn]["containers"]


# --- SQS ---------------------------------------------------------------------------------------------


def test_sent_messages_are_recorded_per_queue(queues: FakeQueues) -> None:
    attributes = {"attempt": {"DataType": "Number", "StringValue": "2"}}
    first = queues.send("q1", "a", attributes, delay_seconds=30)
    queues.send("q2", "b", {}, delay_seconds=5000)
    queues.send("q1", "c", {}, delay_seconds=-1)
    assert queues.bodies("q1") == ["a", "c"] and queues.bodies("q2") == ["b"]
    (message, _) = queues.messages("q1")
    assert (message.message_id, message.attributes, message.delay_seconds) == (first, attributes, 30)
    assert [m.delay_seconds for m in queues.sent] == [30, 900, 0]
    assert len({m.message_id for m in queues.sent}) == 3


def test_sqs_refuses_empty_bodies_and_attribute_values(queues: FakeQueues) -> None:
    with pytest.raises(RequestRejected):
        queues.send("q", "", {})
    with pytest.raises(RequestRejected):
        queues.send("q", "body", {"reason": {"DataType": "String", "StringValue": ""}})
    assert queues.sent == []


def test_batches_hold_1_to_10_distinct_entries(queues: FakeQueues) -> None:
    queues.send_batch("q", [(str(i), f"child {i}") for i in range(10)])
    assert [m.entry_id for m in queues.messages("q")] == [str(i) for i in range(10)]
    for bad in ([], [(str(i), "x") for i in range(11)], [("1", "x"), ("1", "y")], [("1", "")]):
        with pytest.raises(RequestRejected):
            queues.send_batch("q", bad)
    assert len(queues.sent) == 10


def test_refused_batch_entries_raise_after_the_rest_is_sent(queues: FakeQueues) -> None:
    queues.refuse_entries(2)
    with pytest.raises(TransientAwsError, match="0: InternalError; 1: InternalError"):
        queues.send_batch("q", [("0", "a"), ("1", "b"), ("2", "c")])
    assert queues.bodies("q") == ["c"]
    queues.send_batch("q", [("0", "a"), ("1", "b")])  # the caller repeats the batch
    assert queues.bodies("q") == ["c", "a", "b"]


def test_an_injected_send_failure_sends_nothing(queues: FakeQueues) -> None:
    queues.inject("send", TransientAwsError("SendMessage", "InternalError", "boom"))
    with pytest.raises(TransientAwsError):
        queues.send("q", "a", {})
    queues.send("q", "a", {})
    assert queues.bodies("q") == ["a"]


# --- the job store's faults (its semantics: test_store_contract.py) ----------------------------------


def test_a_competing_write_injected_before_a_transition_wins(store: InMemoryJobStore, clock: ManualClock) -> None:
    store.create_if_absent("j1", state=JobState.SUBMITTED, attempt=1, now=clock())

    def competing_claim() -> None:
        store.claim_launch("j1", state=JobState.SUBMITTED, attempt=1, claim="A", now=clock())

    store.inject("transition", competing_claim)
    with pytest.raises(JobStateConflict) as caught:
        store.transition(
            "j1",
            JobState.RUNNING,
            expected_states=JobState.SUBMITTED,
            expected_attempt=1,
            expected_claim="",
            now=clock(),
        )
    assert caught.value.current is not None and caught.value.current.launch_claim == "A"


def test_an_injected_store_error_fails_one_call(store: InMemoryJobStore, clock: ManualClock) -> None:
    store.create_if_absent("j1", state=JobState.SUBMITTED, attempt=1, now=clock())
    store.inject("get", TransientAwsError("GetItem", "InternalServerError", "boom"))
    with pytest.raises(TransientAwsError):
        store.get("j1")
    assert store.get("j1") is not None


def test_records_read_from_the_fake_store_are_copies(store: InMemoryJobStore, clock: ManualClock) -> None:
    _, job = store.create_if_absent("j1", state=JobState.SUBMITTED, attempt=1, now=clock(), usage=[{"s": 1}])
    job.extra["usage"].append({"s": 2})
    assert store.get("j1").extra["usage"] == [{"s": 1}]  # type: ignore[union-attr]
