"""What ECS says about a job's dedicated task means for the job (pure): the action to record, if any.

Works the same for an EventBridge "ECS Task State Change" event and for a task seen by the reconcile pass
(DescribeTasks returns the same camelCase fields). No I/O, no environment, no clock (lifecycle.task_actions
records the actions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contracts import CONTAINER_NAME
from jobs.ecs import is_capacity_reason
from jobs.jobspec import JobSpec
from jobs.record import JobRecord
from jobs.retry_rules import Stop
from jobs.sizes import memory_advice
from jobs.states import ACTIVE, JobState
from jobs.timeutil import iso, parse_iso
from lifecycle.outcomes import Finish, Retry, after_failure, after_interruption, after_stop

MISSING_GRACE_SECONDS = 300
"""A task DescribeTasks cannot find is only declared lost this long after dispatch (ECS reads are eventually
consistent right after RunTask)."""
STALE_RETRY_SECONDS = 1800
"""A RETRYING dispatch job untouched this long has lost its message (deferrals refresh it at least every
900 s): the reconcile pass sends it again."""

INTERRUPTION_STOP_CODES = frozenset({"SpotInterruption", "TerminationNotice"})
STOPPED = "STOPPED"
RUNNING = "RUNNING"


@dataclass(frozen=True)
class TaskView:
    """The fields of an ECS task (event detail or DescribeTasks item) that decide a job's fate."""

    task_arn: str
    last_status: str
    desired_status: str | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    started_by: str | None = None
    exit_code: int | None = None
    container_reason: str | None = None
    started_at: str | None = None
    stopped_at: str | None = None
    capacity_provider: str | None = None

    @classmethod
    def from_ecs(cls, task: Mapping[str, Any]) -> TaskView:
        trainer = next((c for c in task.get("containers") or [] if c.get("name") == CONTAINER_NAME), None)
        exit_code = trainer.get("exitCode") if trainer else None
        return cls(
            task_arn=str(task["taskArn"]),
            last_status=str(task.get("lastStatus") or ""),
            desired_status=task.get("desiredStatus"),
            stop_code=task.get("stopCode"),
            stopped_reason=task.get("stoppedReason"),
            started_by=task.get("startedBy"),
            exit_code=int(exit_code) if isinstance(exit_code, int | float) else None,
            container_reason=trainer.get("reason") if trainer else None,
            started_at=_timestamp(task.get("startedAt")),
            stopped_at=_timestamp(task.get("stoppedAt")),
            capacity_provider=task.get("capacityProviderName"),
        )


def _timestamp(value: Any) -> str | None:
    """Event timestamps are ISO strings; boto3's DescribeTasks gives datetimes."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return iso(value)
    return iso(parse_iso(str(value)))


# --- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ignore:
    reason: str


@dataclass(frozen=True)
class MarkRunning:
    started_at: str


@dataclass(frozen=True)
class ResendRetry:
    """The job is already RETRYING: (re)send its dispatch message, which is idempotent."""

    reason: str


@dataclass(frozen=True)
class StopForTimeout:
    reason: str


Action = Ignore | MarkRunning | Finish | Retry | ResendRetry | StopForTimeout


def describe_stop(task: TaskView) -> str:
    parts = [f"stopCode {task.stop_code or 'unknown'}"]
    if task.stopped_reason:
        parts.append(f"stoppedReason {task.stopped_reason!r}")
    if task.exit_code is not None:
        parts.append(f"trainer exit code {task.exit_code}")
    elif task.stop_code != "TaskFailedToStart":
        parts.append("no trainer exit code")
    if task.container_reason:
        parts.append(f"container reason {task.container_reason!r}")
    return ", ".join(parts)


def started_at(job: JobRecord) -> datetime | None:
    text = job.started_at or job.dispatched_at
    return parse_iso(text) if text else None


def timed_out(job: JobRecord, spec: JobSpec, at: datetime) -> bool:
    start = started_at(job)
    return start is not None and start + timedelta(seconds=spec.timeout_seconds) < at


def timeout_reason(job: JobRecord, spec: JobSpec) -> str:
    since = job.started_at or job.dispatched_at
    return f"timeout: attempt {job.attempt} ran longer than timeout_seconds={spec.timeout_seconds} (since {since})"


def decide_stopped(job: JobRecord, spec: JobSpec, task: TaskView, *, now: datetime) -> Finish | Retry:
    """The job's current task has stopped: success, failure (retry or not), interruption, cancel, timeout."""
    what = describe_stop(task)
    essential_exit_ok = task.exit_code == 0 and task.stop_code in (None, "EssentialContainerExited")
    if job.cancel_requested:
        if essential_exit_ok:
            return Finish(JobState.SUCCEEDED, None, 0)
        return Finish(JobState.CANCELLED, f"cancelled by user ({what})", task.exit_code)
    if task.stop_code in INTERRUPTION_STOP_CODES:
        return after_interruption(job, f"interrupted ({what})")
    if task.stop_code == "TaskFailedToStart" and (
        is_capacity_reason(task.stopped_reason) or is_capacity_reason(task.container_reason)
    ):
        return after_interruption(job, f"could not start for lack of capacity ({what})")
    if task.stop_code == "UserInitiated":
        stopped = parse_iso(task.stopped_at) if task.stopped_at else now
        if timed_out(job, spec, stopped):
            return Finish(JobState.FAILED, f"{timeout_reason(job, spec)}; {what}", task.exit_code)
        return Finish(JobState.CANCELLED, f"task stopped by a user ({what})", task.exit_code)
    if essential_exit_ok:
        return Finish(JobState.SUCCEEDED, None, 0)
    return after_failed_stop(job, spec, task, what)


