"""Submitter handler under moto: real SQS batches in, real ECS tasks and table transitions out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aws import clients as aws_clients
from aws.job_store import DynamoJobStore
from aws.sqs import SqsSender
from jobs.states import JobState
from submitter.handler import handler
from tests.lambdas.core.helpers import (
    FakeLambdaContext,
    World,
    event_from_queue,
    job_body,
    queue_depth,
    receive_all,
    sqs_event,
    sqs_record,
)

S = JobState


@pytest.fixture
def store(world: World, clients: dict[str, Any]) -> DynamoJobStore:
    return DynamoJobStore(clients["dynamodb"], world.table)


def send(clients: dict[str, Any], world: World, body: str, **attributes: Any) -> None:
    clients["sqs"].send_message(QueueUrl=world.dispatch_url, MessageBody=body, MessageAttributes=attributes)


def deliver(clients: dict[str, Any], world: World, context: FakeLambdaContext) -> dict[str, Any]:
    """Receive what is on the dispatch queue as one Lambda batch and run the handler on it."""
    event = event_from_queue(clients["sqs"], world.dispatch_url, world.dispatch_arn)
    assert event["Records"], "nothing to deliver"
    return handler(event, context)


def tasks_started_by(clients: dict[str, Any], job_id: str) -> list[dict[str, Any]]:
    arns = clients["ecs"].list_tasks(cluster="training", startedBy=job_id)["taskArns"]
    if not arns:
        return []
    return clients["ecs"].describe_tasks(cluster="training", tasks=arns, include=["TAGS"])["tasks"]


def test_dispatches_one_task_per_job(
    world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any
) -> None:
    send(clients, world, job_body("job-1", environment={"EPOCHS": "2"}, cpu=2048, memory=4096, tags={"team": "cv"}))
    assert deliver(clients, world, context) == {"batchItemFailures": []}

    job = store.get("job-1")
    assert job is not None and job.state == S.DISPATCHED and job.attempt == 1
    assert job.capacity_provider == "FARGATE_SPOT" and job.launch_claim is None
    (task,) = tasks_started_by(clients, "job-1")
    assert task["taskArn"] == job.task_arn and task["startedBy"] == "job-1"
    assert task["capacityProviderName"] == "FARGATE_SPOT"
    assert task["taskDefinitionArn"] == world.task_definitions["default"]
    assert task["overrides"]["cpu"] == "2048" and task["overrides"]["memory"] == "4096"
    env = {e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]}
    assert env["EPOCHS"] == "2" and env["TRAIN_JOB_ID"] == "job-1" and env["TRAIN_ATTEMPT"] == "1"
    assert {t["key"]: t["value"] for t in task["tags"]} == {"job-id": "job-1", "attempt": "1", "team": "cv"}
    assert [h["to"] for h in job.history] == ["SUBMITTED", "DISPATCHED"]


def test_no_spot_means_on_demand(world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any) -> None:
    send(clients, world, job_body("od-1", spot=False))
    deliver(clients, world, context)
    assert store.get("od-1").capacity_provider == "FARGATE"  # type: ignore[union-attr]
    assert tasks_started_by(clients, "od-1")[0]["capacityProviderName"] == "FARGATE"


def test_prefer_on_demand_attribute(world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any) -> None:
    send(clients, world, job_body("pod-1"), prefer_on_demand={"DataType": "String", "StringValue": "true"})
    deliver(clients, world, context)
    assert store.get("pod-1").capacity_provider == "FARGATE"  # type: ignore[union-attr]


def test_job_without_id_gets_a_deterministic_one(
    world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any
) -> None:
    record = sqs_record(job_body(None), message_id="6c2b0d8e-2bd4-4f3c-9c39-7e9d3d2a5f11")
    handler(sqs_event([record]), context)
    handler(sqs_event([dict(record, receiptHandle="AQEBsecond")]), context)  # redelivery of the same message
    job = store.get("sqs-6c2b0d8e-2bd4-4f3c-9c39-7e9d3d2a5f11")
    assert job is not None and job.state == S.DISPATCHED
    assert len(tasks_started_by(clients, job.job_id)) == 1
    assert json.loads(str(job.spec))["job_id"] == job.job_id


def test_duplicate_deliveries_launch_once(
    world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any
) -> None:
    body = job_body("dup-1")
    first = sqs_record(body)
    # The same message delivered twice in one batch, plus a second message with the same job id.
    handler(sqs_event([first, dict(first, receiptHandle="AQEBdup"), sqs_record(body)]), context)
    handler(sqs_event([sqs_record(body)]), FakeLambdaContext())
    assert len(tasks_started_by(clients, "dup-1")) == 1
    assert store.get("dup-1").state == S.DISPATCHED  # type: ignore[union-attr]


def test_bad_messages_are_rejected_without_failing_the_batch(
    world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any
) -> None:
    bad = {
        "malformed": "{not json",
        "unknown-field": job_body("bad-unknown", colour="blue"),
        "bad-pair": job_body("bad-pair", cpu=1024, memory=512),
        "wrong-type": job_body("bad-type", max_attempts="3"),
        "big-env": job_body("bad-env", environment={"X": "y" * 5000}),
        "gpu-off": job_body("bad-gpu", gpu=1),
        "bad-image": job_body("bad-image", image="nope"),
    }
    records = [sqs_record(body, message_id=f"m-{name}") for name, body in bad.items()]
    records.insert(3, sqs_record(job_body("good-1")))
    result = handler(sqs_event(records), context)
    assert result == {"batchItemFailures": []}

    assert store.get("good-1").state == S.DISPATCHED  # type: ignore[union-attr]
    expected = {
        "sqs-m-malformed": "body: malformed JSON",
        "bad-unknown": "colour: unknown field 'colour' is not allowed",
        "bad-pair": "memory: 512 MiB is not valid with cpu 1024; allowed for cpu 1024: 2048..8192 in steps of 1024",
        "bad-type": "max_attempts: Input should be a valid integer",
        "bad-env": "environment: at most 4096 characters of names and values in total (got 5001)",
        "bad-gpu": "gpu: 1 GPU(s) requested but GPUs are off in this deployment (no GPU capacity provider)",
        "bad-image": "image: unknown image 'nope'; allowed: big, default",
    }
    for job_id, text in expected.items():
        job = store.get(job_id)
        assert job is not None and job.state == S.REJECTED, job_id
        assert text in str(job.reason), (job_id, job.reason)
        assert not tasks_started_by(clients, job_id)

    dead = receive_all(clients["sqs"], world.dlq_url)
    assert len(dead) == len(bad)
    by_job = {m["MessageAttributes"]["job_id"]["StringValue"]: m for m in dead}
    for job_id, text in expected.items():
        message = by_job[job_id]
        assert text in message["MessageAttributes"]["reason"]["StringValue"]
    assert by_job["sqs-m-malformed"]["Body"] == "{not json"  # the original body is preserved
    assert by_job["bad-unknown"]["Body"] == bad["unknown-field"]


def test_bad_duplicate_of_a_good_job_leaves_the_job_alone(
    world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any
) -> None:
    send(clients, world, job_body("keep-1"))
    deliver(clients, world, context)
    handler(sqs_event([sqs_record(job_body("keep-1", cpu=7))]), context)
    assert store.get("keep-1").state == S.DISPATCHED  # type: ignore[union-attr]
    assert len(receive_all(clients["sqs"], world.dlq_url)) == 1


def test_invalid_internal_attribute_is_rejected(
    world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any
) -> None:
    send(clients, world, job_body("attr-1"), attempt={"DataType": "Number", "StringValue": "0"})
    deliver(clients, world, context)
    job = store.get("attr-1")
    assert job is not None and job.state == S.REJECTED and "messageAttributes.attempt" in str(job.reason)


def test_concurrency_cap_defers_with_backoff(
    world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from submitter import wiring

    monkeypatch.setenv("MAX_CONCURRENT_TASKS", "2")
    wiring.reset()
    for i in range(5):
        send(clients, world, job_body(f"cap-{i}"))
    assert deliver(clients, world, context) == {"batchItemFailures": []}

    states = {f"cap-{i}": store.get(f"cap-{i}") for i in range(5)}
    dispatched = [j for j in states.values() if j and j.state == S.DISPATCHED]
    waiting = [j for j in states.values() if j and j.state == S.SUBMITTED]
    assert len(dispatched) == 2 and len(waiting) == 3
    for job in waiting:
        assert "concurrency cap reached (2 of 2 training tasks active)" in str(job.reason)
        assert job.launch_claim is None
    depth = queue_depth(clients["sqs"], world.dispatch_url)
    assert depth["delayed"] == 3 and depth["visible"] == 0  # back on the queue with a delay, originals acked


def test_cap_counts_tasks_already_running_before_the_batch(
    world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from submitter import wiring

    monkeypatch.setenv("MAX_CONCURRENT_TASKS", "1")
    wiring.reset()
    clients["ecs"].run_task(  # a worker-service task: another family, not a training task
        cluster="training",
        taskDefinition="worker",
        capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": world.subnets, "securityGroups": [world.security_group]}
        },
    )
    send(clients, world, job_body("first"))
    deliver(clients, world, context)
    send(clients, world, job_body("second"))
    deliver(clients, world, FakeLambdaContext())
    assert store.get("first").state == S.DISPATCHED  # type: ignore[union-attr]
    assert store.get("second").state == S.SUBMITTED  # type: ignore[union-attr]


def test_retry_message_dispatches_the_next_attempt(
    world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any
) -> None:
    send(clients, world, job_body("r-1"))
    deliver(clients, world, context)
    first = store.get("r-1")
    assert first is not None
    # What task-events does after a failed attempt: RETRYING at attempt 2, then a message for attempt 2.
    store.transition(
        "r-1", S.RETRYING, expected_states=S.DISPATCHED, expected_attempt=1, now=aws_now(), reason="exit 1", attempt=2
    )
    stale = sqs_record(str(first.spec))  # a late duplicate of the attempt-1 message
    retry = sqs_record(str(first.spec), attributes={"attempt": {"DataType": "Number", "StringValue": "2"}})
    handler(sqs_event([stale, retry]), context)
    job = store.get("r-1")
    assert job is not None and job.state == S.DISPATCHED and job.attempt == 2 and job.task_arn != first.task_arn
    assert len(clients["ecs"].list_tasks(cluster="training", startedBy="r-1")["taskArns"]) == 2


def test_cancel_before_launch(world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any) -> None:
    store.create_if_absent("c-1", state=S.SUBMITTED, attempt=1, now=aws_now(), queue="dispatch")
    store.request_cancel("c-1", now=aws_now())
    handler(sqs_event([sqs_record(job_body("c-1"))]), context)
    job = store.get("c-1")
    assert job is not None and job.state == S.CANCELLED and not tasks_started_by(clients, "c-1")


def test_submitted_record_from_the_cli_is_used(
    world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any
) -> None:
    store.create_if_absent("cli-1", state=S.SUBMITTED, attempt=1, now=aws_now(), spec=job_body("cli-1"))
    handler(sqs_event([sqs_record(job_body("cli-1"))]), context)
    assert store.get("cli-1").state == S.DISPATCHED  # type: ignore[union-attr]


# --- AWS API calls per dispatch, counted with a botocore event hook --------------------------------


class CallCounter:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def attach(self, *services: str) -> CallCounter:
        for service in services:
            aws_clients.client(service).meta.events.register("before-call.*.*", self)
        return self


def test_api_calls_per_dispatch(world: World, clients: dict[str, Any], context: Any) -> None:
    counter = CallCounter().attach("dynamodb", "ecs", "sqs")
    handler(sqs_event([sqs_record(job_body("count-1"))]), context)
    # One ListTasks per batch (one training family per image: 2 images here), then per job:
    # PutItem (create + launch claim), RunTask, UpdateItem (DISPATCHED).
    assert counter.calls == ["ListTasks", "ListTasks", "PutItem", "RunTask", "UpdateItem"]

    counter.calls.clear()
    handler(sqs_event([sqs_record(job_body(f"count-{i}")) for i in range(2, 11)]), FakeLambdaContext())
    per_job = ["PutItem", "RunTask", "UpdateItem"]
    assert counter.calls == ["ListTasks", "ListTasks", *(per_job * 9)]


def test_job_size_overrides_the_task_and_the_trainer_container(
    world: World, clients: dict[str, Any], context: Any
) -> None:
    """The task definition sets the trainer's memory (hard limit): the container override must lift it too."""
    requests: list[dict[str, Any]] = []
    aws_clients.client("ecs").meta.events.register(
        "before-parameter-build.ecs.RunTask", lambda params, **_: requests.append(params)
    )
    handler(sqs_event([sqs_record(job_body("big-1", cpu=4096, memory=16384))]), context)
    (request,) = requests
    assert (request["overrides"]["cpu"], request["overrides"]["memory"]) == ("4096", "16384")
    (container,) = request["overrides"]["containerOverrides"]
    assert (container["name"], container["cpu"], container["memory"]) == ("trainer", 4096, 16384)


