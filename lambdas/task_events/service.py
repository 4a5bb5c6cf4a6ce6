"""Applies task-events decisions to the jobs table, ECS and the dispatch queue (over small ports).

Ordering for a retry: the RETRYING transition (attempt + 1) is written first, then the dispatch message is
sent. If the send fails or the Lambda dies in between, the event is retried by EventBridge (async invoke)
and the duplicate STOPPED event for a RETRYING job re-sends the message; the reconcile pass also re-sends
for RETRYING jobs left untouched. The submitter is idempotent on (job, attempt), so extra copies are harmless.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from aws.job_store import DynamoJobStore
from jobs.errors import JobSpecInvalid, JobStateConflict
from jobs.gang import gang_tasks, is_gang_task
from jobs.jobspec import JOB_ID_PATTERN, JobSpec, parse_job_spec
from jobs.messages import dispatch_attributes
from jobs.record import JobRecord
from jobs.states import JobState
from task_events.accounting import after_terminal, attempt_fields, housekeeping
from task_events.gang_service import GangEvents
from task_events.logic import (
    Action,
    Finish,
    Ignore,
    MarkRunning,
    ResendRetry,
    Retry,
    StopForTimeout,
    TaskView,
    decide_reconcile,
    decide_task,
    stale_retry_cutoff,
)
from task_events.settings import TaskEventsSettings

logger = Logger(child=True)

MAX_CONFLICT_RETRIES = 3
DESCRIBE_BATCH = 100
"""DescribeTasks takes up to 100 task ARNs per call."""


class EcsPort(Protocol):
    def describe_tasks(self, task_arns: Sequence[str]) -> Mapping[str, Mapping[str, Any]]:
        """Task ARN -> task description (DescribeTasks shape) for the tasks ECS still knows."""
        ...

    def stop_task(self, task_arn: str, reason: str) -> None: ...

    def list_running_task_arns(self) -> list[str]:
        """Every task of the cluster with desired status RUNNING."""
        ...


class QueuePort(Protocol):
    def send(
        self, queue_url: str, body: str, attributes: Mapping[str, Mapping[str, str]], *, delay_seconds: int = 0
    ) -> str: ...


@dataclass
class Ports:
    store: DynamoJobStore
    ecs: EcsPort
    queues: QueuePort
    clock: Callable[[], datetime]


@dataclass
class Summary:
    """What one invocation did, by action name (returned by the handler, used for metrics)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1