def after_failed_stop(job: JobRecord, spec: JobSpec, task: TaskView, what: str) -> Finish | Retry:
    """A task that stopped without success (not interrupted, cancelled or stopped by a user): the retry rules
    decide (lifecycle.outcomes.after_stop). Used for a single task and for the failed rank of a gang alike."""
    reasons = "; ".join(r for r in (task.stopped_reason, task.container_reason) if r) or None
    stop = Stop(task.exit_code, task.stop_code, reasons)
    return after_stop(job, spec, stop, what, oom_advice=memory_advice(spec.cpu, spec.memory))


def decide_task(job: JobRecord, spec: JobSpec, task: TaskView, *, now: datetime) -> Action:
    """React to a task state change. Only the job's current task counts (stale attempts are ignored); the
    state machine only moves forward, so duplicates and out-of-order events cannot undo anything."""
    if job.task_arn != task.task_arn:
        return Ignore(f"event for task {task.task_arn}, job's current task is {job.task_arn}")
    if job.terminal:
        return Ignore(f"job already {job.state}")
    if job.state == JobState.RETRYING:
        if task.last_status == STOPPED:
            return ResendRetry("duplicate STOPPED event for a job already re-submitted")
        return Ignore("late event for the previous attempt's task")
    if job.state not in ACTIVE:
        return Ignore(f"job is {job.state}")
    if task.last_status != STOPPED:
        if task.last_status == RUNNING and job.state == JobState.DISPATCHED:
            return MarkRunning(task.started_at or iso(now))
        return Ignore(f"task {task.last_status} (desired {task.desired_status}); job {job.state}")
    return decide_stopped(job, spec, task, now=now)


def decide_reconcile(job: JobRecord, spec: JobSpec, task: TaskView | None, *, now: datetime) -> Action:
    """One job of the reconcile pass (DISPATCHED / RUNNING). `task` None: DescribeTasks did not find it."""
    if task is not None and task.last_status == STOPPED:
        return decide_task(job, spec, task, now=now)
    if timed_out(job, spec, now):
        return StopForTimeout(timeout_reason(job, spec))
    if task is None:
        dispatched = parse_iso(job.dispatched_at) if job.dispatched_at else None
        if dispatched is not None and dispatched + timedelta(seconds=MISSING_GRACE_SECONDS) > now:
            return Ignore("task not visible yet (just dispatched)")
        return after_failure(
            job, spec, f"task {job.task_arn} not found by DescribeTasks: it stopped and its outcome is unknown", None
        )
    return decide_task(job, spec, task, now=now)


def stale_retry_cutoff(now: datetime) -> str:
    return iso(now - timedelta(seconds=STALE_RETRY_SECONDS))
