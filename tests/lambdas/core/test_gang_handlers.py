"""Distributed jobs under moto: the submitter launches a gang, the task-events handler runs its lifecycle.

moto records tasks but never moves them, so `ecs_moves` plays ECS: it changes a task in moto's backend and returns
the "ECS Task State Change" event ECS would send, built from DescribeTasks (the handler then sees the same state
in its own DescribeTasks calls).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from aws.ecs import EcsAdapter
from aws.job_store import DynamoJobStore
from jobs.record import JobRecord
from jobs.states import JobState
from lifecycle.ports import Ports
from submitter.handler import handler as submitter
from task_events.handler import handler as task_events
from tests.lambdas.core.helpers import (
    ACCOUNT,
    CLUSTER,
    REGION,
    FakeLambdaContext,
    World,
    job_body,
    receive_all,
    run_batch,
    scheduled_event,
    sqs_event,
    sqs_record,
)

S = JobState
CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone"


@pytest.fixture
def store(world: World, clients: dict[str, Any]) -> DynamoJobStore:
    return DynamoJobStore(clients["dynamodb"], world.table)


def submit(job_id: str, ports: Ports | None = None, **fields: Any) -> dict[str, Any]:
    body = job_body(job_id, nodes=2, **fields)
    return submitter(sqs_event([sqs_record(body)]), FakeLambdaContext(), ports=ports)


def ranks(clients: dict[str, Any], job_id: str) -> list[dict[str, Any]]:
    """The job's live tasks, described with tags, in rank order."""
    arns = clients["ecs"].list_tasks(cluster=CLUSTER, startedBy=job_id)["taskArns"]
    tasks = clients["ecs"].describe_tasks(cluster=CLUSTER, tasks=arns, include=["TAGS"])["tasks"] if arns else []
    live = [t for t in tasks if t["desiredStatus"] == "RUNNING"]  # moto's startedBy filter keeps stopped ones
    return sorted(live, key=lambda t: int(_tags(t)["rank"]))


def _tags(task: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in task.get("tags", [])}


def _env(task: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]}


def ecs_moves(clients: dict[str, Any], arn: str, status: str, **change: Any) -> dict[str, Any]:
    """Move a task in moto's backend as ECS would, and return ECS's event for the change."""
    from moto.ecs.models import ecs_backends

    task = ecs_backends[ACCOUNT][REGION].tasks[CLUSTER][arn]
    task.last_status = status
    task.desired_status = change.get("desired", "STOPPED" if status == "STOPPED" else task.desired_status)
    task.stop_code = change.get("stop_code", "EssentialContainerExited" if status == "STOPPED" else None)
    task.stopped_reason = change.get("reason", "")
    for container in task.containers:
        container.exitCode = change.get("exit_code")
    (detail,) = clients["ecs"].describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": datetime.now(UTC).isoformat(),
        "region": REGION,
        "resources": [arn],
        "detail": json.loads(json.dumps(detail, default=lambda d: d.isoformat())),
    }


def on(event: dict[str, Any]) -> dict[str, int]:
    return task_events(event, FakeLambdaContext(function_name="task-events"))


def current(store: DynamoJobStore, job_id: str) -> JobRecord:
    job = store.get(job_id)
    assert job is not None
    return job


class ScriptedEcs(EcsAdapter):
    """The real moto-backed adapter, except that RunTask on `no_capacity` providers fails from call `fail_from`."""

    def __init__(self, ecs: Any, no_capacity: set[str], fail_from: int = 1) -> None:
        super().__init__(ecs, CLUSTER)
        self.no_capacity, self.fail_from, self.calls = no_capacity, fail_from, 0

    def run_task(self, request: Any) -> Any:
        self.calls += 1
        provider = request["capacityProviderStrategy"][0]["capacityProvider"]
        if provider in self.no_capacity and self.calls >= self.fail_from:
            return {"tasks": [], "failures": [{"arn": request["taskDefinition"], "reason": CAPACITY}]}
        return super().run_task(request)


