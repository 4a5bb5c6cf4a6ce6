"""Fault injection for the submitter: throttling, capacity failures, crashes mid-batch, duplicate deliveries.

ECS faults are injected by wrapping the real adapter (tasks still really run in moto) or at the botocore
level; the table and queues are moto. After each scenario: no job lost, no job launched twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from aws import clients as aws_clients
from aws.ecs import EcsAdapter
from aws.job_store import DynamoJobStore
from aws.sqs import SqsSender
from jobs.errors import RequestRejected, Throttled, TransientAwsError
from jobs.record import JobRecord
from jobs.states import JobState
from lifecycle.dispatch_rules import LAUNCH_LEASE_SECONDS
from lifecycle.ports import Ports
from submitter.handler import handler
from task_events.handler import handler as task_events
from tests.lambdas.core.conftest import FakeClock
from tests.lambdas.core.helpers import (
    FakeLambdaContext,
    World,
    job_body,
    queue_depth,
    receive_all,
    run_batch,
    sqs_event,
    sqs_record,
    task_state_change,
)

S = JobState
CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone"


class FaultyEcs:
    """The real moto-backed adapter, with scripted faults per RunTask call."""

    def __init__(self, real: EcsAdapter) -> None:
        self.real = real
        self.run_calls: list[str] = []
        self.throttle_runs = 0
        self.no_capacity: set[str] = set()
        self.crash_after_launch_on: set[int] = set()
        self.crash_before_launch_on: set[int] = set()
        self.server_error_after_launch_on: set[int] = set()
        self.fail_with: Mapping[str, Any] | None = None
        self.reject_with: RequestRejected | None = None
        self.throttle_list_tasks = False
        self.list_calls = 0

    def run_task(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        provider = request["capacityProviderStrategy"][0]["capacityProvider"]
        self.run_calls.append(provider)
        call = len(self.run_calls)
        if self.throttle_runs > 0:
            self.throttle_runs -= 1
            raise Throttled("RunTask", "ThrottlingException", "Rate exceeded")
        if self.reject_with is not None:
            raise self.reject_with
        if call in self.crash_before_launch_on:
            raise RuntimeError("Lambda crashed before RunTask returned")
        if provider in self.no_capacity:
            return {"tasks": [], "failures": [{"arn": request["taskDefinition"], "reason": CAPACITY}]}
        if self.fail_with is not None:
            return self.fail_with
        response = self.real.run_task(request)
        if call in self.crash_after_launch_on:
            raise RuntimeError("Lambda crashed after the task was launched")
        if call in self.server_error_after_launch_on:
            raise TransientAwsError("RunTask", "ServerException", "internal error")
        return response

    def count_active(self, families: tuple[str, ...]) -> int:
        self.list_calls += 1
        if self.throttle_list_tasks:
            raise Throttled("ListTasks", "ThrottlingException", "Rate exceeded")
        return self.real.count_active(families)

    def find_task_started_by(self, started_by: str) -> tuple[str, str | None] | None:
        return self.real.find_task_started_by(started_by)

    def stop_task(self, task_arn: str, reason: str) -> None:
        self.real.stop_task(task_arn, reason)

    def list_started_by(self, started_by: str) -> list[str]:
        return self.real.list_started_by(started_by)


class CrashingStore(DynamoJobStore):
    """Crashes (once) on the DISPATCHED write: the task exists, the table does not know yet."""

    def __init__(self, client: Any, table: str) -> None:
        super().__init__(client, table)
        self.crash_next_dispatch = True

    def transition(self, job_id: str, to: JobState, **kwargs: Any) -> JobRecord:
        if to == S.DISPATCHED and self.crash_next_dispatch:
            self.crash_next_dispatch = False
            raise RuntimeError("Lambda killed between RunTask and the DynamoDB write")
        return super().transition(job_id, to, **kwargs)


class FailingQueue:
    def __init__(self, real: SqsSender) -> None:
        self.real = real
        self.fail = True

    def send(self, queue_url: str, body: str, attributes: Any, *, delay_seconds: int = 0) -> str:
        if self.fail:
            raise RuntimeError("SQS unreachable")
        return self.real.send(queue_url, body, attributes, delay_seconds=delay_seconds)


@pytest.fixture
def ecs(world: World, clients: dict[str, Any]) -> FaultyEcs:
    return FaultyEcs(EcsAdapter(clients["ecs"], world.cluster))


@pytest.fixture
def store(world: World, clients: dict[str, Any]) -> DynamoJobStore:
    return DynamoJobStore(clients["dynamodb"], world.table)


@pytest.fixture
def ports(ecs: FaultyEcs, store: DynamoJobStore, clients: dict[str, Any], clock: FakeClock) -> Ports:
    return Ports(store=store, ecs=ecs, queues=SqsSender(clients["sqs"]), clock=clock)


def tasks_of(clients: dict[str, Any], job_id: str) -> list[str]:
    return list(clients["ecs"].list_tasks(cluster="training", startedBy=job_id)["taskArns"])


def running_tasks_of(clients: dict[str, Any], job_id: str) -> list[str]:
    response = clients["ecs"].list_tasks(cluster="training", startedBy=job_id, desiredStatus="RUNNING")
    return list(response["taskArns"])


def failures(result: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def drain(clients: dict[str, Any], world: World, ports: Ports, clock: FakeClock, rounds: int = 30) -> None:
    """Keep delivering the dispatch queue (moving the clock past delays and visibility) until it is empty."""
    for _ in range(rounds):
        invoke = lambda event: handler(event, FakeLambdaContext(), ports=ports)  # noqa: E731
        if run_batch(clients["sqs"], world.dispatch_url, world.dispatch_arn, invoke) is not None:
            continue
        if sum(queue_depth(clients["sqs"], world.dispatch_url).values()) == 0:
            return
        clock.advance(LAUNCH_LEASE_SECONDS)
        _expire_sqs_delays(world)
    raise AssertionError("queue never drained")


def _expire_sqs_delays(world: World) -> None:
    """moto honours DelaySeconds / visibility in wall-clock time; make every message visible now."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends["123456789012"]["us-east-1"].queues["dispatch"]
    for message in queue._messages:
        message.delayed_until = 0
        message.visible_at = 0


