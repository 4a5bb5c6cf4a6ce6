"""A 50-child sweep through the real submitter and task-events handlers under moto: fan-out (redelivered),
children launched with their parameters, each child's cost, and the parent derived from its children."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aws.job_store import DynamoJobStore
from jobs.states import JobState
from submitter import wiring as submitter_wiring
from submitter.handler import handler as submitter
from task_events import wiring as task_events_wiring
from task_events.handler import handler as task_events
from tests.lambdas.core.helpers import FakeLambdaContext, World, run_batch, sqs_event, sqs_record, task_state_change

S = JobState
PRICES = {
    "FARGATE": {"vcpu_hour": 0.04048, "gb_hour": 0.004445},
    "FARGATE_SPOT": {"vcpu_hour": 0.012144, "gb_hour": 0.0013335},
}
GRID = {"lr": [0.1, 0.03, 0.01, 0.003, 0.001], "batch": [16, 32, 64, 128, 256], "seed_offset": [0, 1]}
SWEEP = {
    "job_id": "lr-sweep",
    "command": ["python", "train.py", "--lr", "{{lr}}", "--seed", "{{index}}"],
    "dedicated": True,
    "sweep": {"grid": GRID},
}


@pytest.fixture
def sweep_world(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("MAX_CONCURRENT_TASKS", "100")
    monkeypatch.setenv("FARGATE_PRICES", json.dumps(PRICES))
    submitter_wiring.reset()
    task_events_wiring.reset()
    return world


def test_sweep_of_50_runs_to_succeeded_without_duplicates(sweep_world: World, clients: dict[str, Any]) -> None:
    store, sqs = DynamoJobStore(clients["dynamodb"], sweep_world.table), clients["sqs"]
    parent_message = sqs_record(json.dumps(SWEEP), message_id="parent-message-1")
    submitter(sqs_event([parent_message]), FakeLambdaContext())
    submitter(sqs_event([parent_message]), FakeLambdaContext())  # the same message redelivered
    parent = store.get("lr-sweep")
    assert parent is not None and parent.state == S.RUNNING and parent.extra["enqueued"] == 50

    while run_batch(
        sqs, sweep_world.dispatch_url, sweep_world.dispatch_arn, lambda e: submitter(e, FakeLambdaContext())
    ):
        pass
    children = store.get_many([f"lr-sweep-{i}" for i in range(60)])
    assert sorted(children) == sorted(f"lr-sweep-{i}" for i in range(50))  # no child 50+, none twice
    tasks = clients["ecs"].list_tasks(cluster=sweep_world.cluster)["taskArns"]
    assert len(tasks) == 50  # the redelivered fan-out launched nothing twice

    described = clients["ecs"].describe_tasks(cluster=sweep_world.cluster, tasks=tasks)["tasks"]
    by_job = {t["startedBy"]: t for t in described}
    first = {e["name"]: e["value"] for e in by_job["lr-sweep-7"]["overrides"]["containerOverrides"][0]["environment"]}
    # grid order (last name varies fastest): index 7 = lr[7 // 10], batch[(7 // 2) % 5], seed_offset[7 % 2]
    assert first["LR"] == "0.1" and first["BATCH"] == "128" and first["SEED_OFFSET"] == "1"
    assert first["TRAIN_ARRAY_INDEX"] == "7" and first["TRAIN_PARENT_ID"] == "lr-sweep"
    command = by_job["lr-sweep-7"]["overrides"]["containerOverrides"][0]["command"]
    assert command == ["python", "train.py", "--lr", "0.1", "--seed", "7"]

    for child in children.values():
        context = FakeLambdaContext(function_name="task-events")
        for status in ("RUNNING", "STOPPED"):
            event = task_state_change(
                task_arn=str(child.task_arn),
                job_id=child.job_id,
                last_status=status,
                exit_code=0,
                capacity_provider=str(child.capacity_provider),
            )
            task_events(event, context)
    finished = store.get_many(list(children))
    assert {c.state for c in finished.values()} == {S.SUCCEEDED}
    parent = store.get("lr-sweep")
    assert parent is not None and parent.state == S.SUCCEEDED
    assert parent.reason == "50 children: 50 SUCCEEDED"
    # every child ran 1 vCPU / 2 GB for the 60 s minimum on FARGATE_SPOT: 60/3600 * (0.012144 + 2 * 0.0013335)
    assert finished["lr-sweep-0"].extra["cost_usd"] == pytest.approx(0.000246867, abs=1e-6)
    assert parent.extra["cost_usd"] == pytest.approx(50 * 0.000246867, abs=1e-5)


def test_a_failed_child_fails_the_parent_and_is_named(sweep_world: World, clients: dict[str, Any]) -> None:
    store, sqs = DynamoJobStore(clients["dynamodb"], sweep_world.table), clients["sqs"]
    document = {
        "job_id": "arr",
        "command": ["python", "t.py"],
        "dedicated": True,
        "max_attempts": 1,
        "array": {"size": 3},
    }
    submitter(sqs_event([sqs_record(json.dumps(document))]), FakeLambdaContext())
    while run_batch(
        sqs, sweep_world.dispatch_url, sweep_world.dispatch_arn, lambda e: submitter(e, FakeLambdaContext())
    ):
        pass
    for index, code in enumerate((0, 3, 0)):
        child = store.get(f"arr-{index}")
        assert child is not None
        event = task_state_change(
            task_arn=str(child.task_arn), job_id=child.job_id, last_status="STOPPED", exit_code=code
        )
        task_events(event, FakeLambdaContext(function_name="task-events"))
    parent = store.get("arr")
    assert parent is not None and parent.state == S.FAILED
    assert parent.reason == "3 children: 1 FAILED, 2 SUCCEEDED; failed: arr-1"


def test_an_invalid_child_rejects_the_parent(sweep_world: World, clients: dict[str, Any]) -> None:
    store = DynamoJobStore(clients["dynamodb"], sweep_world.table)
    document = {
        "job_id": "bad",
        "command": ["x" * 1000, "{{p}}" * 200],
        "dedicated": True,
        "sweep": {"grid": {"p": ["y" * 900, "z"]}},
    }
    submitter(sqs_event([sqs_record(json.dumps(document))]), FakeLambdaContext())
    parent = store.get("bad")
    assert parent is not None and parent.state == S.REJECTED and "children[0].command" in str(parent.reason)


def test_a_child_the_submitter_rejects_counts_on_its_parent_and_emits_its_metric(
    sweep_world: World, clients: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    store, sqs = DynamoJobStore(clients["dynamodb"], sweep_world.table), clients["sqs"]
    document = {
        "job_id": "big",
        "command": ["python", "t.py"],
        "dedicated": True,
        "environment": {f"V{i}": "é" * 75 for i in range(10)},
        "sweep": {"grid": {"p": ["é" * 1000, "z"]}},  # child 0's RunTask overrides are too large
    }
    submitter(sqs_event([sqs_record(json.dumps(document))]), FakeLambdaContext())
    while run_batch(
        sqs, sweep_world.dispatch_url, sweep_world.dispatch_arn, lambda e: submitter(e, FakeLambdaContext())
    ):
        pass
    rejected, launched = store.get("big-0"), store.get("big-1")
    assert rejected is not None and rejected.state == S.REJECTED and "RunTask overrides" in str(rejected.reason)
    assert launched is not None and launched.state == S.DISPATCHED
    event = task_state_change(task_arn=str(launched.task_arn), job_id="big-1", last_status="STOPPED", exit_code=0)
    task_events(event, FakeLambdaContext(function_name="task-events"))
    parent = store.get("big")
    assert parent is not None and parent.extra["children_finished"] == 2
    assert parent.state == S.FAILED and parent.reason == "2 children: 1 REJECTED, 1 SUCCEEDED; failed: big-0"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    metrics = [m for m in lines if "job_id" in m]  # (the handlers' own metrics are EMF lines too)
    assert sorted((m["job_id"], m["State"]) for m in metrics) == [("big-0", "REJECTED"), ("big-1", "SUCCEEDED")]
