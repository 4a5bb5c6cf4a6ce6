"""This project, in its stack's default configuration (cdk_app/config.py, cdk.json).

Two paths, two rows:

* worker service: the scaler Lambda's real code (``lifecycle.scaling.reconcile`` over
  ``lifecycle.scaling_policy.decide``, imported unmodified from ``lambdas/``) sets the desired count on
  every nudge (sent on submit), every 60 s reconciliation and every backlog-alarm state change.
  Workers protect their task while busy and return their message at once on SIGTERM.
* dedicated tasks: the submitter launches one task per job with RunTask (Fargate Spot first)
  from an SQS event source; task_events re-submits a Spot-interrupted job with
  ``prefer_on_demand`` (on-demand is never interrupted), attempt + 1.
"""

from __future__ import annotations

import numpy as np

from bench.aws import Metric, Queue, Service, Task
from bench.models import Params, TokenBucket, take_all
from bench.policies.base import Policy
from bench.sim import JobRun, Ledger, Message, Sim, Wakeup
from bench.workloads import Workload
from jobs.retries import MAX_INTERRUPTIONS
from lifecycle.dispatch_rules import backoff_seconds
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


class OursDedicated(Policy):
    name = "ours_dedicated"
    label = "event-driven (dedicated tasks)"
    summary = (
        "submitter: SQS event source (batch, window and MaximumConcurrency as in cdk_app), ListTasks once "
        "per batch for the MAX_CONCURRENT_TASKS cap, one RunTask per job on Fargate Spot (SDK standard retries), "
        "throttled or capped jobs re-sent with lifecycle.dispatch_rules.backoff_seconds; task_events re-submits "
        "a Spot-interrupted job on on-demand (jobs.retries.MAX_INTERRUPTIONS); no idle tasks"
    )

    def __init__(self, sim: Sim, p: Params, rng: np.random.Generator, ledger: Ledger, workload: Workload) -> None:
        super().__init__(sim, p, rng, ledger, workload)
        self.queue = Queue(sim, p, p.dispatch_max_receive)
        self.queue.on_visible = self._wake
        self.cluster_read = TokenBucket(p.cluster_read_burst, p.cluster_read_rate)
        self.active: set[Task] = set()  # launched, not stopped
        self.running = 0
        self.invocations = 0
        self.backlog_since: float | None = None
        self._poller = Wakeup(sim, self._poll)
        self._job: dict[Task, Message] = {}

    def submit(self, run: JobRun) -> None:
        self.queue.send(Message(run))

    def counts(self) -> tuple[int, int, int]:
        return len(self.queue.visible), len(self.active) + self.queue.in_flight, self.running

    # ---- SQS event source: pollers batch messages and invoke the submitter --------------
    def _wake(self) -> None:
        """Messages arrived: pollers fill a batch (up to the batching window) and invoke."""
        full = len(self.queue.visible) >= self.p.esm_batch
        self._poller.at(self.sim.now + (0.0 if full else self.p.esm_window_s))

    def _poll(self) -> None:
        p, now = self.p, self.sim.now
        limit = p.esm_initial
        if self.backlog_since is not None:
            limit = min(p.esm_max, p.esm_initial + int(p.esm_ramp_per_min * (now - self.backlog_since) / 60.0))
        if p.esm_max_concurrency > 0:  # ScalingConfig.MaximumConcurrency caps the concurrent invocations
            limit = min(limit, p.esm_max_concurrency)
        while self.invocations < limit and self.queue.visible:
            batch = [m for m in (self.queue.receive() for _ in range(p.esm_batch)) if m is not None]
            if not batch:
                break
            self.invocations += 1
            self.ledger.peak_invocations = max(self.ledger.peak_invocations, self.invocations)
            self.sim.after(p.lambda_init_s, self._count_active, batch, 1)
        if self.queue.visible:  # all pollers busy: concurrency grows while the backlog lasts
            if self.backlog_since is None:
                self.backlog_since = now
            self._poller.at(now + 1.0)
        else:
            self.backlog_since = None

    # ---- submitter Lambda (lambdas/lifecycle/submit.py), one batch -----------------------
    def _count_active(self, batch: list[Message], attempt: int) -> None:
        """Capacity: ListTasks (100 tasks per page) once per batch, then counted locally."""
        pages = 1 + len(self.active) // 100
        self.ledger.calls["ListTasks"] += pages
        if not take_all(self.sim.now, [self.cluster_read], pages):
            self._handle(batch, 0, 1, len(self.active))
            return
        delay = self._retry_delay(attempt)
        if delay is not None:
            self.sim.after(delay, self._count_active, batch, attempt + 1)
            return
        for msg in batch:  # the count is unknown: the whole batch waits
            self._defer(msg)
        self._end()

    def _handle(self, batch: list[Message], i: int, attempt: int, active: int) -> None:
        p = self.p
        if i == len(batch):
            self._end()
            return
        msg = batch[i]
        if active >= p.max_tasks:  # concurrency cap reached: back with a delay
            self._defer(msg)
            self.sim.after(p.runtask_api_s, self._handle, batch, i + 1, 1, active)
            return
        spot = not msg.prefer_on_demand
        fargate = self.fargate
        self.ledger.calls["RunTask"] += 1
        if not take_all(self.sim.now, [fargate.runtask_calls, fargate.cluster_modify, fargate.launch_bucket[spot]]):
            self.ledger.runtask_times.append(self.sim.now)
            job = msg.run.job
            latency = job.start_latency if msg.attempt == 1 else None  # first launch: the common draw
            task = fargate.launch(spot, job.vcpu, job.gb, self._on_running, self._on_notice, latency)
            self.active.add(task)
            self._job[task] = msg
            self.queue.delete(msg)
            self.sim.after(p.runtask_api_s, self._handle, batch, i + 1, 1, active + 1)
            return
        delay = self._retry_delay(attempt)
        if delay is not None:
            self.sim.after(delay, self._handle, batch, i, attempt + 1, active)
            return
        self._defer(msg)  # throttled after the SDK's retries: back with a delay
        self.sim.after(p.runtask_api_s, self._handle, batch, i + 1, 1, active)

    def _retry_delay(self, attempt: int) -> float | None:
        """A throttled call: the SDK's next try (full-jitter backoff, base 2, cap 20 s) after the call's
        own time, or None when the attempts are used up."""
        self.ledger.calls["throttled"] += 1
        p = self.p
        if attempt >= p.sdk_max_attempts:
            return None
        return p.runtask_api_s + self.rng.random() * min(p.sdk_max_backoff_s, 2.0 ** (attempt - 1))

    def _defer(self, msg: Message) -> None:
        """Send-before-ack: a delayed copy (deferrals + 1), then the original is deleted."""
        self.ledger.deferred += 1
        self.ledger.calls["SendMessage (deferred)"] += 1
        delay = backoff_seconds(msg.deferrals, f"job-{msg.run.job.id}")
        self.queue.delete(msg)
        self.queue.send(Message(msg.run, msg.attempt, msg.prefer_on_demand, msg.deferrals + 1), delay)

    def _end(self) -> None:
        self.invocations -= 1
        if self.queue.visible:
            self._poller.at(self.sim.now)

    # ---- the task and task_events -----------------------------------------------------
    def _on_running(self, task: Task) -> None:
        self.running += 1
        self.fargate.start_job(task, self._job[task], self._on_done)

    def _on_done(self, task: Task, msg: Message) -> None:
        self._release(task)
        self.fargate.stop(task)

    def _on_notice(self, task: Task) -> None:
        msg = self.fargate.stop_job(task)
        self._release(task)
        self.fargate.stop(task, self.p.spot_stop_s)
        if msg is not None:  # task_events acts on the STOPPED event
            self.sim.after(self.p.spot_stop_s + self.p.trigger_s, self._resubmit, msg)

    def _resubmit(self, msg: Message) -> None:
        interruptions = msg.attempt  # every attempt after the first followed an interruption
        if interruptions > MAX_INTERRUPTIONS:
            msg.run.lost = f"FAILED after {MAX_INTERRUPTIONS} interruptions"
            return
        self.queue.send(Message(msg.run, msg.attempt + 1, prefer_on_demand=True))

    def _release(self, task: Task) -> None:
        self.running -= 1
        self.active.discard(task)
        del self._job[task]