# --- scenarios ------------------------------------------------------------------------------------


def test_run_task_throttling_defers_then_launches_once(
    world: World, clients: dict[str, Any], ports: Ports, ecs: FaultyEcs, store: DynamoJobStore, clock: FakeClock
) -> None:
    ecs.throttle_runs = 3
    clients["sqs"].send_message(QueueUrl=world.dispatch_url, MessageBody=job_body("t-1"))
    drain(clients, world, ports, clock)
    job = store.get("t-1")
    assert job is not None and job.state == S.DISPATCHED and job.reason is None
    assert len(tasks_of(clients, "t-1")) == 1
    assert ecs.run_calls == ["FARGATE_SPOT"] * 4  # throttling is not a capacity problem: no fallback


def test_throttled_job_waits_with_a_reason_and_a_growing_delay(
    world: World, clients: dict[str, Any], ports: Ports, ecs: FaultyEcs, store: DynamoJobStore
) -> None:
    ecs.throttle_runs = 100
    result = handler(sqs_event([sqs_record(job_body("t-2"))]), FakeLambdaContext(), ports=ports)
    assert failures(result) == []
    job = store.get("t-2")
    assert job is not None and job.state == S.SUBMITTED and job.launch_claim is None
    assert "RunTask on FARGATE_SPOT throttled after retries" in str(job.reason)
    (deferred,) = _peek_delayed(world)
    assert deferred.message_attributes["deferrals"]["StringValue"] == "1"
    # Deliver the deferred copy: the delay grows (exponential backoff).
    second = sqs_record(deferred.body, attributes={"deferrals": {"DataType": "Number", "StringValue": "1"}})
    handler(sqs_event([second]), FakeLambdaContext(), ports=ports)
    delays = sorted(round((m.delayed_until - m.sent_timestamp) / 1000) for m in _peek_delayed(world))
    assert len(delays) == 2 and delays[0] < delays[1]
    assert tasks_of(clients, "t-2") == []


