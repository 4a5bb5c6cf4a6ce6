"""trainctl for sweeps and insight, against moto: submit --array, status with counts and cost, list --parent,
cancel of a parent, and "why is my job waiting" (`trainctl explain`) from realistic records."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobs.states import JobState
from jobs.timeutil import iso
from tests.containers import test_trainctl
from tests.containers.test_trainctl import Deployment, metric_lines, run
from trainctl.explain import Facts, Queue, Workers, explain

S = JobState
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
deployment = test_trainctl.deployment  # the same moto deployment fixture


def put(deployment: Deployment, job_id: str, state: JobState = S.SUBMITTED, **fields: Any) -> None:
    spec = fields.pop("spec", {"command": ["python", "t.py"], "job_id": job_id})
    initial = S.REJECTED if state == S.REJECTED else S.SUBMITTED
    deployment.store.create_if_absent(
        job_id,
        state=initial,
        attempt=1,
        now=NOW,
        spec=json.dumps(spec),
        queue=fields.pop("queue", "worker"),
        **fields,
    )
    path = {S.RUNNING: [S.RUNNING], S.SUCCEEDED: [S.RUNNING, S.SUCCEEDED]}.get(state, [])
    for before, after in zip([S.SUBMITTED, *path], path, strict=False):
        deployment.store.transition(job_id, after, expected_states=before, expected_attempt=1, now=NOW)


def test_submit_array_goes_to_the_dispatch_queue_as_a_parent(
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "submit", "--array", "4", "--job-id", "arr", "--command", "python t.py {{index}}")
    assert code == 0 and out == "arr\n"
    (message,) = deployment.messages("DispatchQueueUrl")
    assert json.loads(message["Body"])["array"] == {"size": 4}
    parent = deployment.store.get("arr")
    assert parent is not None and parent.extra["kind"] == "array" and parent.extra["array_size"] == 4


def test_submit_rejects_a_bad_array_in_one_line(
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "submit", "--array", "1", "--command", "python t.py")
    assert code == 2 and "array.size: Input should be greater than or equal to 2" in err


def sweep_parent(deployment: Deployment) -> None:
    spec = {"job_id": "sw", "command": ["p"], "array": {"size": 3}}
    put(deployment, "sw", S.RUNNING, spec=spec, queue="dispatch", kind="array", array_size=3, enqueued=3)
    put(deployment, "sw-0", S.SUCCEEDED, cost_usd=0.5, saving_usd=1.0, parent_id="sw", array_index=0)
    put(deployment, "sw-1", S.RUNNING, parent_id="sw", array_index=1)
    put(deployment, "sw-2", S.SUBMITTED, parent_id="sw", array_index=2)


def test_status_of_a_parent_shows_counts_bar_and_cost(
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sweep_parent(deployment)
    code, out, _ = run(capsys, "status", "sw")
    assert code == 0
    assert "children   [##########....................] 1/3  3 children: 1 RUNNING, 1 SUBMITTED, 1 SUCCEEDED" in out
    assert "cost       $0.5000 in total (saved $1.0000 vs on-demand)" in out


def test_list_parent_shows_children_in_order_with_cost(
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sweep_parent(deployment)
    code, out, _ = run(capsys, "list", "--parent", "sw")
    lines = out.splitlines()
    assert code == 0 and "COST ($)" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["sw-0", "sw-1", "sw-2"] and "0.5000" in lines[1]
    code, _, err = run(capsys, "list", "--parent", "sw-0")
    assert code == 1 and "is not an array job or sweep" in err


def test_cancel_parent_cancels_every_child_not_yet_terminal(
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sweep_parent(deployment)
    code, out, _ = run(capsys, "cancel", "sw")
    assert code == 0 and "1 waiting child(ren) cancelled, 1 running child(ren) stopping" in out
    states = {i: deployment.store.get(f"sw-{i}") for i in range(3)}
    assert states[0].state == S.SUCCEEDED and states[2].state == S.CANCELLED  # type: ignore[union-attr]
    assert states[1].cancel_requested  # type: ignore[union-attr]  # its worker stops it at the next heartbeat


def test_cancel_parent_emits_one_metric_line_per_child_it_ended(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trainctl.metrics")
    sweep_parent(deployment)
    run(capsys, "cancel", "sw")
    assert [(m["job_id"], m["State"], m["parent_id"]) for m in metric_lines(caplog)] == [("sw-2", "CANCELLED", "sw")]


def test_cancel_of_the_last_child_counts_on_its_parent_which_settles_with_the_summed_cost(
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = {"job_id": "sw", "command": ["p"], "array": {"size": 2}}
    put(deployment, "sw", S.RUNNING, spec=spec, queue="dispatch", kind="array", array_size=2, enqueued=2)
    put(deployment, "sw-0", S.SUCCEEDED, cost_usd=0.5, parent_id="sw", array_index=0)
    deployment.store.add_to("sw", "children_finished", 1, now=NOW)
    put(deployment, "sw-1", S.RUNNING, parent_id="sw", array_index=1)  # interrupted: its earlier attempt's cost
    deployment.store.transition(  # is on the record (jobs.cost prices each attempt's end)
        "sw-1", S.RETRYING, expected_states=S.RUNNING, expected_attempt=1, now=NOW, cost_usd=0.25
    )
    code, out, _ = run(capsys, "cancel", "sw-1")
    assert code == 0 and "sw-1: cancelled before it started" in out
    child, parent = deployment.store.get("sw-1"), deployment.store.get("sw")
    assert child is not None and child.state == S.CANCELLED and child.extra["cost_usd"] == 0.25
    assert parent is not None and parent.state == S.CANCELLED and parent.extra["children_finished"] == 2
    assert parent.extra["cost_usd"] == 0.75


def test_explain_a_worker_job_from_the_queue(
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put(deployment, "w1")
    deployment.sqs.send_message(QueueUrl=deployment.urls["WorkerQueueUrl"], MessageBody="{}")
    code, out, _ = run(capsys, "explain", "w1")
    assert code == 0 and out == "queued behind 1 message(s) on the worker queue\n"
    code, out, _ = run(capsys, "status", "w1")
    assert "why        queued behind 1 message(s) on the worker queue" in out


def test_explain_a_child_not_created_yet_and_unknown_jobs(
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put(
        deployment,
        "big",
        spec={"job_id": "big", "command": ["p"], "array": {"size": 900}},
        queue="dispatch",
        kind="array",
        array_size=900,
        enqueued=500,
    )
    code, out, _ = run(capsys, "explain", "big-700")
    assert code == 0 and "waiting for its parent: big has enqueued 500 of 900 children" in out
    code, _, err = run(capsys, "explain", "nope")
    assert code == 1 and err == "trainctl: error: job 'nope' not found\n"


# --- every waiting reason, from realistic records (pure) ------------------------------------------------------------


def record(deployment: Deployment, job_id: str, **fields: Any) -> Any:
    put(deployment, job_id, **fields)
    return deployment.store.get(job_id)


def facts(rec: Any, **kwargs: Any) -> Facts:
    return Facts(rec.job_id, NOW, rec, **kwargs)


def annotate(deployment: Deployment, job_id: str, reason: str, state: JobState = S.SUBMITTED) -> Any:
    return deployment.store.annotate(job_id, expected_states=state, expected_attempt=1, now=NOW, reason=reason)


def test_every_waiting_reason(deployment: Deployment) -> None:
    queue = Queue(visible=7, delayed=2, in_flight=3)
    rec = record(deployment, "a")
    assert explain(facts(rec, queue=queue, workers=Workers(0, 0, 0))) == [
        "queued behind 7 message(s) on the worker queue (2 delayed); scaling from zero: no worker yet "
        "(the scaler starts one on the backlog alarm)"
    ]
    since = iso(NOW - timedelta(seconds=20))
    assert explain(facts(rec, queue=queue, workers=Workers(2, 0, 2, since)))[0].endswith(
        f"scaling from zero: 2 worker(s) starting since {since}"
    )
    assert explain(facts(rec, queue=queue, workers=Workers(3, 3, 0)))[0].endswith("all 3 worker(s) busy")

    capped = annotate(
        deployment,
        record(deployment, "b", queue="dispatch").job_id,
        "waiting: concurrency cap reached (50 of 50 training tasks active) (next try in 20 s)",
    )
    assert explain(facts(capped)) == [
        f"concurrency cap reached (50 of 50 training tasks active); next try at {iso(NOW + timedelta(seconds=20))}"
    ]
    throttled = annotate(
        deployment,
        record(deployment, "c", queue="dispatch").job_id,
        "waiting: RunTask on FARGATE_SPOT throttled after retries (Rate exceeded) (next try in 10 s)",
    )
    assert explain(facts(throttled))[0].startswith("throttled: RunTask on FARGATE_SPOT throttled")

    spec = {"job_id": "d", "command": ["p"], "dedicated": True, "max_wait": {"seconds": 600, "action": "ON_DEMAND"}}
    record(deployment, "d", queue="dispatch", spec=spec)
    spot = annotate(deployment, "d", "waiting: no capacity on FARGATE_SPOT: Capacity is unavailable (next try in 40 s)")
    fallback = iso(NOW + timedelta(seconds=600))
    assert explain(facts(spot)) == [
        "capacity unavailable on Spot (last error: no capacity on FARGATE_SPOT: Capacity is unavailable); "
        f"next try at {iso(NOW + timedelta(seconds=40))}; on-demand fallback planned at {fallback}",
        f"max_wait 600 s: falls back to on-demand at {fallback} if not started by then",
    ]
    rejected = record(deployment, "f", state=S.REJECTED, reason="invalid job spec: cpu: 300 is not a Fargate cpu size")
    assert explain(facts(rejected)) == ["rejected: invalid job spec: cpu: 300 is not a Fargate cpu size"]

    failing = {"job_id": "g", "command": ["p"], "max_wait": {"seconds": 60}}
    waiting_job = record(deployment, "g", spec=failing)
    assert explain(facts(waiting_job, queue=queue))[1] == (
        f"max_wait 60 s: fails at {iso(NOW + timedelta(seconds=60))} if not started by then"
    )


def test_a_partly_started_gang_waits_for_its_gang(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    """A 2-rank job as the submitter records it (DISPATCHED, gang_tasks); rank 0 runs, rank 1 is still pending."""
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ecs.models import ecs_backends
    from moto.moto_api import state_manager

    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 1_000_000})  # statuses stay put
    request.addfinalizer(lambda: state_manager.unset_transition("ecs::task"))
    ecs = boto3.client("ecs", region_name=test_trainctl.REGION)
    ecs.create_cluster(clusterName="training")
    container = {"name": "trainer", "image": "trainer:latest", "memory": 512}
    ecs.register_task_definition(family="training", containerDefinitions=[container])
    network = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    started = ecs.run_task(
        cluster="training",
        taskDefinition="training",
        count=2,
        group="gang:e",
        startedBy="e",
        launchType="FARGATE",
        networkConfiguration=network,
    )
    arns = [task["taskArn"] for task in started["tasks"]]
    tasks = ecs_backends[DEFAULT_ACCOUNT_ID][test_trainctl.REGION].tasks["training"]
    tasks[arns[0]].last_status, tasks[arns[1]].last_status = "RUNNING", "PENDING"
    spec = {"job_id": "e", "command": ["p"], "dedicated": True, "nodes": 2}
    put(deployment, "e", queue="dispatch", spec=spec)
    deployment.store.transition(
        "e",
        S.DISPATCHED,
        expected_states=S.SUBMITTED,
        expected_attempt=1,
        now=NOW,
        task_arn=arns[0],
        capacity_provider="FARGATE_SPOT",
        gang_tasks=arns,
    )
    code, out, _ = run(capsys, "explain", "e")
    expected = f"waiting for its gang: 1 of 2 ranks running (rank 1 PENDING) on FARGATE_SPOT (launched {iso(NOW)})"
    assert code == 0 and expected in out, out
    gang = deployment.store.get("e")
    assert gang is not None and explain(facts(gang)) == [
        f"waiting for its gang: 2 ranks starting on FARGATE_SPOT (launched {iso(NOW)})"
    ]
    single = record(deployment, "s", queue="dispatch")
    deployment.store.transition(
        "s",
        S.DISPATCHED,
        expected_states=S.SUBMITTED,
        expected_attempt=1,
        now=NOW,
        task_arn=arns[0],
        capacity_provider="FARGATE",
    )
    assert single is not None
    dispatched = deployment.store.get("s")
    assert dispatched is not None and explain(facts(dispatched))[0].startswith("its task is starting on FARGATE")


def test_submit_rejects_a_non_dedicated_sweep_of_another_image(
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "submit", "--array", "3", "--image", "custom", "--command", "python t.py")
    assert code == 2 and "image: the children of a non-dedicated array or sweep run on the worker queue" in err
    assert deployment.messages("DispatchQueueUrl") == []
