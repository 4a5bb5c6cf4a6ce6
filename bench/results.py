"""One policy's figures on one workload, as the report shows them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.sim import JobRun, Ledger
from bench.workloads import Workload

# Mutating control-plane calls a policy makes to scale or launch (reads are listed apart).
SCALING_CALLS = ("RunTask", "UpdateService", "TagResource", "UntagResource")


@dataclass
class Result:
    policy: str
    label: str
    summary: str
    submitted: int
    completed: int
    lost: int  # will never finish: dead-lettered or FAILED
    unfinished: int  # still queued or running when the simulation gave up
    waits: np.ndarray  # enqueue -> first start, s, for jobs that started
    busy_h: float  # task-hours running jobs (including work later redone)
    idle_h: float  # billed task-hours not running a job (image pull, idle, 1-min minimum)
    cost: float
    work_h: float  # run time of the jobs that completed (what the cost bought)
    spot_share: float  # share of billed task-hours on Fargate Spot
    calls: dict[str, int]
    timeline: np.ndarray  # rows: t, queue depth, desired, running
    interruptions: int = 0
    killed_busy: int = 0
    lost_work_h: float = 0.0
    deferred: int = 0
    peak_invocations: int = 0  # most concurrent submitter invocations (dedicated path)
    launch_rate: float | None = None  # burst: tasks launched per second after the burst
    launch_budget: float | None = None  # burst: sustained launches/s the budgets allow for the burst's capacity mix
    burst_launched: int | None = None
    all_started_s: float | None = None  # burst: seconds until every burst job had started
    runtask_times: list[float] = field(default_factory=list)  # accepted RunTask calls
    launches: list[tuple[float, bool]] = field(default_factory=list)  # (time, on Spot) of each task launch

    @property
    def scaling_calls(self) -> int | None:
        if not self.calls:
            return None
        return sum(self.calls.get(name, 0) for name in SCALING_CALLS)

    @property
    def unit_cost(self) -> float:
        """Dollars per hour of completed job work: lost jobs cannot make a policy look cheaper."""
        return self.cost / self.work_h if self.work_h else float("nan")

    def wait(self, q: float) -> float:
        return float(np.percentile(self.waits, q)) if len(self.waits) else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "configuration": self.summary,
            "jobs": {
                "submitted": self.submitted,
                "completed": self.completed,
                "lost": self.lost,
                "unfinished": self.unfinished,
            },
            "wait_s": {"p50": self.wait(50), "p95": self.wait(95), "p99": self.wait(99), "max": self.wait(100)},
            "task_hours": {"busy": self.busy_h, "idle": self.idle_h},
            "cost_usd": self.cost,
            "completed_work_h": self.work_h,
            "usd_per_completed_job_h": self.unit_cost,
            "spot_share": self.spot_share,
            "scaling_api_calls": self.scaling_calls,
            "api_calls": dict(sorted(self.calls.items())),
            "spot_interruptions": self.interruptions,
            "busy_tasks_killed_by_scale_in": self.killed_busy,
            "work_redone_h": self.lost_work_h,
            "deferred_at_cap": self.deferred,
            "peak_submitter_invocations": self.peak_invocations,
            "burst": None
            if self.all_started_s is None
            else {
                "launch_rate_per_s": self.launch_rate,
                "launch_budget_per_s": self.launch_budget,
                "tasks_launched": self.burst_launched,
                "all_started_after_s": self.all_started_s,
            },
        }


def collect(policy: Any, runs: list[JobRun], ledger: Ledger, workload: Workload) -> Result:
    """Turn a finished run into a Result."""
    waits = np.array([r.first_start - r.job.submit for r in runs if r.first_start is not None])
    billed = ledger.billed_s[True] + ledger.billed_s[False]
    completed = sum(r.finished is not None for r in runs)
    lost = sum(r.finished is None and r.lost is not None for r in runs)
    result = Result(
        policy=policy.name,
        label=policy.label,
        summary=policy.summary,
        submitted=len(runs),
        completed=completed,
        lost=lost,
        unfinished=len(runs) - completed - lost,
        waits=waits,
        busy_h=ledger.busy_s / 3600,
        idle_h=max(0.0, billed - ledger.busy_s) / 3600,
        cost=ledger.cost,
        work_h=sum(r.job.duration for r in runs if r.finished is not None) / 3600,
        spot_share=ledger.billed_s[True] / billed if billed else 0.0,
        calls=dict(ledger.calls),
        timeline=np.array(ledger.timeline, dtype=float).reshape(-1, 4),
        interruptions=ledger.interruptions,
        killed_busy=ledger.killed_busy,
        lost_work_h=ledger.lost_work_s / 3600,
        deferred=ledger.deferred,
        peak_invocations=ledger.peak_invocations,
        runtask_times=ledger.runtask_times,
        launches=ledger.launches,
    )
    if workload.burst_at is not None:
        launches = [(t, spot) for t, spot in ledger.launches if t >= workload.burst_at][: len(runs)]
        times = [t for t, _ in launches]
        span = times[-1] - workload.burst_at if times else 0.0
        result.burst_launched = len(times)
        result.launch_rate = len(times) / span if span > 0 else None
        # Fargate and Fargate Spot have a launch bucket each (aws-facts §2), so the sustained budget for
        # a burst depends on its mix: all on one type, 20/s; split 4:1, the Spot bucket's 20/s carries
        # 80 % of the tasks, 25/s in all.
        spot = sum(s for _, s in launches)
        largest = max(spot, len(launches) - spot)
        result.launch_budget = policy.p.launch_rate * len(launches) / largest if largest else None
        started = [r.first_start for r in runs if r.first_start is not None]
        result.all_started_s = (max(started) - workload.burst_at) if len(started) == len(runs) else float("inf")
    return result
