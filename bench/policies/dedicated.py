"""This project's dedicated-task path (JobSpec dedicated=true), run by the product's own lifecycle code.

Each SQS batch the event source delivers is one submitter invocation: ``lifecycle.submit.Submitter.handle`` (the
code the submitter Lambda runs, imported unmodified from ``lambdas/``) handles its messages one by one. Each ECS
Task State Change of a job's task (RUNNING; STOPPED after the job exits 0 or after a Spot interruption) goes to
``lifecycle.task_watch.TaskWatch.on_task_state_change`` (the task-events Lambda's code). Both write the job's
record in an in-memory job store (``fakes.store.InMemoryJobStore``) and reach the simulated world through thin
bridges to their ports (lifecycle.ports):

* ECS: ``run_task`` launches a simulated Fargate task on the request's capacity provider against the account's
  budgets; a throttled call waits the SDK's retry delays in simulated time, then raises ``Throttled``.
  ``count_active`` is ListTasks against the cluster read budget.
* SQS: ``send`` puts the message on the simulated dispatch queue with its delay (a deferral, a retry).
* the clock: simulated seconds as an aware UTC datetime.

An invocation runs as a simulated process (bench.sim.Process): the product's calls block, while the simulated time
they take passes (the Lambda's init, ``runtask_api_s`` per message, SDK retry delays).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count
from typing import Any

import numpy as np

from bench.aws import Queue, Task
from bench.models import Params, TokenBucket
from bench.policies.base import Policy
from bench.policies.dedicated_ports import DISPATCH_DLQ_URL, DISPATCH_QUEUE_URL, SimEcs, SimQueues
from bench.sim import JobRun, Ledger, Message, Process, Sim, Wakeup
from bench.workloads import Workload
from contracts import CONTAINER_NAME
from fakes.clock import START
from fakes.store import InMemoryJobStore
from jobs.ecs import FARGATE_SPOT
from jobs.jobspec import Deployment, JobSpec
from jobs.messages import dispatch_attributes
from jobs.states import JobState
from jobs.timeutil import iso
from lifecycle.launch import DispatchConfig
from lifecycle.launch_plan import LaunchConfig
from lifecycle.ports import Ports
from lifecycle.submit import Message as SqsRecord
from lifecycle.submit import Submitter
from lifecycle.task_watch import TaskWatch, TaskWatchConfig

ACCOUNT = "arn:aws:ecs:us-east-1:123456789012"
CLUSTER = "training"
TASK_DEFINITION = f"{ACCOUNT}:task-definition/{CLUSTER}:1"
INTERRUPTED = "Your Spot Task was interrupted."
EXITED = "Essential container in task exited"
SIGTERM_EXIT = 143
"""The trainer's exit code after SIGTERM (it checkpoints and exits)."""


def job_id(run: JobRun) -> str:
    """The job id of a run's job in the product (its JobSpec job_id)."""
    return f"job-{run.job.id}"


@dataclass(frozen=True)
class _Launched:
    """What ECS knows of a task this path started."""

    arn: str
    run: JobRun
    provider: str


class _Discard(io.StringIO):
    """A stdout that keeps nothing."""

    def write(self, text: str) -> int:
        return len(text)


