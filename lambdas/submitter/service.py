"""The submitter's per-message workflow, over small ports (ECS, queues, the jobs table, a clock).

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
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from aws.job_store import DynamoJobStore
from contracts import DISPATCH_QUEUE
from jobs import waiting
from jobs.errors import JobSpecInvalid, JobStateConflict, RequestRejected, Throttled, TransientAwsError
from jobs.jobspec import Deployment, JobSpec, derive_job_id, parse_job_spec
from jobs.messages import JOB_ID, REASON, DispatchAttributes, dispatch_attributes, read_dispatch_attributes
from jobs.record import NO_CLAIM, JobRecord, clip_reason
from jobs.states import WAITING, JobState
from jobs.timeutil import iso
from lifecycle.finished import job_finished
from lifecycle.reject import reject, string_attributes
from submitter.fanout import fan_out, hold_for_spot, is_parent_spec
from submitter.gang import GangLaunched, GangRefused, GangWaiting, launch_gang, stop_started_by, stop_tasks
from submitter.logic import (
    CancelWaiting,
    Defer,
    Launch,
    LaunchConfig,
    Launched,
    LaunchFailed,
    LaunchPlan,
    NoCapacity,
    OverridesTooLarge,
    Skip,
    backoff_seconds,
    cap_reason,
    claim_expired,
    decide,
    plan_launch,
    read_run_task,
)
from submitter.settings import SubmitterSettings

logger = Logger(child=True)


class Outcome(StrEnum):
    """What happened to one message (also the metric name)."""

    DISPATCHED = "JobsDispatched"
    REJECTED = "JobsRejected"
    DEFERRED = "JobsDeferred"
    SKIPPED = "DuplicatesSkipped"
    CANCELLED = "JobsCancelled"
    LAUNCH_ERROR = "LaunchErrors"
    EXPIRED = "JobsMaxWaitFailed"
    FANNED_OUT = "ArrayChildrenEnqueued"
    FAN_OUT_CONTINUED = "ArrayFanOutContinued"


class EcsPort(Protocol):
    def run_task(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        """RunTask; raises Throttled / TransientAwsError / RequestRejected for AWS error responses."""
        ...

    def count_active(self, families: tuple[str, ...]) -> int:
        """Training tasks whose desired status is RUNNING (pending or running)."""
        ...

    def find_task_started_by(self, started_by: str) -> tuple[str, str | None] | None:
        """(task ARN, capacity provider) of a task with desired status RUNNING started by `started_by`."""
        ...

    def stop_task(self, task_arn: str, reason: str) -> None: ...

    def list_started_by(self, started_by: str) -> list[str]:
        """ARNs of every task with desired status RUNNING started by `started_by` (the ranks of a gang)."""
        ...


class QueuePort(Protocol):
    def send(
        self, queue_url: str, body: str, attributes: Mapping[str, Mapping[str, str]], *, delay_seconds: int = 0
    ) -> str: ...

    def send_batch(self, queue_url: str, bodies: Sequence[tuple[str, str]]) -> None: ...


@dataclass
class Ports:
    store: DynamoJobStore
    ecs: EcsPort
    queues: QueuePort
    clock: Callable[[], datetime]


@dataclass(frozen=True)
class Message:
    message_id: str
    body: str
    attributes: Mapping[str, Mapping[str, Any]]

    @classmethod
    def from_sqs_record(cls, record: Mapping[str, Any]) -> Message:
        """From one record of an SQS Lambda event (`messageId`, `body`, `messageAttributes`)."""
        return cls(
            message_id=str(record["messageId"]),
            body=str(record.get("body") or ""),
            attributes=record.get("messageAttributes") or {},
        )


class Capacity:
    """Room under MAX_CONCURRENT_TASKS, counted with ListTasks at most once per batch."""

    def __init__(self, ecs: EcsPort, families: tuple[str, ...], maximum: int) -> None:
        self._ecs = ecs
        self._families = families
        self._maximum = maximum
        self._active: int | None = None
        self._error: str | None = None

    def room(self, tasks: int = 1) -> tuple[bool, str]:
        """Whether `tasks` more training tasks fit (a gang counts all its ranks)."""
        if self._active is None and self._error is None:
            try:
                self._active = self._ecs.count_active(self._families)
            except (Throttled, TransientAwsError, RequestRejected) as exc:
                self._error = f"waiting: could not count active tasks ({exc})"
        if self._active is None:
            return False, self._error or "waiting: active task count unknown"
        if self._active + tasks > self._maximum:
            needs = f"; this job needs {tasks}" if tasks > 1 else ""
            return False, cap_reason(self._active, self._maximum) + needs
        return True, ""

    def took(self, tasks: int) -> None:
        if self._active is not None:
            self._active += tasks


class Batch:
    """Processes the records of one SQS batch (the ListTasks count is shared by the batch)."""

    def __init__(self, ports: Ports, settings: SubmitterSettings, *, claim_prefix: str) -> None:
        self._ports = ports
        self._settings = settings
        self._claim_prefix = claim_prefix
        self.capacity = Capacity(ports.ecs, settings.task_families, settings.max_concurrent_tasks)
        self._launch_config = _launch_config(settings)
        self._deployment = Deployment(
            images=settings.task_definitions.keys(),
            gpu_images=settings.gpu_task_definitions.keys(),
            gpu_enabled=settings.gpu_enabled,
            max_nodes=settings.max_nodes,
        )

    # -- entry point -----------------------------------------------------------------------------

    def handle(self, message: Message) -> Outcome:
        try:
            meta = read_dispatch_attributes(message.attributes)
            spec = parse_job_spec(message.body, self._deployment)
        except JobSpecInvalid as exc:
            return self._reject(message, str(exc), attempt=1)
        if spec.job_id is None:
            spec = spec.model_copy(update={"job_id": derive_job_id(message.message_id)})
        job_id = str(spec.job_id)
        if is_parent_spec(spec):  # an array job or sweep: enqueue its children (submitter.fanout)
            return Outcome(self._fan_out(spec, lambda why: self._reject(message, why, attempt=1, job_id=job_id)))
        try:
            plan = plan_launch(
                spec, attempt=meta.attempt, prefer_on_demand=meta.prefer_on_demand, config=self._launch_config
            )
        except OverridesTooLarge as exc:
            return self._reject(message, f"invalid job spec: environment: {exc}", attempt=meta.attempt, job_id=job_id)
        return self._dispatch(message, meta, spec, plan)

    # -- paths -----------------------------------------------------------------------------------

    def _fan_out(self, spec: JobSpec, reject: Callable[[str], str]) -> str:
        return fan_out(
            spec,
            store=self._ports.store,
            queues=self._ports.queues,
            clock=self._ports.clock,
            dispatch_queue_url=self._settings.dispatch_queue_url,
            worker_queue_url=self._settings.worker_queue_url,
            reject=reject,
        )

    def _dispatch(self, message: Message, meta: DispatchAttributes, spec: JobSpec, plan: LaunchPlan) -> Outcome:
        ports, now = self._ports, self._ports.clock()
        job_id = plan.job_id
        room, room_reason = self.capacity.room(spec.nodes)
        claim = f"{self._claim_prefix}:{message.message_id}"
        created, job = ports.store.create_if_absent(
            job_id,
            state=JobState.SUBMITTED,
            attempt=meta.attempt,
            now=now,
            spec=spec.to_json(),
            queue=DISPATCH_QUEUE,
            reason=None if room else _deferred_reason(room_reason, backoff_seconds(meta.deferrals, job_id)),
            launch_claim=claim if room else None,
            launch_claimed_at=iso(now) if room else None,
        )
        plan = hold_for_spot(plan, spec, job, now)
        if created:
            if room:
                return self._launch(job, plan, claim, meta, spec, takeover=False)
            return self._defer(job, meta, spec, room_reason, annotate=False)
        prefer = meta.prefer_on_demand or bool(job.extra.get("prefer_on_demand"))
        if prefer != meta.prefer_on_demand:
            plan = plan_launch(spec, attempt=meta.attempt, prefer_on_demand=prefer, config=self._launch_config)
        plan = hold_for_spot(plan, spec, job, now)
        if job.state in WAITING and job.launch_claim is None and waiting.expired(spec, job, now) == waiting.FAIL:
            # only a job still waiting with no launch in progress: a DISPATCHED job's task may be starting
            return self._finish_waiting(job, JobState.FAILED, waiting.expiry_reason(spec, job))
        decision = decide(job=job, message_attempt=meta.attempt, now=now, room=room, room_reason=room_reason)
        if isinstance(decision, Skip):
            logger.info("duplicate or stale message skipped", extra={"job_id": job_id, "reason": decision.reason})
            return Outcome.SKIPPED
        if isinstance(decision, Defer):
            return self._defer(job, meta, spec, decision.reason)
        if isinstance(decision, CancelWaiting):
            return self._cancel(job, decision.reason)
        assert isinstance(decision, Launch)
        try:
            job = ports.store.claim_launch(
                job_id, state=job.state, attempt=job.attempt, claim=claim, now=now, takeover_from=decision.takeover
            )
        except JobStateConflict as conflict:
            current = conflict.current
            if current is not None and current.cancel_requested and current.state in WAITING:
                if current.launch_claim is not None and not claim_expired(current, now):
                    return self._defer(current, meta, spec, "cancel waits for the launch in progress elsewhere")
                return self._cancel(current, "cancelled before a task was launched")
            logger.info("lost the launch claim to another consumer", extra={"job_id": job_id, "current": str(conflict)})
            return Outcome.SKIPPED
        return self._launch(job, plan, claim, meta, spec, takeover=decision.takeover is not None)

    def _launch(
        self, job: JobRecord, plan: LaunchPlan, claim: str, meta: DispatchAttributes, spec: JobSpec, *, takeover: bool
    ) -> Outcome:
        ports = self._ports
        if spec.nodes > 1:
            return self._launch_gang(job, plan, claim, meta, spec, takeover=takeover)
        if takeover:
            found = ports.ecs.find_task_started_by(plan.job_id)
            if found is not None:
                task_arn, provider = found
                logger.warning(
                    "recovered a task launched before a crash", extra={"job_id": job.job_id, "task_arn": task_arn}
                )
                return self._record_dispatched(job, claim, Launched(task_arn, provider or "unknown"), None)
            room, room_reason = self.capacity.room()
            if not room:
                self._release(job, claim, _deferred_reason(room_reason, backoff_seconds(meta.deferrals, job.job_id)))
                return self._defer(job, meta, spec, room_reason, annotate=False)
        notes: list[str] = []
        for provider in plan.providers:
            try:
                response = ports.ecs.run_task(plan.request(provider))
            except Throttled as exc:
                # A throttled call did nothing: release the claim and come back later.
                reason = f"waiting: RunTask on {provider} throttled after retries ({exc})"
                self._release(job, claim, _deferred_reason(reason, backoff_seconds(meta.deferrals, job.job_id)))
                return self._defer(job, meta, spec, reason, annotate=False)
            except TransientAwsError as exc:
                # A 5xx: the task may or may not exist. Keep the claim (its lease makes the deferred copy wait,
                # then recover through startedBy / the client token) instead of risking a second launch.
                return self._defer(job, meta, spec, f"waiting: RunTask on {provider} failed ({exc}); outcome unknown")
            except RequestRejected as exc:
                return self._launch_error(job, claim, f"RunTask rejected the launch: {exc}", spec)
            outcome = read_run_task(response, provider)
            if isinstance(outcome, Launched):
                note = f"{'; '.join(notes)}; launched on {outcome.provider}" if notes else None
                return self._record_dispatched(job, claim, outcome, note)
            if isinstance(outcome, LaunchFailed):
                return self._launch_error(job, claim, f"RunTask failed: {outcome.reason}", spec)
            assert isinstance(outcome, NoCapacity)
            notes.append(f"no capacity on {outcome.reason}")
            logger.warning("no capacity, falling back", extra={"job_id": job.job_id, "reason": outcome.reason})
        reason = "waiting: " + "; ".join(notes)
        self._release(job, claim, _deferred_reason(reason, backoff_seconds(meta.deferrals, job.job_id)))
        return self._defer(job, meta, spec, reason, annotate=False)

    def _launch_gang(
        self, job: JobRecord, plan: LaunchPlan, claim: str, meta: DispatchAttributes, spec: JobSpec, *, takeover: bool
    ) -> Outcome:
        """A distributed job: all its ranks on one capacity provider, or none (submitter.gang)."""
        ecs, delay = self._ports.ecs, backoff_seconds(meta.deferrals, job.job_id)
        if takeover:
            stopped = stop_started_by(ecs, plan.job_id, "relaunching a gang whose launch was interrupted")
            logger.warning("took over a gang launch", extra={"job_id": job.job_id, "stopped_tasks": stopped})
            room, room_reason = self.capacity.room(spec.nodes)
            if not room:
                self._release(job, claim, _deferred_reason(room_reason, delay))
                return self._defer(job, meta, spec, room_reason, annotate=False)
        outcome = launch_gang(ecs, plan, nodes=spec.nodes, jobs_table=self._settings.table_name, claim=claim)
        if isinstance(outcome, GangLaunched):
            note = "; ".join((*outcome.notes, f"launched on {outcome.provider}")) if outcome.notes else None
            arns = outcome.task_arns
            launched = Launched(arns[0], outcome.provider)
            return self._record_dispatched(job, claim, launched, note, tasks=len(arns), gang_tasks=list(arns))
        if isinstance(outcome, GangRefused):
            return self._launch_error(job, claim, outcome.reason, spec)
        if isinstance(outcome, GangWaiting):
            self._release(job, claim, _deferred_reason(outcome.reason, delay))
            return self._defer(job, meta, spec, outcome.reason, annotate=False)
        return self._defer(job, meta, spec, outcome.reason)  # outcome unknown: the claim stays, see the docstring

    def _record_dispatched(
        self, job: JobRecord, claim: str, launched: Launched, note: str | None, *, tasks: int = 1, **fields: Any
    ) -> Outcome:
        ports = self._ports
        self.capacity.took(tasks)
        try:
            record = ports.store.transition(
                job.job_id,
                JobState.DISPATCHED,
                expected_states=job.state,
                expected_attempt=job.attempt,
                expected_claim=claim,
                now=ports.clock(),
                reason=note,
                task_arn=launched.task_arn,
                capacity_provider=launched.provider,
                launch_claim=None,
                launch_claimed_at=None,
                exit_code=None,
                stopped_reason=None,
                queue=DISPATCH_QUEUE,
                **fields,  # no rendezvous=None: claim_launch cleared it before RunTask; rank 0 may have published
            )
        except JobStateConflict as conflict:
            # Our lease expired (an invocation slower than LAUNCH_LEASE_SECONDS) and another consumer took
            # the job over. A single task is adopted via startedBy / the client token. A gang's ranks are not
            # (their client tokens name our claim, and the takeover may have listed the job's tasks before we
            # started them): stop them now, unless the record shows our own write landed (a retried update).
            # A single task is stopped too when the job has ended meanwhile (e.g. cancelled by a duplicate
            # delivery, or another consumer's max_wait): no takeover will adopt it.
            stop = [str(arn) for arn in fields.get("gang_tasks") or ()]
            current = conflict.current
            if current is not None and current.task_arn == launched.task_arn:
                stop = []
            elif not stop and (current is None or current.terminal):
                stop = [launched.task_arn]
            stop_tasks(ports.ecs, stop, f"job {job.job_id}: this launch lost its claim")
            logger.error(
                "launched, but the claim was taken over",
                extra={"job_id": job.job_id, "current": str(conflict), "stopped_tasks": len(stop)},
            )
            return Outcome.SKIPPED
        logger.info(
            "dispatched",
            extra={"job_id": job.job_id, "task_arn": launched.task_arn, "capacity_provider": launched.provider},
        )
        if record.cancel_requested:
            ports.ecs.stop_task(launched.task_arn, "cancelled by user")
        return Outcome.DISPATCHED

    def _defer(
        self, job: JobRecord, meta: DispatchAttributes, spec: JobSpec, reason: str, *, annotate: bool = True
    ) -> Outcome:
        """Send-before-ack: a copy goes back with a delay, then the original is acknowledged. A duplicate from a
        crash in between is harmless (job-id idempotency). The job keeps waiting, with the reason recorded."""
        ports = self._ports
        delay = backoff_seconds(meta.deferrals, job.job_id)
        ports.queues.send(
            self._settings.dispatch_queue_url,
            spec.to_json(),
            dispatch_attributes(
                attempt=meta.attempt, prefer_on_demand=meta.prefer_on_demand, deferrals=meta.deferrals + 1
            ),
            delay_seconds=delay,
        )
        full_reason = _deferred_reason(reason, delay)
        if annotate:
            with contextlib.suppress(JobStateConflict):  # the job moved on; the deferred copy will be skipped
                ports.store.annotate(
                    job.job_id,
                    expected_states=job.state,
                    expected_attempt=job.attempt,
                    now=ports.clock(),
                    reason=full_reason,
                )
        logger.info("deferred", extra={"job_id": job.job_id, "reason": full_reason})
        return Outcome.DEFERRED

    def _release(self, job: JobRecord, claim: str, reason: str) -> None:
        try:
            self._ports.store.release_claim(
                job.job_id, state=job.state, attempt=job.attempt, claim=claim, now=self._ports.clock(), reason=reason
            )
        except JobStateConflict:
            logger.warning("claim already gone while releasing it", extra={"job_id": job.job_id})

    def _launch_error(self, job: JobRecord, claim: str, reason: str, spec: JobSpec) -> Outcome:
        """AWS refused the launch (e.g. a missing permission or task definition): the message goes to the DLQ
        with the reason; the job stays waiting with that reason so a redrive after the fix launches it."""
        reason = clip_reason(reason)
        self._ports.queues.send(
            self._settings.dispatch_dlq_url,
            spec.to_json(),
            {**dispatch_attributes(attempt=job.attempt), **string_attributes({REASON: reason, JOB_ID: job.job_id})},
        )
        self._release(job, claim, f"{reason} (message sent to the DLQ)")
        logger.error("launch error", extra={"job_id": job.job_id, "reason": reason})
        return Outcome.LAUNCH_ERROR

    def _cancel(self, job: JobRecord, reason: str) -> Outcome:
        if job.launch_claim is not None:  # an expired claim (decide): its lost launch may have started tasks
            stop_started_by(self._ports.ecs, job.job_id, "cancelled by user")
        return self._finish_waiting(job, JobState.CANCELLED, reason)

    def _finish_waiting(self, job: JobRecord, state: JobState, reason: str) -> Outcome:
        """End a job that never got a task (cancelled, or past its max_wait): its metric, its count on its parent."""
        try:
            ended = self._ports.store.transition(
                job.job_id,
                state,
                expected_states=job.state,
                expected_attempt=job.attempt,
                expected_claim=job.launch_claim or NO_CLAIM,  # no launch began (or was taken over) since the read
                now=self._ports.clock(),
                reason=reason,
            )
        except JobStateConflict:
            return Outcome.SKIPPED
        job_finished(self._ports.store, ended, self._ports.clock())
        return Outcome.CANCELLED if state == JobState.CANCELLED else Outcome.EXPIRED

    def _reject(self, message: Message, reason: str, *, attempt: int, job_id: str | None = None) -> Outcome:
        ports = self._ports
        job_id = reject(
            store=ports.store,
            queues=ports.queues,
            clock=ports.clock,
            dlq_url=self._settings.dispatch_dlq_url,
            queue=DISPATCH_QUEUE,
            message_id=message.message_id,
            body=message.body,
            reason=reason,
            attempt=attempt,
            job_id=job_id,
        )
        logger.warning("rejected", extra={"job_id": job_id, "reason": clip_reason(reason)})
        return Outcome.REJECTED


def _deferred_reason(reason: str, delay: int) -> str:
    return f"{reason} (next try in {delay} s)"


def _launch_config(settings: SubmitterSettings) -> LaunchConfig:
    return LaunchConfig(
        cluster=settings.cluster,
        task_definitions=settings.task_definitions,
        gpu_task_definitions=settings.gpu_task_definitions,
        gpu_capacity_provider=settings.gpu_capacity_provider,
        subnet_ids=settings.subnet_ids,
        security_group_ids=settings.security_group_ids,
        artifacts_bucket=settings.artifacts_bucket,
    )
