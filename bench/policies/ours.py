"""This project's worker-service path (the default JobSpec, dedicated=false), in its stack's default configuration
(cdk_app/config.py, cdk.json): the scaler Lambda's real code (``lifecycle.scaling.reconcile`` over
``lifecycle.scaling_policy.decide``, imported unmodified from ``lambdas/``) sets the desired count on every nudge
(sent on submit), every 60 s reconciliation and every backlog-alarm state change. Workers protect their task while
busy and return their message at once on SIGTERM. The dedicated-task path is bench.policies.dedicated.
"""

from __future__ import annotations

import numpy as np

from bench.aws import Metric, Queue, Service
from bench.models import Params
from bench.policies.base import Policy
from bench.sim import JobRun, Ledger, Message, Sim, Wakeup
from bench.workloads import Workload
from jobs.retries import MAX_INTERRUPTIONS
from lifecycle.scaling import ServiceSnapshot, Trigger, TriggerKind, reconcile
from lifecycle.scaling_policy import QueueState, ScalingConfig, ServiceState


class OursWorker(Policy):
    name = "ours_worker"
    label = "event-driven (worker service)"
    summary = (
        "scaler Lambda code from lambdas/lifecycle (reconcile + decide), triggered by a nudge on submit, "
        "a 60 s schedule and backlog-alarm state changes; min 0, 1 job per worker, scale-in grace 300 s, "
        "task protection while busy, message returned on SIGTERM (an interruption: the job gives up after "
        "MAX_INTERRUPTIONS); the default JobSpec (dedicated=false) path"
    )

    def __init__(self, sim: Sim, p: Params, rng: np.random.Generator, ledger: Ledger, workload: Workload) -> None:
        super().__init__(sim, p, rng, ledger, workload)
        self.queue = Queue(sim, p, p.worker_max_receive)
        self.service = Service(
            sim,
            p,
            self.fargate,
            self.queue,
            rng,
            min_tasks=0,
            protect_busy=True,
            return_on_sigterm=True,
            redelivery_s=0.0,
            max_interruptions=MAX_INTERRUPTIONS,
            vcpu=self.worker_vcpu,
            gb=self.worker_gb,
        )
        self.config = ScalingConfig(
            min_tasks=0, max_tasks=p.max_tasks, jobs_per_task=1, scale_in_grace_s=p.scale_in_grace_s
        )
        self.clock: tuple[float, int] | None = None  # the surplus clock tag: (since, desired it is for)
        self.backlog = Metric()
        self.alarm = "OK"
        self._nudge = Wakeup(sim, lambda: self._decide(TriggerKind.NUDGE))
        # An EventBridge rate schedule fires at its own offset within the minute.
        sim.every(p.reconcile_s, lambda: self._invoke(TriggerKind.SCHEDULE), first=rng.uniform(0, p.reconcile_s))
        sim.every(p.metric_period_s, self._publish, first=p.metric_period_s)
        sim.every(p.alarm_eval_s, self._evaluate_alarm, first=p.metric_period_s)

    def submit(self, run: JobRun) -> None:
        self.queue.send(Message(run))
        if self.p.nudge_on_submit:  # nudges sent while one is on its way merge into it
            self._nudge.at(self.sim.now + self.p.trigger_s)

    def counts(self) -> tuple[int, int, int]:
        return len(self.queue.visible), self.service.desired, len(self.service.running)

    def _publish(self) -> None:
        """ApproximateNumberOfMessagesVisible, sampled at the end of each minute."""
        if self.service.running:
            self.queue.touch()  # workers long-poll
        self.backlog.publish(self.sim.now + self.queue.metric_lag(), len(self.queue.visible))

    def _evaluate_alarm(self) -> None:
        latest = self.backlog.latest(self.sim.now, self.p.backlog_alarm_points)
        if latest is None:
            return
        state = "ALARM" if min(latest) >= self.p.backlog_alarm_messages else "OK"
        if state != self.alarm:
            self.alarm = state
            self._invoke(TriggerKind.ALARM)

    def _invoke(self, kind: TriggerKind) -> None:
        self.sim.after(self.p.trigger_s, self._decide, kind)

    def _decide(self, kind: TriggerKind) -> None:
        self.ledger.calls["scaler invocations"] += 1
        reconcile(
            trigger=Trigger(kind),
            config=self.config,
            queue=_QueuePort(self),
            service=_ServicePort(self),
            now=self.sim.now,
        )


class _QueuePort:
    """lifecycle.scaling.QueueDepthPort over the simulated worker queue (GetQueueAttributes)."""

    def __init__(self, owner: OursWorker) -> None:
        self.owner = owner

    def read(self) -> QueueState:
        owner = self.owner
        owner.ledger.calls["GetQueueAttributes"] += 1
        owner.queue.touch()
        visible, in_flight, delayed = owner.queue.read_counts()
        return QueueState(visible=visible, in_flight=in_flight, delayed=delayed)


class _ServicePort:
    """lifecycle.scaling.WorkerServicePort over the simulated service; the surplus clock is a tag on it."""

    def __init__(self, owner: OursWorker) -> None:
        self.owner = owner

    def read(self) -> ServiceSnapshot:
        owner = self.owner
        owner.ledger.calls["DescribeServices"] += 1
        svc, clock = owner.service, owner.clock
        state = ServiceState(desired=svc.desired, running=len(svc.running), pending=len(svc.pending))
        current = clock is not None and clock[1] == svc.desired
        return ServiceSnapshot(
            arn="service/workers",
            state=state,
            surplus_since=clock[0] if clock is not None and current else None,
            stale_clock=clock is not None and not current,
        )

    def set_desired(self, desired: int) -> None:
        self.owner.service.set_desired(desired)

    def save_surplus_clock(self, service_arn: str, since: float, desired: int) -> None:
        self.owner.ledger.calls["TagResource"] += 1
        self.owner.clock = (since, desired)

    def clear_surplus_clock(self, service_arn: str) -> None:
        self.owner.ledger.calls["UntagResource"] += 1
        self.owner.clock = None