class OursDedicated(Policy):
    name = "ours_dedicated"
    label = "event-driven (dedicated tasks)"
    summary = (
        "lifecycle.submit.Submitter.handle per SQS message (event source: batch, window and MaximumConcurrency as "
        "in cdk_app): ListTasks once per batch for the MAX_CONCURRENT_TASKS cap, RunTask on Fargate Spot first "
        "(SDK standard retries), throttled or capped jobs deferred (lifecycle.dispatch_rules.backoff_seconds); "
        "lifecycle.task_watch.TaskWatch.on_task_state_change per task event: a Spot-interrupted job is retried "
        "on on-demand (jobs.retries.MAX_INTERRUPTIONS); job records in fakes.store.InMemoryJobStore; no idle tasks"
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
        self.store = InMemoryJobStore()
        self.queues = SimQueues(self)
        self.config = DispatchConfig(
            dispatch_queue_url=DISPATCH_QUEUE_URL,
            dispatch_dlq_url=DISPATCH_DLQ_URL,
            worker_queue_url="",
            jobs_table="jobs",
            launch=LaunchConfig(
                cluster=CLUSTER,
                task_definitions={"default": TASK_DEFINITION},
                gpu_task_definitions={},
                gpu_capacity_provider="",
                subnet_ids=("subnet-1",),
                security_group_ids=("sg-1",),
                artifacts_bucket="artifacts",
            ),
            deployment=Deployment(images=("default",)),
            task_families=(CLUSTER,),
            max_concurrent_tasks=p.max_tasks,
        )
        self.watch = TaskWatch(
            store=self.store,
            ecs=SimEcs(self, None),
            queues=self.queues,
            clock=self.now,
            config=TaskWatchConfig(cluster=CLUSTER, dispatch_queue_url=DISPATCH_QUEUE_URL),
        )
        self.runs: dict[str, JobRun] = {}
        self._bodies: dict[str, str] = {}
        self._tasks: dict[Task, _Launched] = {}
        self._job: dict[Task, Message] = {}
        self._ids = count(1)

    def now(self) -> datetime:
        """The clock port: simulated seconds from the fakes' start date."""
        return START + timedelta(seconds=self.sim.now)

    def submit(self, run: JobRun) -> None:
        key = job_id(run)
        self.runs[key] = run
        job = run.job
        spec = JobSpec(
            job_id=key, command=["train"], cpu=round(job.vcpu * 1024), memory=round(job.gb * 1024), dedicated=True
        )
        self._bodies[key] = spec.to_json()
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
            self.sim.after(p.lambda_init_s, self._invoke, batch)
        if self.queue.visible:  # all pollers busy: concurrency grows while the backlog lasts
            if self.backlog_since is None:
                self.backlog_since = now
            self._poller.at(now + 1.0)
        else:
            self.backlog_since = None

    # ---- the submitter Lambda: one invocation per batch -----------------------------------
    def _invoke(self, batch: list[Message]) -> None:
        Process(self.sim, lambda process: self._handle_batch(process, batch)).start()

    def _handle_batch(self, process: Process, batch: list[Message]) -> None:
        """What the submitter's handler does with a batch (its Capacity counts once per batch); each message
        takes ``runtask_api_s`` (RunTask + record writes) besides any SDK retry delays."""
        ports = Ports(store=self.store, ecs=SimEcs(self, process), queues=self.queues, clock=self.now)
        submitter = Submitter(ports, self.config, claim_prefix=f"request-{next(self._ids)}")
        for msg in batch:
            submitter.handle(self._record(msg))
            self.queue.delete(msg)  # handled: acknowledged (a deferral sent its copy first)
            process.wait(self.p.runtask_api_s)
        self.invocations -= 1
        if self.queue.visible:
            self._poller.at(self.sim.now)

    def _record(self, msg: Message) -> SqsRecord:
        """The SQS event record of a delivered message."""
        sent = dispatch_attributes(attempt=msg.attempt, prefer_on_demand=msg.prefer_on_demand, deferrals=msg.deferrals)
        attributes = {k: {"stringValue": a["StringValue"], "dataType": a["DataType"]} for k, a in sent.items()}
        return SqsRecord(f"message-{next(self._ids)}", self._bodies[job_id(msg.run)], attributes)

    def retry_delay(self, attempt: int) -> float | None:
        """A throttled call: the SDK's next try (full-jitter backoff, base 2, cap 20 s) after the call's
        own time, or None when the attempts are used up."""
        self.ledger.calls["throttled"] += 1
        p = self.p
        if attempt >= p.sdk_max_attempts:
            return None
        return p.runtask_api_s + self.rng.random() * min(p.sdk_max_backoff_s, 2.0 ** (attempt - 1))

    def launch(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        """RunTask accepted: a task of the request's size on its capacity provider; a job's first launch starts
        after the start latency drawn for it (common to every policy)."""
        provider = str(request["capacityProviderStrategy"][0]["capacityProvider"])
        run = self.runs[str(request["startedBy"])]
        attempt = int(next(t["value"] for t in request["tags"] if t["key"] == "attempt"))
        spot = provider == FARGATE_SPOT
        overrides = request["overrides"]
        vcpu, gb = int(overrides["cpu"]) / 1024, int(overrides["memory"]) / 1024
        latency = run.job.start_latency if attempt == 1 else None
        task = self.fargate.launch(spot, vcpu, gb, self._on_running, self._on_notice, latency)
        arn = f"{ACCOUNT}:task/{CLUSTER}/{task.id:032x}"
        self.active.add(task)
        self._tasks[task] = _Launched(arn, run, provider)
        self._job[task] = Message(run, attempt, not spot)
        self.ledger.runtask_times.append(self.sim.now)
        item = {"taskArn": arn, "capacityProviderName": provider, "lastStatus": "PROVISIONING"}
        return {"tasks": [{**item, "startedBy": job_id(run)}], "failures": []}

    # ---- the task and its state changes (the task-events Lambda) -------------------------
    def _on_running(self, task: Task) -> None:
        self.running += 1
        self.fargate.start_job(task, self._job[task], self._on_done)
        self._report(task, "RUNNING")

    def _on_done(self, task: Task, msg: Message) -> None:
        self._release(task)
        self.fargate.stop(task)
        self._report(task, "STOPPED", stop_code="EssentialContainerExited", reason=EXITED, exit_code=0)

    def _on_notice(self, task: Task) -> None:
        self.fargate.stop_job(task)
        self._release(task)
        self.fargate.stop(task, self.p.spot_stop_s)  # the job checkpoints and exits on SIGTERM
        self.sim.after(self.p.spot_stop_s, self._report, task, "STOPPED", "SpotInterruption", INTERRUPTED, SIGTERM_EXIT)

    def _report(
        self,
        task: Task,
        status: str,
        stop_code: str | None = None,
        reason: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        """ECS emits the task's state change now; EventBridge invokes the task-events Lambda ``trigger_s`` later."""
        launched = self._tasks[task] if status == "RUNNING" else self._tasks.pop(task)
        container: dict[str, Any] = {"name": CONTAINER_NAME, "lastStatus": status}
        detail: dict[str, Any] = {
            "taskArn": launched.arn,
            "clusterArn": f"{ACCOUNT}:cluster/{CLUSTER}",
            "taskDefinitionArn": TASK_DEFINITION,
            "group": f"family:{CLUSTER}",
            "startedBy": job_id(launched.run),
            "capacityProviderName": launched.provider,
            "lastStatus": status,
            "desiredStatus": status,
            "containers": [container],
        }
        if task.running_at is not None:
            detail["startedAt"] = iso(START + timedelta(seconds=task.running_at))
        if status == "STOPPED":
            container["exitCode"] = exit_code
            detail.update(stopCode=stop_code, stoppedReason=reason, stoppedAt=iso(self.now()))
        self.sim.after(self.p.trigger_s, self._on_task_event, detail, launched.run)

    def _on_task_event(self, detail: Mapping[str, Any], run: JobRun) -> None:
        with contextlib.redirect_stdout(_Discard()):  # the finished hook's metric line (CloudWatch EMF)
            self.watch.on_task_state_change(detail)
        record = self.store.get(job_id(run))
        if record is not None and record.terminal and record.state != JobState.SUCCEEDED:
            run.lost = f"{record.state}: {record.reason}"

    def _release(self, task: Task) -> None:
        self.running -= 1
        self.active.discard(task)
        del self._job[task]
