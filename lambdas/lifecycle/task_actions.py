"""Records what ECS task events decide (lifecycle.task_decisions, lifecycle.gang_decisions) in the jobs table, ECS
and the dispatch queue: one applier for dedicated tasks and gangs alike.

Every write is conditional on the job's state, attempt and current task (a gang's rank 0): a duplicate or late
event loses the race (JobStateConflict) and is decided again on the record as it is now. Each terminal write is
followed by the finished hook (lifecycle.finished), once, by the writer whose transition won.

Ordering for a retry: the RETRYING transition (attempt + 1) is written first, then the dispatch message is
sent. If the send fails or the Lambda dies in between, the event is retried by EventBridge (async invoke)
and the duplicate STOPPED event for a RETRYING job re-sends the message; the reconcile pass also re-sends
for RETRYING jobs left untouched. The submitter is idempotent on (job, attempt), so extra copies are harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from jobs.cost import Rate
from jobs.errors import JobSpecInvalid, JobStateConflict
from jobs.jobspec import JobSpec, parse_job_spec
from jobs.messages import dispatch_attributes
from jobs.record import JobRecord
from jobs.states import JobState
from lifecycle.attempt_usage import attempt_fields
from lifecycle.finished import job_finished
from lifecycle.outcomes import Finish
from lifecycle.ports import Clock, EcsPort, JobStore, QueuePort
from lifecycle.task_decisions import Action, Ignore, MarkRunning, ResendRetry, StopForTimeout, TaskView

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 3
DESCRIBE_BATCH = 100
"""DescribeTasks takes up to 100 task ARNs per call."""
FINISHED_METRICS = {
    JobState.SUCCEEDED: "JobsSucceeded",
    JobState.FAILED: "JobsFailed",
    JobState.CANCELLED: "JobsCancelled",
}

Decide = Callable[[JobRecord, JobSpec, datetime], Action]
"""Decides the action for a job (its record, its spec, now)."""


def describe_all(ecs: EcsPort, task_arns: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    """Task ARN -> DescribeTasks item for the tasks ECS still knows, DESCRIBE_BATCH ARNs per call (none: no call)."""
    described: dict[str, Mapping[str, Any]] = {}
    for start in range(0, len(task_arns), DESCRIBE_BATCH):
        described.update(ecs.describe_tasks(task_arns[start : start + DESCRIBE_BATCH]))
    return described


def spec_of(job_id: str, job: JobRecord | None) -> JobSpec | str:
    """The job's spec, or the metric name of why the job cannot be decided ("UnknownJob"; "InvalidRecord": a record
    this code did not write, left alone, loudly)."""
    if job is None or job.spec is None:
        return "UnknownJob"
    try:
        return parse_job_spec(job.spec)
    except JobSpecInvalid as exc:
        log.error("job record has an invalid spec", extra={"job_id": job_id, "error": str(exc)})
        return "InvalidRecord"


class TaskActions:
    """Applies actions to jobs; `store`, `ecs` and `clock` are shared with the gang applier (lifecycle.gang_events)."""

    def __init__(
        self,
        *,
        store: JobStore,
        ecs: EcsPort,
        queues: QueuePort,
        clock: Clock,
        dispatch_queue_url: str,
        prices: Mapping[str, Rate] | None,
    ) -> None:
        self.store = store
        self.ecs = ecs
        self.clock = clock
        self._queues = queues
        self._dispatch_queue_url = dispatch_queue_url
        self._prices = prices

    def settle(self, job_id: str, decide: Decide, task: TaskView | None, *, first: JobRecord | None = None) -> str:
        """Decide and apply for a dedicated task's job; if a conditional write loses a race, re-read the job and
        decide again. `first`: the job as a (eventually consistent) GSI query saw it. Returns the metric name."""
        job = first
        for _ in range(MAX_CONFLICT_RETRIES):
            if job is None:
                job = self.store.get(job_id)
            spec = spec_of(job_id, job)
            if isinstance(spec, str):
                return spec
            assert job is not None
            action = decide(job, spec, self.clock())
            if first is not None and not isinstance(action, Ignore):
                # `first` came from the (eventually consistent) GSI: confirm with a consistent read first.
                first = job = None
                continue
            try:
                return self.apply(job, spec, action, task)
            except JobStateConflict as conflict:
                log.info("lost a race, re-reading the job", extra={"job_id": job_id, "conflict": str(conflict)})
                job = None
        return "ConflictGaveUp"

    def apply(
        self,
        job: JobRecord,
        spec: JobSpec,
        action: Action,
        task: TaskView | None,
        ranks: Sequence[TaskView | None] | None = None,
    ) -> str:
        """Record `action` and return its metric name; raises JobStateConflict. `task`: the task (a gang's rank)
        whose stop decided the action, if any; `ranks`: a gang's rank tasks of this attempt, each billed for its
        own run time."""
        store, now = self.store, self.clock()
        arn = job.task_arn
        context = {"job_id": job.job_id, "attempt": job.attempt, "task_arn": arn}
        if isinstance(action, Ignore):
            log.debug("ignored", extra={**context, "reason": action.reason})
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
            log.info("running", extra=context)
            return "JobsRunning"
        if isinstance(action, ResendRetry):
            self.resend(job, delay_seconds=0)
            return "RetryResent"
        usage: dict[str, Any] = attempt_fields(job, spec, task, now=now, prices=self._prices, ranks=ranks)
        stopped = {"stopped_reason": task.stopped_reason} if task and task.stopped_reason else {}
        if isinstance(action, StopForTimeout):
            # StopTask first: if we die before the FAILED write, the next pass stops (no-op) and fails it again.
            assert arn is not None
            self.ecs.stop_task(arn, action.reason)
            ended = store.transition(
                job.job_id,
                JobState.FAILED,
                expected_states=job.state,
                expected_attempt=job.attempt,
                expected_task_arn=arn,
                now=now,
                reason=action.reason,
                **usage,
            )
            job_finished(store, ended, now)
            log.warning("timed out", extra={**context, "reason": action.reason})
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
                **stopped,
                **usage,
            )
            job_finished(store, ended, now)
            log.info("finished", extra={**context, "state": action.state, "reason": action.reason})
            return FINISHED_METRICS.get(action.state, "JobsFinished")
        # RETRYING (attempt + 1) first, then its dispatch message (see the module docstring)
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
            **stopped,
            **usage,
        )
        self.resend(updated, delay_seconds=action.delay_seconds)
        log.info("retrying", extra={**context, "reason": action.reason})
        return "JobsRetried" if action.interruptions == job.interruptions else "JobsInterrupted"

    def resend(self, job: JobRecord, *, delay_seconds: int) -> None:
        """(Re)send the job's dispatch message for its current attempt (the submitter is idempotent on it)."""
        assert job.spec is not None
        self._queues.send(
            self._dispatch_queue_url,
            job.spec,
            dispatch_attributes(attempt=job.attempt, prefer_on_demand=bool(job.extra.get("prefer_on_demand"))),
            delay_seconds=delay_seconds,
        )
