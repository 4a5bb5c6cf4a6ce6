"""The worker applies the same retry rules, gives children their index, and leaves sweeps to the submitter."""

from __future__ import annotations

from common.states import JobState
from common.store import JobStore
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
    store: JobStore = world.store
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