def test_api_calls_for_a_duplicate_and_a_deferral(world: World, clients: dict[str, Any], context: Any) -> None:
    handler(sqs_event([sqs_record(job_body("count-1"))]), context)
    counter = CallCounter().attach("dynamodb", "ecs", "sqs")
    handler(sqs_event([sqs_record(job_body("count-1"))]), FakeLambdaContext())
    assert counter.calls == ["ListTasks", "ListTasks", "PutItem"]  # the failed conditional put returns the record


def test_api_calls_for_a_deferral_at_the_cap(
    world: World, clients: dict[str, Any], context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from submitter import wiring

    monkeypatch.setenv("MAX_CONCURRENT_TASKS", "1")
    wiring.reset()
    handler(sqs_event([sqs_record(job_body("count-1"))]), context)
    counter = CallCounter().attach("dynamodb", "ecs", "sqs")
    handler(sqs_event([sqs_record(job_body("count-2"))]), FakeLambdaContext())
    assert counter.calls == ["ListTasks", "ListTasks", "PutItem", "SendMessage"]


def aws_now() -> Any:
    from jobs.timeutil import utcnow

    return utcnow()


class RecordingEcs:
    """A fake ECS port for the GPU path (moto cannot place tasks on an EC2 capacity provider without
    container instances); it records the RunTask requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def run_task(self, request: Any) -> dict[str, Any]:
        self.requests.append(dict(request))
        provider = request["capacityProviderStrategy"][0]["capacityProvider"]
        arn = f"arn:aws:ecs:us-east-1:123456789012:task/training/gpu{len(self.requests)}"
        return {"tasks": [{"taskArn": arn, "capacityProviderName": provider}], "failures": []}

    def count_active(self, families: tuple[str, ...]) -> int:
        return 0

    def find_task_started_by(self, started_by: str) -> None:
        return None

    def stop_task(self, task_arn: str, reason: str) -> None:
        raise AssertionError("not expected")


def test_gpu_job_uses_the_gpu_capacity_provider(
    world: World, clients: dict[str, Any], store: DynamoJobStore, context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifecycle.ports import Ports
    from submitter import wiring

    monkeypatch.setenv("GPU_CAPACITY_PROVIDER", "gpu-spot")
    monkeypatch.setenv("GPU_TASK_DEFINITIONS", json.dumps({"default": "arn:aws:ecs:us-east-1:1:task-definition/gpu:1"}))
    wiring.reset()
    ecs = RecordingEcs()
    ports = Ports(store=store, ecs=ecs, queues=SqsSender(clients["sqs"]), clock=aws_now)
    handler(sqs_event([sqs_record(job_body("gpu-1", gpu=1, cpu=4096, memory=16384))]), context, ports=ports)
    job = store.get("gpu-1")
    assert job is not None and job.state == S.DISPATCHED and job.capacity_provider == "gpu-spot"
    (request,) = ecs.requests
    assert request["taskDefinition"] == "arn:aws:ecs:us-east-1:1:task-definition/gpu:1"
    assert request["capacityProviderStrategy"] == [{"capacityProvider": "gpu-spot", "weight": 1, "base": 0}]
    container = request["overrides"]["containerOverrides"][0]
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
