"""Peer 5, the clairvoyant lower bound: each job starts exactly one task-start latency (its
own first-launch draw, the same one every policy sees) after it arrives, on Fargate Spot,
billed for its run time only: no task is ever idle, no interruption, no start billed.
"""

from __future__ import annotations

import numpy as np

from bench.models import Params
from bench.results import Result
from bench.workloads import Workload

NAME = "lower_bound"
LABEL = "clairvoyant lower bound"
SUMMARY = "start = arrival + the job's own task-start latency; Spot price; billed for run time only"


def lower_bound(workload: Workload, p: Params, step_s: float = 60.0) -> Result:
    jobs = workload.jobs
    submit = np.array([j.submit for j in jobs])
    waits = np.array([j.start_latency for j in jobs])
    duration = np.array([j.duration for j in jobs])
    cost = sum(j.duration * p.price_per_s(j.vcpu, j.gb, spot=True) for j in jobs)
    start = submit + waits
    end = start + duration
    t = np.arange(0.0, float(end.max()) + step_s, step_s)
    started = np.searchsorted(np.sort(start), t, side="right")
    waiting = np.searchsorted(submit, t, side="right") - started
    running = started - np.searchsorted(np.sort(end), t, side="right")
    result = Result(
        policy=NAME,
        label=LABEL,
        summary=SUMMARY,
        submitted=len(jobs),
        completed=len(jobs),
        lost=0,
        unfinished=0,
        waits=waits,
        busy_h=float(duration.sum()) / 3600,
        idle_h=0.0,
        cost=cost,
        work_h=float(duration.sum()) / 3600,
        spot_share=1.0,
        calls={},
        timeline=np.column_stack([t, waiting, running, running]),
    )
    if workload.burst_at is not None:
        result.all_started_s = float(waits.max())
    return result