class TaskEvents:
    def __init__(self, ports: Ports, settings: TaskEventsSettings) -> None:
        self._ports = ports
        self._settings = settings
        self._gangs = GangEvents(store=ports.store, ecs=ports.ecs, clock=ports.clock, apply=self._apply)

    # -- ECS Task State Change -------------------------------------------------------------------

    def on_task_state_change(self, detail: Mapping[str, Any]) -> Summary:
        summary = Summary()
        cluster_arn = str(detail.get("clusterArn") or "")
        if cluster_arn.rsplit("/", 1)[-1] != self._settings.cluster and cluster_arn != self._settings.cluster:
            summary.add("OtherCluster")
            return summary
        job_id = str(detail.get("startedBy") or "")
        if not re.match(JOB_ID_PATTERN, job_id):
            summary.add("NotAJob")  # e.g. a worker-service task, startedBy "ecs-svc/..."
            return summary
        task = TaskView.from_ecs(detail)
        if is_gang_task(detail):
            summary.add(self._gangs.on_task(job_id, task))
            return summary
        summary.add(self._settle(job_id, lambda job, spec, now: decide_task(job, spec, task, now=now), task))
        return summary

    # -- scheduled reconcile ---------------------------------------------------------------------

    def reconcile(self) -> Summary:
        """Catch what events missed: stopped or vanished tasks, timeouts, lost retry messages."""
        summary = Summary()
        store, now = self._ports.store, self._ports.clock()
        jobs = [
            job
            for state in (JobState.DISPATCHED, JobState.RUNNING)
            for job in store.query_state(state, queue="dispatch")
            if job.task_arn
        ]
        gangs = [job.job_id for job in jobs if gang_tasks(job.extra)]
        jobs = [job for job in jobs if not gang_tasks(job.extra)]
        tasks: dict[str, Mapping[str, Any]] = {}
        arns = [str(job.task_arn) for job in jobs]
        for start in range(0, len(arns), DESCRIBE_BATCH):
            tasks.update(self._ports.ecs.describe_tasks(arns[start : start + DESCRIBE_BATCH]))
        for job in jobs:
            described = tasks.get(str(job.task_arn))
            view = TaskView.from_ecs(described) if described is not None else None
            summary.add(self._settle(job.job_id, _reconcile_decider(view), view, first=job))
        for job in store.query_state(JobState.RETRYING, updated_before=stale_retry_cutoff(now), queue="dispatch"):
            self._resend(job, delay_seconds=0)
            with contextlib.suppress(JobStateConflict):
                store.annotate(
                    job.job_id,
                    expected_states=JobState.RETRYING,
                    expected_attempt=job.attempt,
                    now=now,
                    reason=f"{job.reason or 'retrying'} (dispatch message re-sent by reconcile)",
                )
            summary.add("RetryResent")
        for name, count in self._gangs.reconcile(gangs, known=arns).items():
            summary.counts[name] = summary.counts.get(name, 0) + count
        for name, count in housekeeping(store, now).items():
            summary.counts[name] = summary.counts.get(name, 0) + count
        return summary

    # -- applying decisions ----------------------------------------------------------------------

    def _settle(
        self,
        job_id: str,
        decide: Callable[[JobRecord, JobSpec, datetime], Action],
        task: TaskView | None,
        *,
        first: JobRecord | None = None,
    ) -> str:
        """Decide and apply; if a conditional write loses a race, re-read the job and decide again."""
        job = first
        for _ in range(MAX_CONFLICT_RETRIES):
            if job is None:
                job = self._ports.store.get(job_id)
            if job is None or job.spec is None:
                return "UnknownJob"
            try:
                spec = parse_job_spec(job.spec)
            except JobSpecInvalid as exc:  # a record this code did not write: leave it alone, loudly
                logger.error("job record has an invalid spec", extra={"job_id": job_id, "error": str(exc)})
                return "InvalidRecord"
            action = decide(job, spec, self._ports.clock())
            if first is not None and not isinstance(action, Ignore):
                # `first` came from the (eventually consistent) GSI: confirm with a consistent read first.
                first = job = None
                continue
            try:
                return self._apply(job, spec, action, task)
            except JobStateConflict as conflict:
                logger.info("lost a race, re-reading the job", extra={"job_id": job_id, "conflict": str(conflict)})
                job = None
        return "ConflictGaveUp"

    def _apply(
        self,
        job: JobRecord,
        spec: JobSpec,
        action: Action,
        task: TaskView | None,
        ranks: Sequence[TaskView | None] | None = None,
    ) -> str:
        """Record `action`; `ranks`: a gang's rank tasks of this attempt, each billed for its own run time."""
        store, now = self._ports.store, self._ports.clock()
        arn = job.task_arn
        log = {"job_id": job.job_id, "attempt": job.attempt, "task_arn": arn}
        if isinstance(action, Ignore):
            logger.debug("ignored", extra={**log, "reason": action.reason})
            return "Ignored"
        if isinstance(action, MarkRunning):
            store.transition(
                job.job_id,
                JobState.RUNNING,
                expected_states=JobState.DISPATCHED,
                expected_attempt=job.attempt,
                expected_task_arn=arn,
                now=now,
                started_at=action.started_at,
            )
            logger.info("running", extra=log)
            return "JobsRunning"
        if isinstance(action, StopForTimeout):
            # StopTask first: if we die before the FAILED write, the next pass stops (no-op) and fails it again.
            assert arn is not None
            self._ports.ecs.stop_task(arn, action.reason)
            ended = store.transition(
                job.job_id,
                JobState.FAILED,
                expected_states=job.state,
                expected_attempt=job.attempt,
                expected_task_arn=arn,
                now=now,
                reason=action.reason,
                **self._attempt_fields(job, spec, task, ranks),
            )
            after_terminal(store, ended, now)
            logger.warning("timed out", extra={**log, "reason": action.reason})
            return "JobsTimedOut"
        if isinstance(action, Finish):
            ended = store.transition(
                job.job_id,
                action.state,
                expected_states=job.state,
                expected_attempt=job.attempt,
                expected_task_arn=arn,
                now=now,
                reason=action.reason,
                exit_code=action.exit_code,
                **({"stopped_reason": task.stopped_reason} if task and task.stopped_reason else {}),
                **self._attempt_fields(job, spec, task, ranks),
            )
            after_terminal(store, ended, now)
            logger.info("finished", extra={**log, "state": action.state, "reason": action.reason})
            return {
                JobState.SUCCEEDED: "JobsSucceeded",
                JobState.FAILED: "JobsFailed",
                JobState.CANCELLED: "JobsCancelled",
            }.get(action.state, "JobsFinished")
        if isinstance(action, Retry):
            updated = store.transition(
                job.job_id,
                JobState.RETRYING,
                expected_states=job.state,
                expected_attempt=job.attempt,
                expected_task_arn=arn,
                now=now,
                reason=action.reason,
                attempt=action.next_attempt,
                failures=action.failures,
                interruptions=action.interruptions,
                prefer_on_demand=action.prefer_on_demand or None,
                exit_code=action.exit_code,
                **({"stopped_reason": task.stopped_reason} if task and task.stopped_reason else {}),
                **self._attempt_fields(job, spec, task, ranks),
            )
            self._resend(updated, delay_seconds=action.delay_seconds)
            logger.info("retrying", extra={**log, "reason": action.reason})
            return "JobsRetried" if action.interruptions == job.interruptions else "JobsInterrupted"
        assert isinstance(action, ResendRetry)
        self._resend(job, delay_seconds=0)
        return "RetryResent"

    def _attempt_fields(
        self, job: JobRecord, spec: JobSpec, task: TaskView | None, ranks: Sequence[TaskView | None] | None
    ) -> dict[str, Any]:
        return attempt_fields(job, spec, task, now=self._ports.clock(), prices=self._settings.prices, ranks=ranks)

    def _resend(self, job: JobRecord, *, delay_seconds: int) -> None:
        assert job.spec is not None
        self._ports.queues.send(
            self._settings.dispatch_queue_url,
            job.spec,
            dispatch_attributes(attempt=job.attempt, prefer_on_demand=bool(job.extra.get("prefer_on_demand"))),
            delay_seconds=delay_seconds,
        )


def _reconcile_decider(view: TaskView | None) -> Callable[[JobRecord, JobSpec, datetime], Action]:
    def decide(job: JobRecord, spec: JobSpec, now: datetime) -> Action:
        return decide_reconcile(job, spec, view, now=now)

    return decide
