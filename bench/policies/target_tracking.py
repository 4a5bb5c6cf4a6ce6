"""Peer 2, the classic example: an ECS service with CPU target tracking at 75 %, min 1 task.

Application Auto Scaling target tracking on ECSServiceAverageCPUUtilization (aws-facts §3):
AlarmHigh after 3 one-minute datapoints above the target, AlarmLow after 15 below 90 % of it;
new capacity = ceil(desired * metric / target); 300 s scale-out and scale-in cooldowns.
A training job keeps its task's CPU at 100 %, an idle worker at 0 % (assumption). Workers
have no task protection: scale-in stops any task, a busy one's message reappears after the
visibility timeout (heartbeats assumed, so no duplicate runs).
"""

from __future__ import annotations

import math

import numpy as np

from bench.aws import Metric, Queue, Service
from bench.models import Params
from bench.policies.base import Policy
from bench.sim import JobRun, Ledger, Message, Sim
from bench.workloads import Workload


class CpuTracker:
    """One target-tracking policy on the service's average CPU."""

    def __init__(self, p: Params, service: Service, target: float, min_tasks: int) -> None:
        self.p, self.service, self.target, self.min_tasks = p, service, target, min_tasks
        self.metric = Metric()
        self.last_out = self.last_in = -math.inf

    def publish(self, now: float) -> None:
        cpu = self.service.cpu_percent()
        if cpu is not None:
            self.metric.publish(now + self.p.metric_lag_s, cpu)

    def proposal(self, now: float) -> int | None:
        """The desired count this policy asks for now, or None."""
        p, desired = self.p, self.service.desired
        high = self.metric.latest(now, p.tt_out_points)
        if high and min(high) > self.target and now - self.last_out >= p.tt_cooldown_s:
            new = min(p.max_tasks, math.ceil(desired * high[-1] / self.target - 1e-9))
            if new > desired:
                return new
        low = self.metric.latest(now, p.tt_in_points)
        if low and max(low) < 0.9 * self.target and now - self.last_in >= p.tt_cooldown_s:
            new = max(self.min_tasks, math.ceil(desired * low[-1] / self.target - 1e-9))
            if new < desired:
                return new
        return None

    def acted(self, now: float, new: int, old: int) -> None:
        if new > old:
            self.last_out = now
        elif new < old:
            self.last_in = now


class PeerPolicy(Policy):
    """A peer's worker service: same cluster capacity strategy and task size as ours."""

    def __init__(
        self, sim: Sim, p: Params, rng: np.random.Generator, ledger: Ledger, workload: Workload, min_tasks: int
    ) -> None:
        super().__init__(sim, p, rng, ledger, workload)
        self.queue = Queue(sim, p, p.peer_max_receive)
        self.service = Service(
            sim,
            p,
            self.fargate,
            self.queue,
            rng,
            min_tasks=min_tasks,
            protect_busy=False,
            return_on_sigterm=False,
            redelivery_s=p.peer_visibility_s,
            vcpu=self.worker_vcpu,
            gb=self.worker_gb,
        )

    def submit(self, run: JobRun) -> None:
        self.queue.send(Message(run))

    def counts(self) -> tuple[int, int, int]:
        return len(self.queue.visible), self.service.desired, len(self.service.running)

    def scale_to(self, desired: int) -> None:
        """Application Auto Scaling calls UpdateService (after the alarm action's delay)."""
        self.sim.after(self.p.trigger_s, self.service.set_desired, desired)


class TargetTracking(PeerPolicy):
    name = "cpu_target"
    label = "CPU target tracking 75% (classic)"
    summary = "service with CPU target tracking at 75 %, min 1 task; alarms 3 x 1 min / 15 x 1 min; cooldowns 300 s"

    def __init__(self, sim: Sim, p: Params, rng: np.random.Generator, ledger: Ledger, workload: Workload) -> None:
        super().__init__(sim, p, rng, ledger, workload, p.tt_min)
        self.tracker = CpuTracker(p, self.service, p.tt_target, p.tt_min)
        sim.every(p.metric_period_s, lambda: self.tracker.publish(sim.now), first=p.metric_period_s)
        sim.every(p.alarm_eval_s, self._evaluate, first=p.metric_period_s)

    def _evaluate(self) -> None:
        now, old = self.sim.now, self.service.desired
        new = self.tracker.proposal(now)
        if new is not None:
            self.tracker.acted(now, new, old)
            self.scale_to(new)
