"""Launching a job whose launch claim this consumer holds, and deferring a dispatch message.

Crash-safety ordering for one launch (job J, attempt N):

1. claim:   conditional write "J is waiting at attempt N and unclaimed" -> launch_claim = C (for a new job
            the claim rides on the create itself). Only one consumer can hold the claim, so two concurrent
            deliveries of J/N cannot both call RunTask.
2. launch:  RunTask with clientToken = f(J, N, provider) and startedBy = J.
3. record:  conditional write "J at attempt N still claimed by C" -> DISPATCHED, task_arn, capacity provider.

A crash between 1 and 3 leaves J waiting and claimed: the message comes back (visibility timeout), the
claim is respected until its lease expires (the message is deferred meanwhile), then exactly one consumer
takes the claim over, looks for a task already started for J (ListTasks startedBy=J) and adopts it, or
launches with the same client tokens (in AWS, RunTask returns the original task for a repeated token).
Outcomes where no task can have started (throttled, capacity failures, a request AWS rejected) release the
claim. Any other error (unknown outcome) keeps the claim and fails the record, so SQS redelivers it.

Step 1 is lifecycle.submit's, step 2 lifecycle.run_tasks'; step 3, the takeover and every release are here.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from contracts import DISPATCH_QUEUE
from jobs.errors import JobStateConflict
from jobs.jobspec import Deployment, JobSpec
from jobs.messages import JOB_ID, REASON, DispatchAttributes, dispatch_attributes
from jobs.record import JobRecord, clip_reason
from jobs.states import JobState
from lifecycle.capacity import Capacity
from lifecycle.dispatch_rules import Outcome, backoff_seconds, deferred_reason, stop_after_lost_claim
from lifecycle.launch_plan import LaunchConfig, LaunchPlan
from lifecycle.ports import Ports
from lifecycle.reject import string_attributes
from lifecycle.run_tasks import (
    LaunchOutcome,
    Refused,
    Started,
    Waiting,
    start_gang,
    start_task,
    stop_started_by,
    stop_tasks,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchConfig:
    """What the dispatch path needs from its deployment (the submitter's wiring builds it from its settings)."""

    dispatch_queue_url: str
    dispatch_dlq_url: str
    worker_queue_url: str
    """Where the children of a non-dedicated array job or sweep go (empty: such jobs are rejected)."""
    jobs_table: str
    """Where the ranks of a distributed job publish their rendezvous."""
    launch: LaunchConfig
    deployment: Deployment
    """What a job spec may ask for in this deployment (images, GPUs, nodes)."""
    task_families: tuple[str, ...]
    """Task-definition families of training tasks (what counts against the cap)."""
    max_concurrent_tasks: int


@dataclass(frozen=True)
class Delivery:
    """One valid dispatch message being handled: its job spec (job id set), its internal attributes, and the
    launch claim this consumer takes for it."""

    spec: JobSpec
    meta: DispatchAttributes
    claim: str

    @property
    def job_id(self) -> str:
        return str(self.spec.job_id)

    @property
    def delay(self) -> int:
        """The backoff before a deferred copy of this message comes back."""
        return backoff_seconds(self.meta.deferrals, self.job_id)


class Launcher:
    """Claimed job -> RunTask -> DISPATCHED (or the claim released and the message deferred, or the DLQ)."""

    def __init__(self, ports: Ports, config: DispatchConfig, capacity: Capacity) -> None:
        self._ports = ports
        self._config = config
        self._capacity = capacity

    def launch(self, job: JobRecord, plan: LaunchPlan, delivery: Delivery, *, takeover: bool) -> Outcome:
        """Launch `job`, claimed by `delivery.claim`; `takeover`: the claim was taken over from a lost launch."""
        if takeover:
            recovered = self._take_over(job, delivery)
            if recovered is not None:
                return recovered
        spec, ecs = delivery.spec, self._ports.ecs
        if spec.nodes > 1:
            jobs_table = self._config.jobs_table
            outcome = start_gang(ecs, plan, nodes=spec.nodes, jobs_table=jobs_table, claim=delivery.claim)
        else:
            outcome = start_task(ecs, plan)
        return self._record(job, delivery, outcome)

    def defer(self, job: JobRecord, delivery: Delivery, reason: str, *, annotate: bool = True) -> Outcome:
        """Send-before-ack: a copy goes back with a delay, then the original is acknowledged. A duplicate from a
        crash in between is harmless (job-id idempotency). The job keeps waiting, with the reason recorded."""
        ports, meta = self._ports, delivery.meta
        delay = delivery.delay
        ports.queues.send(
            self._config.dispatch_queue_url,
            delivery.spec.to_json(),
            dispatch_attributes(
                attempt=meta.attempt, prefer_on_demand=meta.prefer_on_demand, deferrals=meta.deferrals + 1
            ),
            delay_seconds=delay,
        )
        full_reason = deferred_reason(reason, delay)
        if annotate:
            with contextlib.suppress(JobStateConflict):  # the job moved on; the deferred copy will be skipped
                ports.store.annotate(
                    job.job_id,
                    expected_states=job.state,
                    expected_attempt=job.attempt,
                    now=ports.clock(),
                    reason=full_reason,
                )
        log.info("deferred", extra={"job_id": job.job_id, "reason": full_reason})
        return Outcome.DEFERRED

    def _take_over(self, job: JobRecord, delivery: Delivery) -> Outcome | None:
        """Before relaunching after a lost launch: adopt the single task it started, or stop every rank a gang's
        lost launch started (ranks are not adopted); then launch only if there is room (None: go on)."""
        ecs, nodes = self._ports.ecs, delivery.spec.nodes
        if nodes > 1:
            stopped = stop_started_by(ecs, job.job_id, "relaunching a gang whose launch was interrupted")
            log.warning("took over a gang launch", extra={"job_id": job.job_id, "stopped_tasks": stopped})
        else:
            found = ecs.find_task_started_by(job.job_id)
            if found is not None:
                task_arn, provider = found
                log.warning(
                    "recovered a task launched before a crash", extra={"job_id": job.job_id, "task_arn": task_arn}
                )
                return self._record_dispatched(job, delivery, Started((task_arn,), provider or "unknown"))
        room, room_reason = self._capacity.room(nodes)
        if not room:
            return self._release_and_defer(job, delivery, room_reason)
        return None

    def _record(self, job: JobRecord, delivery: Delivery, outcome: LaunchOutcome) -> Outcome:
        if isinstance(outcome, Started):
            return self._record_dispatched(job, delivery, outcome)
        if isinstance(outcome, Refused):
            return self._launch_error(job, delivery, outcome.reason)
        if isinstance(outcome, Waiting):
            return self._release_and_defer(job, delivery, outcome.reason)
        return self.defer(job, delivery, outcome.reason)  # outcome unknown: the claim stays, see the docstring

    def _record_dispatched(self, job: JobRecord, delivery: Delivery, started: Started) -> Outcome:
        ports, gang = self._ports, delivery.spec.nodes > 1
        task_arn = started.task_arns[0]
        self._capacity.took(len(started.task_arns))
        gang_fields: dict[str, Any] = {"gang_tasks": list(started.task_arns)} if gang else {}
        try:
            record = ports.store.transition(
                job.job_id,
                JobState.DISPATCHED,
                expected_states=job.state,
                expected_attempt=job.attempt,
                expected_claim=delivery.claim,
                now=ports.clock(),
                reason=started.note,
                task_arn=task_arn,
                capacity_provider=started.provider,
                launch_claim=None,
                launch_claimed_at=None,
                exit_code=None,
                stopped_reason=None,
                queue=DISPATCH_QUEUE,
                **gang_fields,  # no rendezvous=None: claim_launch cleared it before RunTask; rank 0 may have published
            )
        except JobStateConflict as conflict:
            # Our lease expired (an invocation slower than LAUNCH_LEASE_SECONDS) and another consumer took
            # the job over, or the job ended meanwhile (e.g. cancelled by a duplicate delivery, or another
            # consumer's max_wait): stop what no takeover will adopt (dispatch_rules.stop_after_lost_claim).
            stop = stop_after_lost_claim(started.task_arns, conflict.current, gang=gang)
            stop_tasks(ports.ecs, stop, f"job {job.job_id}: this launch lost its claim")
            log.error(
                "launched, but the claim was taken over",
                extra={"job_id": job.job_id, "current": str(conflict), "stopped_tasks": len(stop)},
            )
            return Outcome.SKIPPED
        log.info(
            "dispatched",
            extra={"job_id": job.job_id, "task_arn": task_arn, "capacity_provider": started.provider},
        )
        if record.cancel_requested:
            ports.ecs.stop_task(task_arn, "cancelled by user")
        return Outcome.DISPATCHED

    def _release_and_defer(self, job: JobRecord, delivery: Delivery, reason: str) -> Outcome:
        """No task can have started: give the claim back (the record says why, and when the next try is), then
        defer the message."""
        self._release(job, delivery.claim, deferred_reason(reason, delivery.delay))
        return self.defer(job, delivery, reason, annotate=False)

    def _release(self, job: JobRecord, claim: str, reason: str) -> None:
        try:
            self._ports.store.release_claim(
                job.job_id, state=job.state, attempt=job.attempt, claim=claim, now=self._ports.clock(), reason=reason
            )
        except JobStateConflict:
            log.warning("claim already gone while releasing it", extra={"job_id": job.job_id})

    def _launch_error(self, job: JobRecord, delivery: Delivery, reason: str) -> Outcome:
        """AWS refused the launch (e.g. a missing permission or task definition): the message goes to the DLQ
        with the reason; the job stays waiting with that reason so a redrive after the fix launches it."""
        reason = clip_reason(reason)
        self._ports.queues.send(
            self._config.dispatch_dlq_url,
            delivery.spec.to_json(),
            {**dispatch_attributes(attempt=job.attempt), **string_attributes({REASON: reason, JOB_ID: job.job_id})},
        )
        self._release(job, delivery.claim, f"{reason} (message sent to the DLQ)")
        log.error("launch error", extra={"job_id": job.job_id, "reason": reason})
        return Outcome.LAUNCH_ERROR