def scripted_ports(store: DynamoJobStore, clients: dict[str, Any], ecs: ScriptedEcs) -> Ports:
    from aws.sqs import SqsSender
    from jobs.timeutil import utcnow

    return Ports(store=store, ecs=ecs, queues=SqsSender(clients["sqs"]), clock=utcnow)


# --- launch -----------------------------------------------------------------------------------------


def test_a_gang_starts_every_rank_on_one_provider(world: World, clients: dict[str, Any], store: DynamoJobStore) -> None:
    assert submit("g-1", environment={"EPOCHS": "2"}) == {"batchItemFailures": []}
    job = current(store, "g-1")
    tasks = ranks(clients, "g-1")
    assert job.state == S.DISPATCHED and job.capacity_provider == "FARGATE_SPOT"
    assert job.extra["gang_tasks"] == [t["taskArn"] for t in tasks] and job.task_arn == tasks[0]["taskArn"]
    for rank, task in enumerate(tasks):
        assert task["capacityProviderName"] == "FARGATE_SPOT" and task["group"] == "gang:g-1"
        assert _tags(task) == {"job-id": "g-1", "attempt": "1", "rank": str(rank)}
        env = _env(task)
        assert {k: env[k] for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "TRAIN_JOBS_TABLE")} == {
            "WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": "0",
            "TRAIN_JOBS_TABLE": "jobs",
        }
        assert env["EPOCHS"] == "2" and env["TRAIN_JOB_ID"] == "g-1" and env["TRAIN_CHECKPOINT_URI"]
        command = task["overrides"]["containerOverrides"][0]["command"]
        assert command == ["python", "-m", "worker.rendezvous", "--", "python", "train.py"]


