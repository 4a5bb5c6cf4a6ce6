"""The dedicated-task row runs the product's lifecycle (lifecycle.submit, lifecycle.task_watch) over the simulator:
the in-memory job store ends up holding what the real code wrote for every job."""

from __future__ import annotations

import pytest

from bench.models import Params
from bench.policies.dedicated import OursDedicated, job_id
from bench.sim import JobRun, Ledger, Process, Sim
from bench.workloads import Job, Workload, rng_for
from jobs.ecs import FARGATE, FARGATE_SPOT
from jobs.states import JobState

# Long jobs under a Spot hazard high enough that some are interrupted (the seed fixes which).
P = Params().with_overrides(["spot_hazard_per_h=1"])
JOBS = tuple(Job(i, submit=5.0 * i, duration=3 * 3600.0, vcpu=1.0, gb=2.0, start_latency=30.0) for i in range(6))


def _run() -> tuple[OursDedicated, list[JobRun]]:
    workload = Workload("small", "six 3-hour jobs", JOBS, window_s=60.0)
    sim, ledger = Sim(), Ledger()
    policy = OursDedicated(sim, P, rng_for(3, "dedicated"), ledger, workload)
    runs = [JobRun(job) for job in JOBS]
    for run in runs:
        sim.at(run.job.submit, policy.submit, run)
    sim.run(until=2 * 86400.0)  # every event, the last task events included
    return policy, runs


def test_every_job_ends_succeeded_in_the_job_store() -> None:
    policy, runs = _run()
    for run in runs:
        record = policy.store.get(job_id(run))
        assert record is not None and run.finished is not None
        assert record.state == JobState.SUCCEEDED
        states = [entry["to"] for entry in record.history]
        assert states[-3:] == ["DISPATCHED", "RUNNING", "SUCCEEDED"]


def test_an_interrupted_job_is_retried_on_demand_by_task_events() -> None:
    policy, runs = _run()
    records = [policy.store.get(job_id(run)) for run in runs]
    interrupted = [r for r in records if r is not None and r.interruptions]
    assert interrupted and sum(r.interruptions for r in interrupted) == policy.ledger.interruptions
    for record in interrupted:
        assert "RETRYING" in [entry["to"] for entry in record.history]
        assert record.extra.get("prefer_on_demand") is True
        assert record.capacity_provider == FARGATE and record.attempt == 1 + record.interruptions
    for record in records:
        assert record is not None
        if not record.interruptions:
            assert record.capacity_provider == FARGATE_SPOT and record.attempt == 1
    assert policy.ledger.calls["RunTask"] == len(runs) + policy.ledger.interruptions


def test_a_process_spends_virtual_time_between_events() -> None:
    sim, seen = Sim(), []

    def body(process: Process) -> None:
        seen.append(("process", sim.now))
        process.wait(10.0)
        seen.append(("process", sim.now))

    sim.at(1.0, lambda: Process(sim, body).start())
    sim.at(5.0, lambda: seen.append(("event", sim.now)))
    sim.run(until=100.0)
    assert seen == [("process", 1.0), ("event", 5.0), ("process", 11.0)]


def test_an_error_in_a_process_reaches_the_event_loop() -> None:
    sim = Sim()

    def body(process: Process) -> None:
        process.wait(1.0)
        raise RuntimeError("boom")

    Process(sim, body).start()
    with pytest.raises(RuntimeError, match="boom"):
        sim.run(until=10.0)
