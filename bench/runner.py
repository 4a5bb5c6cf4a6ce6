"""Run every policy on every workload (in parallel processes) and collect the results."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

from bench.models import Params
from bench.policies import POLICIES
from bench.policies.lower_bound import NAME as LOWER_BOUND
from bench.policies.lower_bound import lower_bound
from bench.results import Result, collect
from bench.sim import JobRun, Ledger, Sim
from bench.workloads import Workload, rng_for

SAMPLE_S = 60.0  # timeline resolution and how often the run checks whether it is done
GIVE_UP_S = 12 * 3600.0  # after the last arrival and the longest job, stop waiting for stragglers


def simulate(policy_name: str, workload: Workload, p: Params, seed: int) -> Result:
    """One policy on one workload, until every job has finished or is lost."""
    if policy_name == LOWER_BOUND:
        return lower_bound(workload, p)
    sim, ledger = Sim(), Ledger()
    policy = POLICIES[policy_name](sim, p, rng_for(seed, "policy", workload.name, policy_name), ledger, workload)
    runs = [JobRun(job) for job in workload.jobs]
    for run in runs:
        sim.at(run.job.submit, policy.submit, run)
    pending = 0  # runs[:pending] have all settled

    def sample() -> None:
        nonlocal pending
        ledger.timeline.append((sim.now, *policy.counts()))
        if sim.now >= workload.window_s:
            while pending < len(runs) and runs[pending].settled:
                pending += 1
            if pending == len(runs):
                sim.stop()

    sim.every(SAMPLE_S, sample)
    sim.run(until=workload.window_s + max(j.duration for j in workload.jobs) + GIVE_UP_S)
    policy.fargate.finish()
    return collect(policy, runs, ledger, workload)


@dataclass(frozen=True)
class Case:
    """One simulation to run: ``group`` names the table it belongs to."""

    group: str
    workload: Workload
    policy: str
    params: Params


def run_cases(cases: list[Case], seed: int, processes: int) -> list[Result]:
    """Simulate every case (in parallel processes), printing progress; results in case order."""
    started = time.perf_counter()
    results: list[Result | None] = [None] * len(cases)

    def done(i: int, result: Result) -> None:
        results[i] = result
        c = cases[i]
        print(
            f"  [{time.perf_counter() - started:5.1f}s] {c.group:<28} {c.policy:<15} "
            f"{result.completed}/{result.submitted} jobs done",
            file=sys.stderr,
            flush=True,
        )

    if processes <= 1:
        for i, c in enumerate(cases):
            done(i, simulate(c.policy, c.workload, c.params, seed))
    else:
        with ProcessPoolExecutor(max_workers=processes) as pool:
            futures = {pool.submit(simulate, c.policy, c.workload, c.params, seed): i for i, c in enumerate(cases)}
            for future in as_completed(futures):
                done(futures[future], future.result())
    return [r for r in results if r is not None]
