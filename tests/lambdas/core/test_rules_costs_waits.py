"""Retry rules, per-attempt cost and max_wait through the real handlers under moto."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from aws.ecs import EcsAdapter
from aws.job_store import DynamoJobStore
from aws.sqs import SqsSender
from jobs.ecs import FARGATE, FARGATE_SPOT
from jobs.jobspec import parse_job_spec
from jobs.states import JobState
from jobs.timeutil import parse_iso
from lifecycle.launch_plan import LaunchConfig, hold_for_spot, plan_launch
from lifecycle.ports import Ports
from lifecycle.ports import Ports as SubmitterPorts
from submitter import wiring as submitter_wiring
from submitter.handler import handler as submitter
from task_events import wiring as task_events_wiring
from task_events.handler import handler as task_events
from tests.lambdas.core.conftest import FakeClock
from tests.lambdas.core.helpers import (
    FakeLambdaContext,
    World,
    job_body,
    queue_depth,
    receive_all,
    scheduled_event,
    sqs_event,
    sqs_record,
    task_state_change,
)

S = JobState
PRICES = {
    "FARGATE": {"vcpu_hour": 0.04048, "gb_hour": 0.004445},
    "FARGATE_SPOT": {"vcpu_hour": 0.012144, "gb_hour": 0.0013335},
}


@pytest.fixture
def store(world: World, clients: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> DynamoJobStore:
    monkeypatch.setenv("FARGATE_PRICES", json.dumps(PRICES))
    task_events_wiring.reset()
    submitter_wiring.reset()
    return DynamoJobStore(clients["dynamodb"], world.table)


def launch(store: DynamoJobStore, job_id: str, **fields: Any) -> Any:
    submitter(sqs_event([sqs_record(job_body(job_id, **fields))]), FakeLambdaContext())
    job = store.get(job_id)
    assert job is not None and job.state == S.DISPATCHED
    return job


def on(job: Any, status: str, **kwargs: Any) -> dict[str, int]:
    event = task_state_change(task_arn=str(job.task_arn), job_id=job.job_id, last_status=status, **kwargs)
    return task_events(event, FakeLambdaContext(function_name="task-events"))


def test_out_of_memory_fails_at_once_naming_the_memory_setting(store: DynamoJobStore) -> None:
    job = launch(store, "oom", cpu=1024, memory=2048)
    on(job, "RUNNING")
    assert on(job, "STOPPED", exit_code=137, stopped_reason="OutOfMemoryError: Container killed") == {"JobsFailed": 1}
    failed = store.get("oom")
    assert failed is not None and failed.state == S.FAILED and failed.failures == 0
    assert "out of memory: raise `memory` in the job spec (now 2048 MiB; allowed for cpu 1024" in str(failed.reason)


def test_user_exit_rule_ends_the_job_and_a_retry_rule_uses_an_attempt(
    store: DynamoJobStore, clients: dict[str, Any], world: World
) -> None:
    rules = [{"exit_code": "3", "action": "EXIT"}, {"exit_code": "*", "action": "RETRY"}]
    job = launch(store, "rules", retry_rules=rules, max_attempts=2)
    assert on(job, "STOPPED", exit_code=2) == {"JobsRetried": 1}
    retried = store.get("rules")
    assert retried is not None and retried.state == S.RETRYING and retried.failures == 1
    assert queue_depth(clients["sqs"], world.dispatch_url)["delayed"] == 1  # attempt 2, after its backoff
    other = launch(store, "rules-2", retry_rules=rules)
    assert on(other, "STOPPED", exit_code=3) == {"JobsFailed": 1}
    assert "retry_rules[0] matched: EXIT" in str(store.get("rules-2").reason)  # type: ignore[union-attr]


def test_each_attempt_records_usage_and_the_job_its_cost(
    store: DynamoJobStore, clients: dict[str, Any], world: World
) -> None:
    job = launch(store, "costly", cpu=2048, memory=4096)
    start = job.dispatched_at
    t0 = parse_iso(str(start))
    on(job, "RUNNING", started_at=t0)
    on(job, "STOPPED", stop_code="SpotInterruption", exit_code=143, at=t0 + timedelta(seconds=1000), started_at=t0)
    interrupted = store.get("costly")
    assert interrupted is not None and interrupted.state == S.RETRYING and interrupted.interruptions == 1
    assert interrupted.extra["usage"] == [
        {
            "attempt": 1,
            "capacity_provider": "FARGATE_SPOT",
            "seconds": 1000,
            "vcpu_seconds": 2000,
            "gb_seconds": 4000,
            "interrupted": True,
        }
    ]
    (message,) = receive_all(clients["sqs"], world.dispatch_url)
    record = sqs_record(message["Body"], attributes=message["MessageAttributes"])
    submitter(sqs_event([record]), FakeLambdaContext())
    second = store.get("costly")
    assert second is not None and second.state == S.DISPATCHED and second.capacity_provider == "FARGATE"
    t1 = t0 + timedelta(seconds=1100)
    on(second, "RUNNING", started_at=t1, capacity_provider="FARGATE")
    on(second, "STOPPED", exit_code=0, at=t1 + timedelta(seconds=30), started_at=t1, capacity_provider="FARGATE")
    done = store.get("costly")
    assert done is not None and done.state == S.SUCCEEDED
    # hand-computed in test_cost.py: spot 1000 s interrupted + on-demand 30 s (billed 60 s) at 2 vCPU / 4 GB
    assert done.extra["cost_usd"] == pytest.approx(0.009874, abs=1e-6)
    assert done.extra["saving_usd"] == pytest.approx(0.0191994, abs=1e-6)
    assert done.extra["interrupted_cost_usd"] == pytest.approx(0.0082283, abs=1e-6)


def test_a_job_cancelled_while_retrying_keeps_the_cost_of_its_earlier_attempts(
    store: DynamoJobStore, clients: dict[str, Any], world: World
) -> None:
    job = launch(store, "retried", cpu=2048, memory=4096)
    t0 = parse_iso(str(job.dispatched_at))
    on(job, "RUNNING", started_at=t0)
    on(job, "STOPPED", stop_code="SpotInterruption", exit_code=143, at=t0 + timedelta(seconds=1000), started_at=t0)
    store.request_cancel("retried", now=t0 + timedelta(seconds=1001))
    (message,) = receive_all(clients["sqs"], world.dispatch_url)
    submitter(sqs_event([sqs_record(message["Body"], attributes=message["MessageAttributes"])]), FakeLambdaContext())
    cancelled = store.get("retried")
    assert cancelled is not None and cancelled.state == S.CANCELLED
    # hand-computed in test_cost.py: the interrupted spot attempt, 1000 s at 2 vCPU / 4 GB
    assert cancelled.extra["cost_usd"] == pytest.approx(0.0082283, abs=1e-6)
    assert cancelled.extra["interrupted_cost_usd"] == pytest.approx(0.0082283, abs=1e-6)


def test_max_wait_fail_ends_a_job_that_never_started(
    store: DynamoJobStore, world: World, clients: dict[str, Any], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_TASKS", "1")
    submitter_wiring.reset()
    launch(store, "first")
    body = job_body("patient", max_wait={"seconds": 120, "action": "FAIL"})
    submitter(sqs_event([sqs_record(body)]), FakeLambdaContext())
    waiting = store.get("patient")
    assert waiting is not None and waiting.state == S.SUBMITTED and "concurrency cap reached" in str(waiting.reason)
    ports = Ports(
        store=store, ecs=EcsAdapter(clients["ecs"], world.cluster), queues=SqsSender(clients["sqs"]), clock=clock
    )
    reconcile = lambda: task_events(scheduled_event(), FakeLambdaContext(function_name="te"), ports=ports)  # noqa: E731
    clock.advance(60)
    assert "JobsMaxWaitFailed" not in reconcile()
    clock.advance(120)
    assert reconcile().get("JobsMaxWaitFailed") == 1
    failed = store.get("patient")
    assert failed is not None and failed.state == S.FAILED and failed.launch_claim is None
    assert "not started within max_wait=120 s" in str(failed.reason) and "concurrency cap reached" in str(failed.reason)


def test_max_wait_on_demand_holds_spot_until_the_deadline(
    store: DynamoJobStore, world: World, clients: dict[str, Any]
) -> None:
    job = launch(store, "spotty", max_wait={"seconds": 600, "action": "ON_DEMAND"})
    tasks = clients["ecs"].describe_tasks(cluster=world.cluster, tasks=[job.task_arn])["tasks"]
    assert tasks[0]["capacityProviderName"] == FARGATE_SPOT
    spec = parse_job_spec(str(job.spec))
    config = LaunchConfig("c", {"default": "td"}, {}, "", ["s"], ["g"], "b")
    plan = plan_launch(spec, attempt=1, prefer_on_demand=False, config=config)
    submitted = parse_iso(str(job.submitted_at))
    assert hold_for_spot(plan, spec, job, submitted + timedelta(seconds=599)).providers == (FARGATE_SPOT,)
    assert hold_for_spot(plan, spec, job, submitted + timedelta(seconds=600)).providers == (FARGATE_SPOT, FARGATE)


def test_submitter_fails_a_redelivered_job_past_its_max_wait(
    store: DynamoJobStore, world: World, clients: dict[str, Any], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_TASKS", "1")
    submitter_wiring.reset()
    launch(store, "first")
    ports = SubmitterPorts(
        store=store, ecs=EcsAdapter(clients["ecs"], world.cluster), queues=SqsSender(clients["sqs"]), clock=clock
    )
    record = sqs_record(job_body("late", max_wait={"seconds": 60}))
    assert submitter(sqs_event([record]), FakeLambdaContext(), ports=ports) == {"batchItemFailures": []}
    clock.advance(61)
    submitter(sqs_event([record]), FakeLambdaContext(), ports=ports)  # the deferred copy comes back
    late = store.get("late")
    assert late is not None and late.state == S.FAILED and "not started within max_wait=60 s" in str(late.reason)


def test_a_dispatched_job_redelivered_after_its_max_wait_is_left_running(
    store: DynamoJobStore, world: World, clients: dict[str, Any], clock: FakeClock
) -> None:
    ports = SubmitterPorts(
        store=store, ecs=EcsAdapter(clients["ecs"], world.cluster), queues=SqsSender(clients["sqs"]), clock=clock
    )
    record = sqs_record(job_body("started", max_wait={"seconds": 60}))
    assert submitter(sqs_event([record]), FakeLambdaContext(), ports=ports) == {"batchItemFailures": []}
    job = store.get("started")
    assert job is not None and job.state == S.DISPATCHED and not job.started_at
    clock.advance(61)
    assert submitter(sqs_event([record]), FakeLambdaContext(), ports=ports) == {"batchItemFailures": []}
    after = store.get("started")
    assert after is not None and after.state == S.DISPATCHED and after.task_arn == job.task_arn
    task = clients["ecs"].describe_tasks(cluster=world.cluster, tasks=[job.task_arn])["tasks"][0]
    assert task["desiredStatus"] == "RUNNING"


def test_jobs_the_submitter_ends_emit_one_metric_each(
    store: DynamoJobStore,
    world: World,
    clients: dict[str, Any],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_TASKS", "1")
    submitter_wiring.reset()
    launch(store, "first")
    ports = SubmitterPorts(
        store=store, ecs=EcsAdapter(clients["ecs"], world.cluster), queues=SqsSender(clients["sqs"]), clock=clock
    )
    late, stopped = sqs_record(job_body("late", max_wait={"seconds": 60})), sqs_record(job_body("stopped"))
    invalid = sqs_record(job_body("invalid", cpu=3))
    capsys.readouterr()
    submitter(sqs_event([late, stopped, invalid]), FakeLambdaContext(), ports=ports)
    store.request_cancel("stopped", now=clock())
    clock.advance(61)
    for _ in range(2):  # the deferred copies come back, twice
        submitter(sqs_event([late, stopped]), FakeLambdaContext(), ports=ports)
    assert [store.get(j).state for j in ("late", "stopped", "invalid")] == [S.FAILED, S.CANCELLED, S.REJECTED]  # type: ignore[union-attr]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    metrics = [m for m in lines if "job_id" in m]  # (the handlers' own metrics are EMF lines too)
    assert sorted((m["job_id"], m["State"], m["Queue"]) for m in metrics) == [
        ("invalid", "REJECTED", "dispatch"),
        ("late", "FAILED", "dispatch"),
        ("stopped", "CANCELLED", "dispatch"),
    ]