def test_a_gang_counts_all_its_ranks_against_the_cap(
    world: World, clients: dict[str, Any], store: DynamoJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from submitter import wiring

    monkeypatch.setenv("MAX_CONCURRENT_TASKS", "2")
    wiring.reset()
    submitter(sqs_event([sqs_record(job_body("single-1"))]), FakeLambdaContext())
    submit("g-cap")
    job = current(store, "g-cap")
    assert job.state == S.SUBMITTED and ranks(clients, "g-cap") == []
    assert "concurrency cap reached (1 of 2 training tasks active); this job needs 2" in str(job.reason)


def test_without_spot_for_every_rank_the_whole_gang_runs_on_demand(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    ecs = ScriptedEcs(clients["ecs"], no_capacity={"FARGATE_SPOT"}, fail_from=2)  # rank 0 gets Spot, rank 1 not
    submit("g-od", ports=scripted_ports(store, clients, ecs))
    job = current(store, "g-od")
    assert job.state == S.DISPATCHED and job.capacity_provider == "FARGATE"
    assert "no capacity for rank 1 of 2 on FARGATE_SPOT" in str(job.reason)
    tasks = ranks(clients, "g-od")
    assert [t["capacityProviderName"] for t in tasks] == ["FARGATE", "FARGATE"]  # the Spot rank 0 was stopped
    assert job.extra["gang_tasks"] == [t["taskArn"] for t in tasks]


def test_without_capacity_anywhere_nothing_is_left_running(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    ecs = ScriptedEcs(clients["ecs"], no_capacity={"FARGATE"})  # Spot takes rank 0 and 1, on-demand nothing
    submit("g-none", ports=scripted_ports(store, clients, ecs), spot=False)
    job = current(store, "g-none")
    assert job.state == S.SUBMITTED and job.launch_claim is None and ranks(clients, "g-none") == []
    assert str(job.reason).startswith("waiting: no capacity for rank 0 of 2 on FARGATE")
    (deferred,) = receive_all(clients["sqs"], world.dispatch_url) or [None]
    assert deferred is None  # put back with a delay: not visible yet


# --- lifecycle ------------------------------------------------------------------------------------


def test_the_gang_runs_and_succeeds_when_every_rank_exits_zero(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    submit("g-ok")
    rank0, rank1 = (t["taskArn"] for t in ranks(clients, "g-ok"))
    ecs_moves(clients, rank1, "PENDING")
    assert on(ecs_moves(clients, rank0, "RUNNING")) == {"Ignored": 1}
    assert current(store, "g-ok").state == S.DISPATCHED  # not every rank runs yet
    assert on(ecs_moves(clients, rank1, "RUNNING")) == {"JobsRunning": 1}
    assert on(ecs_moves(clients, rank0, "STOPPED", exit_code=0)) == {"Ignored": 1}
    assert current(store, "g-ok").state == S.RUNNING
    assert on(ecs_moves(clients, rank1, "STOPPED", exit_code=0)) == {"JobsSucceeded": 1}
    done = current(store, "g-ok")
    assert done.state == S.SUCCEEDED and done.exit_code == 0
    assert [h["to"] for h in done.history] == ["SUBMITTED", "DISPATCHED", "RUNNING", "SUCCEEDED"]


def test_an_interrupted_rank_stops_the_others_and_restarts_the_gang_on_demand(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    submit("g-spot")
    rank0, rank1 = (t["taskArn"] for t in ranks(clients, "g-spot"))
    on(ecs_moves(clients, rank0, "RUNNING"))
    on(ecs_moves(clients, rank1, "RUNNING"))
    notice = ecs_moves(clients, rank1, "RUNNING", desired="STOPPED", stop_code="SpotInterruption", reason="Spot")
    assert on(notice) == {"JobsInterrupted": 1}
    on(notice)  # a duplicate changes nothing
    job = current(store, "g-spot")
    assert job.state == S.RETRYING and job.attempt == 2 and job.interruptions == 1 and job.failures == 0
    described = {t["taskArn"]: t for t in clients["ecs"].describe_tasks(cluster=CLUSTER, tasks=[rank0, rank1])["tasks"]}
    assert described[rank0]["desiredStatus"] == "STOPPED"  # stopped by the handler
    assert described[rank1]["lastStatus"] == "RUNNING"  # checkpointing on its own, not stopped twice
    stopped = ecs_moves(clients, rank0, "STOPPED", exit_code=143, stop_code="UserInitiated")
    assert on(stopped) == {"RetryResent": 1}  # a duplicate dispatch message, which the submitter skips
    while run_batch(
        clients["sqs"], world.dispatch_url, world.dispatch_arn, lambda e: submitter(e, FakeLambdaContext())
    ):
        pass
    relaunched = current(store, "g-spot")
    assert relaunched.state == S.DISPATCHED and relaunched.attempt == 2 and relaunched.capacity_provider == "FARGATE"
    assert set(relaunched.extra["gang_tasks"]).isdisjoint({rank0, rank1})


def test_a_stopped_rank_of_a_retrying_gang_resends_a_lost_dispatch_message(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    submit("g-resend")
    rank0, rank1 = (t["taskArn"] for t in ranks(clients, "g-resend"))
    assert on(ecs_moves(clients, rank0, "STOPPED", exit_code=1)) == {"JobsRetried": 1}
    assert receive_all(clients["sqs"], world.dispatch_url) == []  # the retry's message is delayed (say it is lost)
    assert on(ecs_moves(clients, rank1, "STOPPED", exit_code=143, stop_code="UserInitiated")) == {"RetryResent": 1}
    (resent,) = receive_all(clients["sqs"], world.dispatch_url)
    assert json.loads(resent["Body"])["job_id"] == "g-resend"
    assert current(store, "g-resend").state == S.RETRYING and current(store, "g-resend").attempt == 2


def test_a_failed_rank_stops_the_other_and_uses_an_attempt(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    submit("g-fail")
    rank0, rank1 = (t["taskArn"] for t in ranks(clients, "g-fail"))
    assert on(ecs_moves(clients, rank0, "STOPPED", exit_code=1)) == {"JobsRetried": 1}
    job = current(store, "g-fail")
    assert job.state == S.RETRYING and job.failures == 1 and "rank 0 of 2" in str(job.reason)
    (rank1_now,) = clients["ecs"].describe_tasks(cluster=CLUSTER, tasks=[rank1])["tasks"]
    assert rank1_now["desiredStatus"] == "STOPPED"


def test_reconcile_stops_ranks_left_running_after_the_job_ended(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    submit("g-orphan")
    rank0, rank1 = (t["taskArn"] for t in ranks(clients, "g-orphan"))
    job = current(store, "g-orphan")
    # The job ended (say a cancel recorded while StopTask on rank 1 failed): rank 1 still runs.
    store.transition(
        "g-orphan", S.CANCELLED, expected_states=S.DISPATCHED, expected_attempt=1, now=datetime.now(UTC), reason="x"
    )
    ecs_moves(clients, rank0, "STOPPED", exit_code=143, stop_code="UserInitiated")
    assert job.extra["gang_tasks"] == [rank0, rank1]
    counts = on(scheduled_event())
    assert counts.get("OrphanRanksStopped") == 1
    (rank1_now,) = clients["ecs"].describe_tasks(cluster=CLUSTER, tasks=[rank1])["tasks"]
    assert rank1_now["desiredStatus"] == "STOPPED" and "orphan: job g-orphan is CANCELLED" in rank1_now["stoppedReason"]
    assert on(scheduled_event()).get("OrphanRanksStopped") is None  # nothing left to stop


def test_reconcile_catches_a_gang_whose_events_were_lost(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    submit("g-lost")
    rank0, rank1 = (t["taskArn"] for t in ranks(clients, "g-lost"))
    ecs_moves(clients, rank0, "STOPPED", exit_code=0)
    ecs_moves(clients, rank1, "STOPPED", exit_code=0)
    assert on(scheduled_event()).get("JobsSucceeded") == 1
    done = current(store, "g-lost")
    assert done.state == S.SUCCEEDED
    (usage,) = done.extra["usage"]  # billed per rank task (moto's tasks never report a start: 0 s each)
    assert usage["tasks"] == 2 and usage["seconds"] == 0 and usage["capacity_provider"] == "FARGATE_SPOT"


def test_a_rank_that_exited_zero_early_still_counts_once_ecs_forgets_it(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    from moto.ecs.models import ecs_backends

    submit("g-early")
    rank0, rank1 = (t["taskArn"] for t in ranks(clients, "g-early"))
    on(ecs_moves(clients, rank0, "RUNNING"))
    on(ecs_moves(clients, rank1, "RUNNING"))
    assert on(ecs_moves(clients, rank0, "STOPPED", exit_code=0)) == {"Ignored": 1}
    assert current(store, "g-early").extra["gang_exited_0"]["task"] == rank0
    del ecs_backends[ACCOUNT][REGION].tasks[CLUSTER][rank0]  # about an hour later DescribeTasks forgets it
    assert on(ecs_moves(clients, rank1, "STOPPED", exit_code=0)) == {"JobsSucceeded": 1}
    assert current(store, "g-early").state == S.SUCCEEDED


# --- rendezvous -----------------------------------------------------------------------------------


class Rank0PublishesEarly(ScriptedEcs):
    """Rank 0 starts and publishes its address while the submitter is still starting rank 1."""

    def __init__(self, ecs: Any, ddb: Any, table: str) -> None:
        super().__init__(ecs, no_capacity=set())
        self.ddb, self.table, self.claim = ddb, table, ""

    def run_task(self, request: Any) -> Any:
        env = {e["name"]: e["value"] for e in request["overrides"]["containerOverrides"][0]["environment"]}
        if env["RANK"] == "0":
            self.claim = env["TRAIN_LAUNCH_CLAIM"]
        else:
            from worker import rendezvous

            job_id, attempt, master = env["TRAIN_JOB_ID"], int(env["TRAIN_ATTEMPT"]), env["TRAIN_MASTER_TASK"]
            rendezvous.publish(
                self.ddb, self.table, job_id, attempt, "10.0.1.7", 29411, claim=self.claim, task_arn=master
            )
        return super().run_task(request)


def test_an_address_rank_0_publishes_during_the_launch_is_kept(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    from worker import rendezvous

    ecs = Rank0PublishesEarly(clients["ecs"], clients["dynamodb"], world.table)
    submit("g-rdv", ports=scripted_ports(store, clients, ecs))
    job = current(store, "g-rdv")
    rank0, rank1 = ranks(clients, "g-rdv")
    assert job.state == S.DISPATCHED and _env(rank1)["TRAIN_MASTER_TASK"] == rank0["taskArn"] == job.task_arn
    assert "TRAIN_MASTER_TASK" not in _env(rank0) and _env(rank0)["TRAIN_LAUNCH_CLAIM"] == ecs.claim
    found = rendezvous.wait_for_master(
        clients["dynamodb"], world.table, "g-rdv", 1, master_task=job.task_arn, timeout=0
    )
    assert found == ("10.0.1.7", 29411)


def test_taking_the_launch_claim_clears_the_previous_rendezvous(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    """A takeover relaunches the same attempt: the lost launch's address must not be found by the new ranks."""
    old = {"M": {"attempt": {"N": "1"}, "addr": {"S": "10.0.0.9"}, "port": {"N": "29400"}, "task": {"S": "arn:old"}}}
    item = {"pk": {"S": "g-take"}, "state": {"S": "SUBMITTED"}, "attempt": {"N": "1"}}
    clients["dynamodb"].put_item(TableName=world.table, Item={**item, "launch_claim": {"S": "c1"}, "rendezvous": old})
    store.claim_launch("g-take", state=S.SUBMITTED, attempt=1, claim="c2", now=datetime.now(UTC), takeover_from="c1")
    raw = clients["dynamodb"].get_item(TableName=world.table, Key={"pk": {"S": "g-take"}})["Item"]
    assert raw["launch_claim"] == {"S": "c2"} and "rendezvous" not in raw


def test_a_rank_out_of_memory_fails_the_gang_at_once_and_stops_the_other(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    submit("g-oom")
    rank0, rank1 = (t["taskArn"] for t in ranks(clients, "g-oom"))
    on(ecs_moves(clients, rank0, "RUNNING"))
    on(ecs_moves(clients, rank1, "RUNNING"))
    on(ecs_moves(clients, rank1, "STOPPED", exit_code=137, reason="OutOfMemoryError: container killed"))
    job = current(store, "g-oom")
    assert job.state == S.FAILED and job.failures == 0 and "out of memory" in str(job.reason)
    assert "rank 1 of 2" in str(job.reason) and "`memory`" in str(job.reason)
    (rank0_now,) = clients["ecs"].describe_tasks(cluster=CLUSTER, tasks=[rank0])["tasks"]
    assert rank0_now["desiredStatus"] == "STOPPED"


class ClaimTakenDuringLaunch(ScriptedEcs):
    """Another consumer takes the launch over while this one starts the last rank (a lease that expired)."""

    def __init__(self, ecs: Any, store: DynamoJobStore) -> None:
        super().__init__(ecs, no_capacity=set())
        self.store, self.claim = store, ""

    def run_task(self, request: Any) -> Any:
        env = {e["name"]: e["value"] for e in request["overrides"]["containerOverrides"][0]["environment"]}
        if env["RANK"] == "0":
            self.claim = env["TRAIN_LAUNCH_CLAIM"]
        else:
            self.store.claim_launch(
                env["TRAIN_JOB_ID"],
                state=S.SUBMITTED,
                attempt=1,
                claim="other",
                now=datetime.now(UTC),
                takeover_from=self.claim,
            )
        return super().run_task(request)


def test_a_gang_launch_that_loses_its_claim_stops_the_ranks_it_started(
    world: World, clients: dict[str, Any], store: DynamoJobStore
) -> None:
    ecs = ClaimTakenDuringLaunch(clients["ecs"], store)
    submit("g-lost-claim", ports=scripted_ports(store, clients, ecs))
    job = current(store, "g-lost-claim")
    assert job.state == S.SUBMITTED and job.launch_claim == "other"  # the other consumer's launch goes on
    assert ranks(clients, "g-lost-claim") == []  # ours are stopped, not left to the orphan pass
