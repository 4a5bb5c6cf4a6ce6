"""Peer 3: CDK's QueueProcessingFargateService with its default scaling (aws-facts §3).

Step scaling on ApproximateNumberOfMessagesVisible (alarm: Maximum over 300 s, modelled as
the newest five one-minute datapoints, evaluated each minute): +1 task at >= 100 visible,
+5 at >= 500, -1 at 0; cooldown 300 s (during it only a larger scale-out step applies and
scale-in waits). Plus CPU target tracking at 50 %. When both act, the larger capacity wins.
Min 1 task (default); max raised from the default 2 to the common cap. Workers as in the
classic example (no task protection).
"""

from __future__ import annotations

import math

import numpy as np

from bench.aws import Metric
from bench.models import Params
from bench.policies.target_tracking import CpuTracker, PeerPolicy
from bench.sim import Ledger, Sim
from bench.workloads import Workload

STEPS = ((500, 5), (100, 1))  # (visible >= lower bound, tasks to add), largest first


class Qpfs(PeerPolicy):
    name = "qpfs"
    label = "CDK QueueProcessingFargateService"
    summary = "step scaling +1 at >= 100 / +5 at >= 500 / -1 at 0 visible (Max over 300 s), CPU TT 50 %, min 1"

    def __init__(self, sim: Sim, p: Params, rng: np.random.Generator, ledger: Ledger, workload: Workload) -> None:
        super().__init__(sim, p, rng, ledger, workload, p.qpfs_min)
        self.cpu = CpuTracker(p, self.service, p.qpfs_cpu_target, p.qpfs_min)
        self.visible = Metric()
        self.last_step = -math.inf
        self.last_step_size = 0
        sim.every(p.metric_period_s, self._publish, first=p.metric_period_s)
        sim.every(p.alarm_eval_s, self._evaluate, first=p.metric_period_s)

    def _publish(self) -> None:
        now = self.sim.now
        self.queue.touch()  # workers long-poll
        self.visible.publish(now + self.queue.metric_lag(), len(self.queue.visible))
        self.cpu.publish(now)

    def _step(self, now: float) -> int | None:
        points = self.visible.latest(now, 1)
        if points is None:
            return None
        window = self.visible.latest(now, max(1, round(self.p.qpfs_period_s / self.p.metric_period_s))) or points
        peak, desired = max(window), self.service.desired
        cooling = now - self.last_step < self.p.qpfs_cooldown_s
        for lower, add in STEPS:
            if peak >= lower:
                if cooling and add <= self.last_step_size:
                    return None
                self.last_step, self.last_step_size = now, add
                return min(self.p.max_tasks, desired + add)
        if peak <= 0 and not cooling and desired > self.p.qpfs_min:
            self.last_step, self.last_step_size = now, 0
            return desired - 1
        return None

    def _evaluate(self) -> None:
        now, old = self.sim.now, self.service.desired
        step, cpu = self._step(now), self.cpu.proposal(now)
        asks = [n for n in (step, cpu) if n is not None]
        if not asks:
            return
        outs = [n for n in asks if n > old]
        new = max(outs) if outs else max(asks)
        if cpu is not None and cpu == new:
            self.cpu.acted(now, new, old)
        if new != old:
            self.scale_to(new)
