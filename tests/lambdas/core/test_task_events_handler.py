"""Task-events handler under moto, fed documented "ECS Task State Change" and "Scheduled Event" payloads.

Jobs are launched by the real submitter handler first, so the events refer to tasks that really run in moto.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aws import clients as aws_clients
from aws.ecs import EcsAdapter
from aws.job_store import DynamoJobStore
from aws.sqs import SqsSender
from jobs.record import JobRecord
from jobs.retries import MAX_INTERRUPTIONS
from jobs.states import JobState
from jobs.timeutil import iso
from lifecycle.ports import Ports
from lifecycle.task_decisions import STALE_RETRY_SECONDS
from submitter.handler import handler as submitter
from task_events import wiring
from task_events.handler import handler
from tests.lambdas.core.conftest import FakeClock
from tests.lambdas.core.helpers import (
    FakeLambdaContext,
    World,
    job_body,
    receive_all,
    run_batch,
    scheduled_event,
    sqs_event,
    sqs_record,
    task_state_change,
)

S = JobState


@pytest.fixture
def store(world: World, clients: dict[str, Any]) -> DynamoJobStore:
    return DynamoJobStore(clients["dynamodb"], world.table)


def launch(job_id: str, store: DynamoJobStore, **fields: Any) -> JobRecord:
    submitter(sqs_event([sqs_record(job_body(job_id, **fields))]), FakeLambdaContext())
    job = store.get(job_id)
    assert job is not None and job.state == S.DISPATCHED
    return job


def on(event: dict[str, Any]) -> dict[str, int]:
    return handler(event, FakeLambdaContext(function_name="task-events"))


def event(job: JobRecord, last_status: str, **kwargs: Any) -> dict[str, Any]:
    return task_state_change(task_arn=str(job.task_arn), job_id=job.job_id, last_status=last_status, **kwargs)


def dispatch_messages(clients: dict[str, Any], world: World) -> list[dict[str, Any]]:
    return receive_all(clients["sqs"], world.dispatch_url)


def resubmit(clients: dict[str, Any], world: World) -> None:
    """Run the submitter on whatever task-events put on the dispatch queue."""
    while run_batch(
        clients["sqs"], world.dispatch_url, world.dispatch_arn, lambda e: submitter(e, FakeLambdaContext())
    ):
        pass


def test_running_then_success(world: World, clients: dict[str, Any], store: DynamoJobStore) -> None:
    job = launch("ok-1", store)
    assert on(event(job, "RUNNING")) == {"JobsRunning": 1}
    running = store.get("ok-1")
    assert running is not None and running.state == S.RUNNING and running.started_at
    assert on(event(job, "STOPPED", exit_code=0)) == {"JobsSucceeded": 1}
    done = store.get("ok-1")
    assert done is not None and done.state == S.SUCCEEDED and done.exit_code == 0 and done.finished_at
    assert [h["to"] for h in done.history] == ["SUBMITTED", "DISPATCHED", "RUNNING", "SUCCEEDED"]


def test_failure_retries_then_fails_with_the_reason(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    job = launch("f-1", store, max_attempts=2)
    on(event(job, "RUNNING"))
    assert on(event(job, "STOPPED", exit_code=2)) == {"JobsRetried": 1}
    retrying = store.get("f-1")
    assert retrying is not None and retrying.state == S.RETRYING and retrying.attempt == 2 and retrying.exit_code == 2
    assert "trainer exit code 2" in str(retrying.reason)
    _expire_delays()  # a failed attempt is retried after a short backoff (DelaySeconds)
    (message,) = dispatch_messages(clients, world)
    assert message["MessageAttributes"]["attempt"]["StringValue"] == "2"
    assert json.loads(message["Body"])["job_id"] == "f-1"

    # Put it back (as if unreceived) and let the submitter launch attempt 2.
    clients["sqs"].change_message_visibility(
        QueueUrl=world.dispatch_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    _expire_delays()
    resubmit(clients, world)
    second = store.get("f-1")
    assert second is not None and second.state == S.DISPATCHED and second.attempt == 2
    assert second.task_arn != job.task_arn

    assert on(event(second, "STOPPED", exit_code=1, stopped_reason="Essential container in task exited")) == {
        "JobsFailed": 1
    }
    failed = store.get("f-1")
    assert failed is not None and failed.state == S.FAILED and failed.exit_code == 1
    assert "trainer exit code 1" in str(failed.reason) and "Essential container in task exited" in str(failed.reason)
    assert "no attempts left (2 of max_attempts=2)" in str(failed.reason)


def _expire_delays() -> None:
    from moto.sqs.models import sqs_backends

    for message in sqs_backends["123456789012"]["us-east-1"].queues["dispatch"]._messages:
        message.delayed_until = 0
        message.visible_at = 0


def test_spot_interruption_resubmits_on_demand(world: World, clients: dict[str, Any], store: DynamoJobStore) -> None:
    job = launch("spot-1", store)
    on(event(job, "RUNNING"))
    # The two-minute notice: still RUNNING, desired STOPPED. Nothing happens yet.
    notice = event(
        job,
        "RUNNING",
        desired_status="STOPPED",
        stop_code="SpotInterruption",
        stopped_reason="Your Spot Task was interrupted.",
    )
    assert on(notice) == {"Ignored": 1}
    assert on(
        event(
            job,
            "STOPPED",
            exit_code=143,
            stop_code="SpotInterruption",
            stopped_reason="Your Spot Task was interrupted.",
        )
    ) == {"JobsInterrupted": 1}
    retrying = store.get("spot-1")
    assert retrying is not None and retrying.state == S.RETRYING and retrying.interruptions == 1
    assert retrying.failures == 0 and retrying.extra.get("prefer_on_demand") is True
    resubmit(clients, world)
    relaunched = store.get("spot-1")
    assert relaunched is not None and relaunched.state == S.DISPATCHED and relaunched.capacity_provider == "FARGATE"
    task = clients["ecs"].describe_tasks(cluster="training", tasks=[relaunched.task_arn])["tasks"][0]
    assert task["capacityProviderName"] == "FARGATE"


def test_capacity_start_failure_resubmits_on_demand(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    job = launch("cap-1", store)
    stop = event(
        job,
        "STOPPED",
        stop_code="TaskFailedToStart",
        stopped_reason="Capacity is unavailable at this time. Please try again later.",
    )
    stop["detail"]["containers"][0].pop("exitCode", None)
    assert on(stop) == {"JobsInterrupted": 1}
    resubmit(clients, world)
    assert store.get("cap-1").capacity_provider == "FARGATE"  # type: ignore[union-attr]


def test_interruptions_are_bounded(world: World, clients: dict[str, Any], store: DynamoJobStore) -> None:
    launch("spot-2", store)
    for _ in range(MAX_INTERRUPTIONS):
        job = store.get("spot-2")
        assert job is not None and job.state == S.DISPATCHED
        on(event(job, "STOPPED", exit_code=143, stop_code="SpotInterruption"))
        resubmit(clients, world)
    job = store.get("spot-2")
    assert job is not None and job.attempt == MAX_INTERRUPTIONS + 1
    assert on(event(job, "STOPPED", exit_code=143, stop_code="SpotInterruption")) == {"JobsFailed": 1}
    assert f"gave up after {MAX_INTERRUPTIONS} interruptions" in str(store.get("spot-2").reason)  # type: ignore[union-attr]


def test_out_of_order_and_duplicate_events(world: World, clients: dict[str, Any], store: DynamoJobStore) -> None:
    job = launch("ooo-1", store)
    stop, run = event(job, "STOPPED", exit_code=0), event(job, "RUNNING")
    for delivered in (stop, run, stop, run):
        on(delivered)
    done = store.get("ooo-1")
    assert done is not None and done.state == S.SUCCEEDED
    assert [h["to"] for h in done.history] == ["SUBMITTED", "DISPATCHED", "SUCCEEDED"]


def test_duplicate_failure_event_never_launches_twice(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    job = launch("dup-1", store)
    failure = event(job, "STOPPED", exit_code=1)
    assert on(failure) == {"JobsRetried": 1}
    assert on(failure) == {"RetryResent": 1}  # EventBridge delivered it twice
    _expire_delays()
    resubmit(clients, world)
    assert len(clients["ecs"].list_tasks(cluster="training", startedBy="dup-1")["taskArns"]) == 2  # attempts 1, 2
    assert store.get("dup-1").attempt == 2  # type: ignore[union-attr]


def test_stale_events_from_an_old_attempt_are_ignored(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    first = launch("old-1", store)
    on(event(first, "STOPPED", exit_code=1))
    _expire_delays()
    resubmit(clients, world)
    second = store.get("old-1")
    assert second is not None and second.attempt == 2
    assert on(event(first, "RUNNING")) == {"Ignored": 1}
    assert on(event(first, "STOPPED", exit_code=0)) == {"Ignored": 1}
    assert store.get("old-1").state == S.DISPATCHED  # type: ignore[union-attr]


def test_user_stop_after_cancel(world: World, clients: dict[str, Any], store: DynamoJobStore) -> None:
    job = launch("cancel-1", store)
    on(event(job, "RUNNING"))
    store.request_cancel("cancel-1", now=datetime.now(UTC))
    clients["ecs"].stop_task(cluster="training", task=job.task_arn, reason="cancelled by user")
    assert on(event(job, "STOPPED", exit_code=143, stop_code="UserInitiated", stopped_reason="cancelled by user")) == {
        "JobsCancelled": 1
    }
    assert store.get("cancel-1").state == S.CANCELLED  # type: ignore[union-attr]


def test_events_that_are_not_ours(world: World, clients: dict[str, Any], store: DynamoJobStore) -> None:
    job = launch("x-1", store)
    service_task = task_state_change(
        task_arn="arn:aws:ecs:us-east-1:123456789012:task/training/svc",
        job_id="ecs-svc/1234567890123456789",
        last_status="RUNNING",
    )
    assert on(service_task) == {"NotAJob": 1}
    other_cluster = event(job, "STOPPED", exit_code=0, cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/other")
    assert on(other_cluster) == {"OtherCluster": 1}
    unknown = task_state_change(
        task_arn="arn:aws:ecs:us-east-1:123456789012:task/training/zzz", job_id="nobody", last_status="RUNNING"
    )
    assert on(unknown) == {"UnknownJob": 1}
    malformed = event(job, "RUNNING")
    del malformed["detail"]["taskArn"]
    assert on(malformed) == {"MalformedEvent": 1}
    assert on({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "detail": {}}) == {
        "UnexpectedEvent": 1
    }
    assert store.get("x-1").state == S.DISPATCHED  # type: ignore[union-attr]


# --- the reconcile pass ---------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ports(world: World, clients: dict[str, Any], store: DynamoJobStore, clock: FakeClock) -> Ports:
    return Ports(
        store=store, ecs=EcsAdapter(clients["ecs"], world.cluster), queues=SqsSender(clients["sqs"]), clock=clock
    )


def reconcile(ports: Ports) -> dict[str, int]:
    return handler(scheduled_event(), FakeLambdaContext(function_name="task-events"), ports=ports)


def test_reconcile_stops_timed_out_jobs(
    world: World, clients: dict[str, Any], store: DynamoJobStore, ports: Ports, clock: FakeClock
) -> None:
    job = launch("slow-1", store, timeout_seconds=600)
    launch("fast-1", store)
    on(event(job, "RUNNING"))
    clock.advance(601)
    assert reconcile(ports) == {"JobsTimedOut": 1, "JobsRunning": 1}  # fast-1's RUNNING event was "missed"
    failed = store.get("slow-1")
    assert failed is not None and failed.state == S.FAILED
    assert str(failed.reason).startswith("timeout: attempt 1 ran longer than timeout_seconds=600")
    task = clients["ecs"].describe_tasks(cluster="training", tasks=[job.task_arn])["tasks"][0]
    assert task["desiredStatus"] == "STOPPED" and task["stoppedReason"].startswith("timeout:")
    # The STOPPED event that follows our StopTask changes nothing.
    assert on(event(job, "STOPPED", exit_code=143, stop_code="UserInitiated")) == {"Ignored": 1}
    assert store.get("fast-1").state == S.RUNNING  # type: ignore[union-attr]


def test_reconcile_catches_a_missed_stop(
    world: World, clients: dict[str, Any], store: DynamoJobStore, ports: Ports
) -> None:
    job = launch("miss-1", store)
    clients["ecs"].stop_task(cluster="training", task=job.task_arn, reason="Essential container in task exited")
    assert reconcile(ports) == {"JobsSucceeded": 1}  # moto reports exit code 0 for its containers
    assert store.get("miss-1").state == S.SUCCEEDED  # type: ignore[union-attr]


def test_reconcile_handles_a_vanished_task(
    world: World, clients: dict[str, Any], store: DynamoJobStore, ports: Ports, clock: FakeClock
) -> None:
    now = clock()
    store.create_if_absent(
        "gone-1", state=S.SUBMITTED, attempt=1, now=now - timedelta(hours=3), spec=job_body("gone-1"), queue="dispatch"
    )
    store.transition(
        "gone-1",
        S.DISPATCHED,
        expected_states=S.SUBMITTED,
        expected_attempt=1,
        now=now - timedelta(hours=2),
        task_arn="arn:aws:ecs:us-east-1:123456789012:task/training/gone",
    )
    assert reconcile(ports) == {"JobsRetried": 1}
    job = store.get("gone-1")
    assert job is not None and job.state == S.RETRYING and "not found by DescribeTasks" in str(job.reason)
    _expire_delays()
    assert len(dispatch_messages(clients, world)) == 1


def test_reconcile_resends_lost_retry_messages(
    world: World, clients: dict[str, Any], store: DynamoJobStore, ports: Ports, clock: FakeClock
) -> None:
    old = clock() - timedelta(seconds=STALE_RETRY_SECONDS + 60)
    store.create_if_absent("lost-1", state=S.SUBMITTED, attempt=1, now=old, spec=job_body("lost-1"), queue="dispatch")
    store.transition("lost-1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=old, task_arn="t")
    store.transition(
        "lost-1",
        S.RETRYING,
        expected_states=S.DISPATCHED,
        expected_attempt=1,
        now=old,
        attempt=2,
        reason="attempt 1 failed",
    )
    assert reconcile(ports) == {"RetryResent": 1}
    (message,) = dispatch_messages(clients, world)
    assert message["MessageAttributes"]["attempt"]["StringValue"] == "2"
    assert reconcile(ports) == {}  # refreshed: not re-sent on every pass
    resubmit(clients, world)


def test_reconcile_describes_up_to_100_tasks_per_call(
    world: World, clients: dict[str, Any], store: DynamoJobStore, ports: Ports, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_TASKS", "200")
    from submitter import wiring as submitter_wiring

    submitter_wiring.reset()
    for start in range(0, 105, 10):
        records = [sqs_record(job_body(f"many-{i}")) for i in range(start, min(start + 10, 105))]
        submitter(sqs_event(records), FakeLambdaContext())
    calls: list[str] = []
    clients["ecs"].meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
    clients["dynamodb"].meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
    assert reconcile(ports) == {"JobsRunning": 105}  # no RUNNING events were sent: reconcile catches up
    # DISPATCHED, RUNNING, RETRYING; then max_wait (SUBMITTED, RETRYING) and sweep parents (RUNNING; SUBMITTED reused)
    assert calls.count("DescribeTasks") == 2 and calls.count("Query") == 6
    calls.clear()
    assert reconcile(ports) == {"Ignored": 105}
    # ... and the orphan sweep lists the cluster's tasks (moto: one page), all already matched to their jobs
    expected = ["Query", "Query", "DescribeTasks", "DescribeTasks", "Query", "ListTasks"]
    assert calls == [*expected, "Query", "Query", "Query"]


# --- AWS calls per event ----------------------------------------------------------------------------


def test_api_calls_per_task_event(world: World, clients: dict[str, Any], store: DynamoJobStore) -> None:
    job = launch("calls-1", store)
    calls: list[str] = []
    for service in ("dynamodb", "ecs", "sqs"):
        aws_clients.client(service).meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
    on(event(job, "RUNNING"))
    assert calls == ["GetItem", "UpdateItem"]
    calls.clear()
    on(event(job, "STOPPED", exit_code=1))
    assert calls == ["GetItem", "UpdateItem", "SendMessage"]


def test_settings_are_read_from_the_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from jobs.errors import ConfigError

    monkeypatch.delenv("DISPATCH_QUEUE_URL")
    wiring.reset()
    with pytest.raises(ConfigError, match="DISPATCH_QUEUE_URL: is not set"):
        on(event(JobRecord(job_id="a", state=S.RUNNING, attempt=1, task_arn="t"), "RUNNING"))


def test_iso_helper_matches_events() -> None:
    assert iso(datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)) == "2026-01-02T03:04:05.678Z"


def test_a_record_with_an_invalid_spec_is_left_alone(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    now = datetime.now(UTC)
    store.create_if_absent("weird-1", state=S.SUBMITTED, attempt=1, now=now, spec='{"command": "not a list"}')
    store.transition("weird-1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=now, task_arn="t")
    stop = task_state_change(task_arn="t", job_id="weird-1", last_status="STOPPED", exit_code=0)
    assert on(stop) == {"InvalidRecord": 1}
    assert store.get("weird-1").state == S.DISPATCHED  # type: ignore[union-attr]
