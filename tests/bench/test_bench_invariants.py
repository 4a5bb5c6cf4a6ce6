"""Simulator invariants on small runs: every job accounted for, nothing lost on our paths, the lower
bound below every policy, the AWS rate limits respected, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from bench.models import Params
from bench.policies import POLICIES
from bench.policies.lower_bound import NAME as LOWER_BOUND
from bench.results import Result
from bench.runner import simulate
from bench.sim import Sim, Wakeup
from bench.workloads import Workload, build
from jobs.retries import MAX_INTERRUPTIONS

HOURS = 1.0
SEED = 7
P = Params()
# A Spot hazard high enough that interruptions certainly happen in a short run.
STORMY = Params().with_overrides(["spot_hazard_per_h=0.5"])


def _workload(name: str, p: Params = P) -> Workload:
    return build(name, p, SEED, HOURS)


WORKLOADS = {name: _workload(name) for name in ("steady", "bursty", "heavy_tail", "burst500")}


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_every_job_is_accounted_for(policy: str, workload: str) -> None:
    w = WORKLOADS[workload]
    r = simulate(policy, w, P, SEED)
    assert r.submitted == len(w.jobs) > 0
    assert r.completed + r.lost + r.unfinished == r.submitted
    assert len(r.waits) >= r.completed  # every completed job started
    assert (r.waits >= 0).all()
    assert r.busy_h >= r.work_h - 1e-9  # every completed job's run time was spent on a task
    assert r.idle_h >= 0 and r.cost > 0


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_dedicated_path_loses_no_job_under_spot_interruptions(workload: str) -> None:
    w = build(workload, STORMY, SEED, HOURS)
    r = simulate("ours_dedicated", w, STORMY, SEED)
    assert r.interruptions > 0
    assert (r.completed, r.lost, r.unfinished) == (r.submitted, 0, 0)


def test_worker_path_loses_no_job_under_spot_interruptions() -> None:
    """The worker path requeues an interrupted job on the same Spot-first service and gives up after
    MAX_INTERRUPTIONS interruptions of one job, so it is held to a hazard 10x the default here (the
    dedicated path, which moves the job to on-demand, to 100x above)."""
    p = P.with_overrides(["spot_hazard_per_h=0.05"])
    interruptions = 0
    for name in WORKLOADS:
        r = simulate("ours_worker", build(name, p, SEED, 3 * HOURS), p, SEED)
        interruptions += r.interruptions
        assert (r.completed, r.lost, r.unfinished) == (r.submitted, 0, 0), name
    assert interruptions > 0


def test_worker_path_gives_a_job_up_after_max_interruptions() -> None:
    """The worker's retry rule, not the queue's maxReceiveCount, ends a job interrupted too often: here
    every task is on Spot and interrupted every ~36 s on average, and the queue would allow 1,000 receives."""
    p = P.with_overrides(["spot_hazard_per_h=100", "on_demand_weight=0", "worker_max_receive=1000"])
    r = simulate("ours_worker", build("heavy_tail", p, SEED, HOURS), p, SEED)
    assert r.lost > 0 and r.unfinished == 0
    assert r.interruptions >= r.lost * (MAX_INTERRUPTIONS + 1)


def test_burst_launch_budget_follows_the_capacity_mix() -> None:
    w = WORKLOADS["burst500"]
    dedicated, worker = simulate("ours_dedicated", w, P, SEED), simulate("ours_worker", w, P, SEED)
    assert dedicated.launch_budget == pytest.approx(P.launch_rate, rel=0.01)  # Fargate Spot (a re-run aside)
    spot_share = P.spot_weight / (P.spot_weight + P.on_demand_weight)  # 4:1: the Spot bucket carries 80 %
    assert worker.launch_budget == pytest.approx(P.launch_rate / spot_share, rel=0.02)
    assert dedicated.launch_rate is not None and dedicated.launch_rate <= P.launch_rate + P.launch_burst / 25


def test_interrupted_dedicated_jobs_come_back_on_demand() -> None:
    w = build("heavy_tail", STORMY, SEED, HOURS)
    r = simulate("ours_dedicated", w, STORMY, SEED)
    assert r.interruptions > 0
    assert r.calls["RunTask"] >= r.submitted + r.interruptions  # one more launch per interruption
    assert 0 < r.spot_share < 1  # the re-runs are billed on on-demand


def test_our_worker_service_never_stops_a_busy_task() -> None:
    r = simulate("ours_worker", WORKLOADS["bursty"], P, SEED)
    assert r.killed_busy == 0


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_lower_bound_costs_less_than_every_policy(workload: str) -> None:
    w = WORKLOADS[workload]
    lb = simulate(LOWER_BOUND, w, P, SEED)
    assert lb.idle_h == 0 and lb.spot_share == 1
    for policy in POLICIES:
        r = simulate(policy, w, P, SEED)
        assert lb.unit_cost <= r.unit_cost, policy
        if r.lost == 0:
            assert lb.cost <= r.cost, policy


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_lower_bound_waits_less_than_a_task_per_job(workload: str) -> None:
    """The bound starts each job one start latency after it arrives; a policy that starts a fresh task
    per job (the dedicated path: same first-launch draw) can only be later, job by job. Warm worker
    pools can start a job sooner than the bound by paying for idle tasks, so they are not bounded on wait
    (the cost test above bounds them)."""
    w = WORKLOADS[workload]
    lb, r = simulate(LOWER_BOUND, w, P, SEED), simulate("ours_dedicated", w, P, SEED)
    assert len(r.waits) == len(lb.waits)
    assert (lb.waits <= r.waits + 1e-9).all()
    for q in (50, 95, 99):
        assert lb.wait(q) <= r.wait(q)


def _conforms(times: list[float], burst: float, rate: float) -> bool:
    """True if the calls at ``times`` fit a token bucket (burst, rate): in every window [t_i, t_j] at
    most burst + rate * (t_j - t_i) calls."""
    t = np.sort(np.asarray(times))
    for i in range(len(t)):
        counts = np.arange(1, len(t) - i + 1)
        if (counts > burst + rate * (t[i:] - t[i]) + 1e-6).any():
            return False
    return True


@pytest.mark.parametrize("max_concurrency", [P.esm_max_concurrency, 0])
def test_runtask_calls_respect_the_fargate_budget(max_concurrency: int) -> None:
    """At the deployed MaximumConcurrency and without one (the event source then ramps up and the
    submitters' calls are throttled, which the retries must absorb)."""
    p = P.with_overrides([f"esm_max_concurrency={max_concurrency}"])
    w = WORKLOADS["burst500"]
    r = simulate("ours_dedicated", w, p, SEED)
    assert len(r.runtask_times) >= len(w.jobs)
    assert _conforms(r.runtask_times, P.runtask_call_burst, P.runtask_call_rate)
    per_second = np.bincount(np.floor(np.asarray(r.runtask_times)).astype(int))
    assert per_second.max() <= P.runtask_call_burst + P.runtask_call_rate
    if max_concurrency == 0:
        assert r.calls["throttled"] > 0  # the burst did hit the limit, and the retries absorbed it
    assert (r.lost, r.unfinished) == (0, 0)


def test_the_bucket_check_catches_a_violation() -> None:
    assert not _conforms([0.0] * 21, 20, 20)
    assert _conforms([0.0] * 20 + [0.05], 20, 20)


@pytest.mark.parametrize("policy", list(POLICIES))
def test_task_launches_respect_the_launch_budget(policy: str) -> None:
    r = simulate(policy, WORKLOADS["burst500"], P, SEED)
    for spot in (True, False):  # Fargate and Fargate Spot have a bucket each
        times = [t for t, s in r.launches if s is spot and t > 0]  # t = 0: a min > 0 fleet already up
        assert _conforms(times, P.launch_burst, P.launch_rate), (policy, spot)


def test_runs_are_deterministic_for_a_seed() -> None:
    def key(r: Result) -> tuple[float, ...]:
        return (r.cost, r.busy_h, r.idle_h, r.wait(95), float(r.completed), float(r.killed_busy))

    w = WORKLOADS["bursty"]
    for policy in POLICIES:
        assert key(simulate(policy, w, P, SEED)) == key(simulate(policy, w, P, SEED))
    other = build("bursty", P, SEED + 1, HOURS)
    assert [j.submit for j in other.jobs] != [j.submit for j in w.jobs]


def test_wakeup_runs_once_at_the_earliest_ask() -> None:
    sim, fired = Sim(), []
    wake = Wakeup(sim, lambda: fired.append(sim.now))
    wake.at(5.0)
    wake.at(9.0)  # merges into the pending 5.0
    wake.at(2.0)  # earlier: supersedes it
    sim.run(until=100.0)
    assert fired == [2.0]
    wake.at(50.0)
    sim.run(until=100.0)
    assert fired == [2.0, 50.0]
