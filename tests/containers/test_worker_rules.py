"""The worker applies the same retry rules, gives children their index, and leaves sweeps to the submitter."""

from __future__ import annotations

import json
from datetime import timedelta

from aws.job_store import DynamoJobStore
from jobs.states import JobState
from tests.containers import test_worker
from tests.containers.test_worker import World, spec

world = test_worker.world  # the same moto world fixture


def test_exit_rule_fails_at_once_and_default_retries(world: World) -> None:
    world.send(spec("exit-3", "raise SystemExit(3)", retry_rules=[{"exit_code": "3", "action": "EXIT"}]))
    world.worker().run()
    job = world.job("exit-3")
    assert job.state == JobState.FAILED and job.attempt == 1
    assert "retry_rules[0] matched: EXIT" in str(job.reason)


def test_a_killed_job_is_reported_out_of_memory(world: World) -> None:
    world.send(spec("oom", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", max_attempts=3))
    world.worker().run()
    job = world.job("oom")
    assert job.state == JobState.FAILED and job.attempt == 1
    assert "out of memory: the job ran out of the worker's memory; submit it with dedicated: true" in str(job.reason)


def test_array_parents_are_rejected_on_the_worker_queue(world: World) -> None:
    world.send(spec("arr", "print(1)", array={"size": 3}))
    world.worker().run()
    job = world.job("arr")
    assert job.state == JobState.REJECTED and "array jobs and sweeps go to the dispatch queue" in str(job.reason)


def test_a_child_gets_its_index_and_counts_on_its_parent(world: World) -> None:
    store: DynamoJobStore = world.store
    store.create_if_absent(
        "p", state=JobState.SUBMITTED, attempt=1, now=test_worker.utcnow(), kind="array", array_size=1, enqueued=1
    )
    store.transition(
        "p", JobState.RUNNING, expected_states=JobState.SUBMITTED, expected_attempt=1, now=test_worker.utcnow()
    )
    code = "import os; print(os.environ['TRAIN_ARRAY_INDEX'], os.environ['TRAIN_PARENT_ID'], os.environ['LR'])"
    world.send(spec("p-0", code, parent_id="p", array_index=0, environment={"LR": "0.1"}))
    worker = world.worker()
    worker.run()
    assert "[p-0#1] 0 p 0.1" in test_worker.output(worker)
    parent = store.get("p")
    assert parent is not None and parent.extra["children_finished"] == 1
    assert parent.state == JobState.SUCCEEDED and parent.reason == "1 children: 1 SUCCEEDED"


def test_every_way_a_worker_ends_a_child_counts_on_its_parent_and_emits_one_metric(world: World) -> None:
    store: DynamoJobStore = world.store
    then = test_worker.utcnow() - timedelta(hours=1)
    store.create_if_absent("q", state=JobState.SUBMITTED, attempt=1, now=then, kind="array", array_size=4, enqueued=4)
    store.transition("q", JobState.RUNNING, expected_states=JobState.SUBMITTED, expected_attempt=1, now=then)
    for index in range(4):
        store.create_if_absent(
            f"q-{index}",
            state=JobState.SUBMITTED,
            attempt=1,
            now=then,
            queue="worker",
            parent_id="q",
            array_index=index,
            interruptions=5 if index == 2 else 0,
        )
    store.request_cancel("q-0", now=then)  # cancelled before it started
    store.transition("q-2", JobState.RUNNING, expected_states=JobState.SUBMITTED, expected_attempt=1, now=then)
    world.send(spec("q-0", "raise SystemExit('must not run')", parent_id="q", array_index=0))
    world.send(spec("q-1", "print(1)", parent_id="q", array_index=1, image="custom"))  # rejected by the worker
    world.send(spec("q-2", "raise SystemExit('must not run')", parent_id="q", array_index=2))  # lost, gave up
    world.send(spec("q-3", "print(3)", parent_id="q", array_index=3))
    worker = world.worker()
    worker.run()
    states = [world.job(f"q-{i}").state for i in range(4)]
    assert states == [JobState.CANCELLED, JobState.REJECTED, JobState.FAILED, JobState.SUCCEEDED]
    parent = world.job("q")
    assert parent.extra["children_finished"] == 4 and parent.state == JobState.FAILED
    metrics = [json.loads(line) for line in test_worker.output(worker).splitlines() if line.startswith('{"_aws"')]
    assert sorted(m["job_id"] for m in metrics) == ["q-0", "q-1", "q-2", "q-3"]
    assert {m["Queue"] for m in metrics} == {"worker"} and all(m["parent_id"] == "q" for m in metrics)