def _peek_delayed(world: World) -> list[Any]:
    from moto.sqs.models import sqs_backends

    return list(sqs_backends["123456789012"]["us-east-1"].queues["dispatch"]._messages)


def test_botocore_retries_throttling_before_the_submitter_backs_off(
    world: World, clients: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real botocore client answering ThrottlingException: standard-mode retries, then our Throttled."""
    monkeypatch.setattr(time, "sleep", lambda _seconds: None)  # botocore's backoff sleeps; not under test
    ecs_client = aws_clients.client("ecs")
    attempts: list[int] = []

    def throttle(request: Any, **_: Any) -> AWSResponse:
        attempts.append(1)
        body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body))

    ecs_client.meta.events.register_first("before-send.ecs.RunTask", throttle)
    adapter = EcsAdapter(ecs_client, world.cluster)
    with pytest.raises(Throttled) as caught:
        adapter.run_task({"cluster": "training", "taskDefinition": "training"})
    assert caught.value.code == "ThrottlingException"
    assert len(attempts) == aws_clients.MAX_ATTEMPTS


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


def test_spot_capacity_failure_falls_back_to_on_demand(
    world: World, clients: dict[str, Any], ports: Ports, ecs: FaultyEcs, store: DynamoJobStore
) -> None:
    ecs.no_capacity = {"FARGATE_SPOT"}
    handler(sqs_event([sqs_record(job_body("cap-1"))]), FakeLambdaContext(), ports=ports)
    job = store.get("cap-1")
    assert job is not None and job.state == S.DISPATCHED and job.capacity_provider == "FARGATE"
    assert "no capacity on FARGATE_SPOT: Capacity is unavailable" in str(job.reason)
    assert ecs.run_calls == ["FARGATE_SPOT", "FARGATE"]
    (arn,) = tasks_of(clients, "cap-1")
    task = clients["ecs"].describe_tasks(cluster="training", tasks=[arn])["tasks"][0]
    assert task["capacityProviderName"] == "FARGATE"


def test_no_capacity_anywhere_defers_and_nothing_is_lost(
    world: World, clients: dict[str, Any], ports: Ports, ecs: FaultyEcs, store: DynamoJobStore, clock: FakeClock
) -> None:
    ecs.no_capacity = {"FARGATE_SPOT", "FARGATE"}
    handler(sqs_event([sqs_record(job_body("cap-2"))]), FakeLambdaContext(), ports=ports)
    job = store.get("cap-2")
    assert job is not None and job.state == S.SUBMITTED and job.launch_claim is None
    assert "no capacity on FARGATE_SPOT" in str(job.reason) and "no capacity on FARGATE:" in str(job.reason)
    assert queue_depth(clients["sqs"], world.dispatch_url)["delayed"] == 1
    ecs.no_capacity = set()  # capacity comes back
    drain(clients, world, ports, clock)
    assert store.get("cap-2").state == S.DISPATCHED  # type: ignore[union-attr]
    assert len(tasks_of(clients, "cap-2")) == 1


def test_run_task_returning_no_task_and_no_failure_counts_as_no_capacity(
    world: World, clients: dict[str, Any], ports: Ports, ecs: FaultyEcs, store: DynamoJobStore
) -> None:
    ecs.fail_with = {"tasks": [], "failures": []}
    ecs.no_capacity = set()
    handler(sqs_event([sqs_record(job_body("cap-3"))]), FakeLambdaContext(), ports=ports)
    assert ecs.run_calls == ["FARGATE_SPOT", "FARGATE"]
    assert store.get("cap-3").state == S.SUBMITTED  # type: ignore[union-attr]


def test_other_run_task_failures_go_to_the_dlq_with_the_reason(
    world: World, clients: dict[str, Any], ports: Ports, ecs: FaultyEcs, store: DynamoJobStore
) -> None:
    ecs.fail_with = {"tasks": [], "failures": [{"arn": "arn:td", "reason": "MISSING"}]}
    result = handler(sqs_event([sqs_record(job_body("f-1"))]), FakeLambdaContext(), ports=ports)
    assert failures(result) == []
    job = store.get("f-1")
    assert job is not None and job.state == S.SUBMITTED and job.launch_claim is None
    assert job.reason == "RunTask failed: FARGATE_SPOT: MISSING (message sent to the DLQ)"
    (dead,) = receive_all(clients["sqs"], world.dlq_url)
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "RunTask failed: FARGATE_SPOT: MISSING"
    assert ecs.run_calls == ["FARGATE_SPOT"]


def test_run_task_rejected_goes_to_the_dlq(
    world: World, clients: dict[str, Any], ports: Ports, ecs: FaultyEcs, store: DynamoJobStore
) -> None:
    ecs.reject_with = RequestRejected("RunTask", "AccessDeniedException", "not authorized to perform iam:PassRole")
    handler(sqs_event([sqs_record(job_body("f-2"))]), FakeLambdaContext(), ports=ports)
    (dead,) = receive_all(clients["sqs"], world.dlq_url)
    assert "AccessDeniedException: not authorized" in dead["MessageAttributes"]["reason"]["StringValue"]
    assert "AccessDeniedException" in str(store.get("f-2").reason)  # type: ignore[union-attr]


def test_list_tasks_throttled_defers_the_batch_with_one_call(
    world: World, clients: dict[str, Any], ports: Ports, ecs: FaultyEcs, store: DynamoJobStore
) -> None:
    ecs.throttle_list_tasks = True
    result = handler(sqs_event([sqs_record(job_body(f"l-{i}")) for i in range(4)]), FakeLambdaContext(), ports=ports)
    assert failures(result) == [] and ecs.list_calls == 1 and ecs.run_calls == []
    for i in range(4):
        assert "could not count active tasks" in str(store.get(f"l-{i}").reason)  # type: ignore[union-attr]
    assert queue_depth(clients["sqs"], world.dispatch_url)["delayed"] == 4


def test_crash_mid_batch_loses_nothing_and_launches_nothing_twice(
    world: World, clients: dict[str, Any], ports: Ports, ecs: FaultyEcs, store: DynamoJobStore, clock: FakeClock
) -> None:
    ecs.crash_after_launch_on = {3}  # the 3rd RunTask launches its task, then the invocation "dies"
    ecs.crash_before_launch_on = {5}  # the 5th dies before anything happens
    for i in range(6):
        clients["sqs"].send_message(QueueUrl=world.dispatch_url, MessageBody=job_body(f"c-{i}"))
    batch: dict[str, Any] = {}

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        batch.update(event)
        return handler(event, FakeLambdaContext(), ports=ports)

    result = run_batch(clients["sqs"], world.dispatch_url, world.dispatch_arn, invoke)
    assert result is not None
    event, failed = batch, failures(result)
    assert len(failed) == 2  # only the crashed records are retried; the rest of the batch went through
    crashed = {json_id(r["body"]) for r in event["Records"] if r["messageId"] in failed}
    assert crashed == {"c-2", "c-4"}
    assert {store.get(j).state for j in crashed} == {S.SUBMITTED}  # type: ignore[union-attr]

    # SQS redelivers the failed records (visibility timeout); the claims' leases are still running.
    drain(clients, world, ports, clock)
    for i in range(6):
        job = store.get(f"c-{i}")
        assert job is not None and job.state == S.DISPATCHED, job
        assert tasks_of(clients, f"c-{i}") == [job.task_arn]  # exactly one task, and it is the recorded one


def json_id(body: str) -> str:
    import json

    return str(json.loads(body)["job_id"])


def test_crash_between_run_task_and_the_table_write(
    world: World, clients: dict[str, Any], ecs: FaultyEcs, clock: FakeClock
) -> None:
    store = CrashingStore(clients["dynamodb"], world.table)
    ports = Ports(store=store, ecs=ecs, queues=SqsSender(clients["sqs"]), clock=clock)
    record = sqs_record(job_body("x-1"))
    assert failures(handler(sqs_event([record]), FakeLambdaContext(), ports=ports)) == [record["messageId"]]
    (launched,) = tasks_of(clients, "x-1")
    assert store.get("x-1").launch_claim is not None  # type: ignore[union-attr]

    # Redelivered while the lease runs: deferred, not relaunched.
    assert failures(handler(sqs_event([record]), FakeLambdaContext(), ports=ports)) == []
    assert tasks_of(clients, "x-1") == [launched]
    # After the lease: one consumer takes over, finds the task by startedBy and records it.
    clock.advance(LAUNCH_LEASE_SECONDS + 1)
    handler(sqs_event([record]), FakeLambdaContext(), ports=ports)
    job = store.get("x-1")
    assert job is not None and job.state == S.DISPATCHED and job.task_arn == launched
    assert tasks_of(clients, "x-1") == [launched]
    drain(clients, world, ports, clock)  # the deferred copy is a harmless duplicate
    assert tasks_of(clients, "x-1") == [launched]


def test_server_error_after_launch_keeps_the_claim_and_recovers(
    world: World, clients: dict[str, Any], ports: Ports, ecs: FaultyEcs, store: DynamoJobStore, clock: FakeClock
) -> None:
    ecs.server_error_after_launch_on = {1}
    clients["sqs"].send_message(QueueUrl=world.dispatch_url, MessageBody=job_body("5xx-1"))
    drain(clients, world, ports, clock)
    job = store.get("5xx-1")
    assert job is not None and job.state == S.DISPATCHED
    assert tasks_of(clients, "5xx-1") == [job.task_arn]


def test_concurrent_duplicate_deliveries(
    world: World, clients: dict[str, Any], ports: Ports, ecs: FaultyEcs, store: DynamoJobStore, clock: FakeClock
) -> None:
    """Two consumers get the same job at once: one claims, the other defers, then skips."""
    body = job_body("d-1")
    store.create_if_absent("d-1", state=S.SUBMITTED, attempt=1, now=clock(), spec=body)
    store.claim_launch("d-1", state=S.SUBMITTED, attempt=1, claim="other-consumer", now=clock())
    handler(sqs_event([sqs_record(body)]), FakeLambdaContext(), ports=ports)
    assert ecs.run_calls == [] and "in progress elsewhere" in str(store.get("d-1").reason)  # type: ignore[union-attr]


def test_sqs_failure_while_deferring_fails_only_that_record(
    world: World, clients: dict[str, Any], ecs: FaultyEcs, store: DynamoJobStore, clock: FakeClock
) -> None:
    queue = FailingQueue(SqsSender(clients["sqs"]))
    ports = Ports(store=store, ecs=ecs, queues=queue, clock=clock)
    ecs.throttle_runs = 1
    bad, good = sqs_record(job_body("q-1")), sqs_record(job_body("q-2"))
    result = handler(sqs_event([bad, good]), FakeLambdaContext(), ports=ports)
    assert failures(result) == [bad["messageId"]]  # redelivered by SQS: not lost
    assert store.get("q-1").state == S.SUBMITTED and store.get("q-2").state == S.DISPATCHED  # type: ignore[union-attr]
    queue.fail = False
    handler(sqs_event([bad]), FakeLambdaContext(), ports=ports)
    assert store.get("q-1").state == S.DISPATCHED  # type: ignore[union-attr]
    assert len(tasks_of(clients, "q-1")) == 1


def test_moto_ignores_run_task_client_tokens(world: World) -> None:
    """Why the store-side claim carries the no-double-launch guarantee in tests (AWS honours the token)."""
    ecs = boto3.client("ecs", region_name="us-east-1")
    request = {
        "cluster": "training",
        "taskDefinition": "training",
        "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}],
        "networkConfiguration": {
            "awsvpcConfiguration": {"subnets": world.subnets, "securityGroups": [world.security_group]}
        },
        "clientToken": "same-token",
        "startedBy": "token-test",
    }
    first = ecs.run_task(**request)["tasks"][0]["taskArn"]
    second = ecs.run_task(**request)["tasks"][0]["taskArn"]
    assert first != second


def test_cancel_landing_between_read_and_claim(
    world: World, clients: dict[str, Any], ecs: FaultyEcs, clock: FakeClock
) -> None:
    class CancelOnClaim(DynamoJobStore):
        def claim_launch(self, job_id: str, **kwargs: Any) -> JobRecord:
            self.request_cancel(job_id, now=clock())  # the CLI's cancel wins the race
            return super().claim_launch(job_id, **kwargs)

    store = CancelOnClaim(clients["dynamodb"], world.table)
    store.create_if_absent("cc-1", state=S.SUBMITTED, attempt=1, now=clock(), spec=job_body("cc-1"))
    ports = Ports(store=store, ecs=ecs, queues=SqsSender(clients["sqs"]), clock=clock)
    handler(sqs_event([sqs_record(job_body("cc-1"))]), FakeLambdaContext(), ports=ports)
    assert store.get("cc-1").state == S.CANCELLED and ecs.run_calls == []  # type: ignore[union-attr]


def test_cancel_and_duplicate_delivery_during_run_task(
    world: World, clients: dict[str, Any], store: DynamoJobStore, clock: FakeClock
) -> None:
    """While consumer A's RunTask is in flight, the CLI cancels the job and consumer B gets a duplicate of the
    message. B must not end the job under A's live claim; A's record then stops the task it launched."""

    class InterleavedEcs(FaultyEcs):
        step: Any = None

        def run_task(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
            step, self.step = self.step, None
            if step is not None:
                step()
            return super().run_task(request)

    ecs = InterleavedEcs(EcsAdapter(clients["ecs"], world.cluster))
    ports = Ports(store=store, ecs=ecs, queues=SqsSender(clients["sqs"]), clock=clock)
    record = sqs_record(job_body("cd-1"))

    def cancel_then_duplicate() -> None:
        store.request_cancel("cd-1", now=clock())
        handler(sqs_event([record]), FakeLambdaContext(), ports=ports)  # consumer B, during A's RunTask

    ecs.step = cancel_then_duplicate
    handler(sqs_event([record]), FakeLambdaContext(), ports=ports)  # consumer A
    assert len(ecs.run_calls) == 1
    assert running_tasks_of(clients, "cd-1") == []  # A stopped its task (the cancel flag is on the record)
    job = store.get("cd-1")
    assert job is not None and job.state == S.DISPATCHED and job.cancel_requested
    stopped = task_state_change(
        task_arn=str(job.task_arn),
        job_id="cd-1",
        last_status="STOPPED",
        exit_code=143,
        stop_code="UserInitiated",
        stopped_reason="cancelled by user",
    )
    task_events(stopped, FakeLambdaContext(function_name="task-events"))
    assert store.get("cd-1").state == S.CANCELLED  # type: ignore[union-attr]
    drain(clients, world, ports, clock)  # B's deferred copy: skipped, no second launch
    assert len(ecs.run_calls) == 1 and running_tasks_of(clients, "cd-1") == []
    assert store.get("cd-1").state == S.CANCELLED  # type: ignore[union-attr]


def test_cancel_after_an_expired_claim_stops_the_lost_launch(
    world: World, clients: dict[str, Any], ecs: FaultyEcs, store: DynamoJobStore, clock: FakeClock, ports: Ports
) -> None:
    """A launch died after RunTask; the job is cancelled. After the lease, the redelivery stops that task."""
    record = sqs_record(job_body("ce-1"))
    ecs.crash_after_launch_on = {1}
    assert failures(handler(sqs_event([record]), FakeLambdaContext(), ports=ports)) == [record["messageId"]]
    assert len(running_tasks_of(clients, "ce-1")) == 1
    store.request_cancel("ce-1", now=clock())
    clock.advance(LAUNCH_LEASE_SECONDS + 1)
    handler(sqs_event([record]), FakeLambdaContext(), ports=ports)
    assert store.get("ce-1").state == S.CANCELLED  # type: ignore[union-attr]
    assert running_tasks_of(clients, "ce-1") == [] and len(ecs.run_calls) == 1
