"""Cancelling a job: the one path for a job and for the children of an array job or sweep.

A cancel is first a request on the record (``cancel_requested``), which every consumer honours. Then:

- a job still waiting, with no launch in progress, ends CANCELLED here (`cancel_waiting`, then the finished hook:
  its metric line, its count on a parent); a consumer that receives a job whose cancel was requested ends it the
  same way;
- a dedicated job's task is stopped (the task-events Lambda records CANCELLED when it stops);
- a worker-queue job is stopped by its worker at the next heartbeat;
- a launch in progress is stopped by the submitter as soon as its task is recorded.

A parent's cancel reaches each of its children that has not ended, then settles the parent (lifecycle.parents).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from contracts import DISPATCH_QUEUE
from jobs.errors import JobStateConflict
from jobs.record import JobRecord
from jobs.states import ACTIVE, WAITING, JobState
from lifecycle.finished import job_finished
from lifecycle.parents import children, is_parent, settle
from lifecycle.ports import JobStore, TaskStopper


class Step(enum.StrEnum):
    """What a cancel did to one job."""

    CANCELLED = "cancelled"
    """It was still waiting: CANCELLED now."""
    STARTED = "started"
    """It started meanwhile: its consumer sees the request."""
    STOPPING_TASK = "stopping task"
    """Its dedicated task is being stopped."""
    WORKER_STOPS = "worker stops it"
    """It runs with no dedicated task to stop (a worker runs it): stopped at the worker's next heartbeat."""
    LAUNCHING = "launching"
    """A launch is in progress; its task is stopped once recorded."""


@dataclass(frozen=True)
class JobCancel:
    record: JobRecord
    step: Step


@dataclass(frozen=True)
class ParentCancel:
    parent: JobRecord
    """The parent after its cancel (settled when its children allow it)."""
    cancelled: int
    """Children that were still waiting: CANCELLED now."""
    stopping: int
    """Children already running (or launching): their consumers stop them."""


def cancel(
    store: JobStore,
    job_id: str,
    now: datetime,
    *,
    tasks: TaskStopper,
    by: str,
    emit: Callable[[str], None] | None = None,
) -> JobCancel | ParentCancel:
    """Cancel a job on request of `by` (e.g. "trainctl"). Raises JobStateConflict when the job has already ended
    (`current` None: there is no such job). `emit`: where a finished job's metric line goes (lifecycle.finished)."""
    record = store.request_cancel(job_id, now=now)
    if is_parent(record):
        return cancel_children(store, record, now, tasks=tasks, emit=emit)
    return _follow_up(
        store,
        record,
        now,
        tasks=tasks,
        ended=f"cancelled by {by} before it started",
        stop=f"cancelled by {by} (job {job_id})",
        emit=emit,
    )


def cancel_children(
    store: JobStore,
    parent: JobRecord,
    now: datetime,
    *,
    tasks: TaskStopper,
    emit: Callable[[str], None] | None = None,
) -> ParentCancel:
    """Cancel every child of `parent` (whose cancel was requested) that has not ended, then settle the parent."""
    cancelled = stopping = 0
    for child in children(store, parent):
        if child.terminal:
            continue
        with contextlib.suppress(JobStateConflict):  # it ended meanwhile
            step = cancel_with_parent(store, child, parent.job_id, now, tasks=tasks, emit=emit).step
            if step == Step.CANCELLED:
                cancelled += 1
            elif step != Step.STARTED:
                stopping += 1
    settled = settle(store, store.get(parent.job_id) or parent, now)
    return ParentCancel(settled, cancelled, stopping)


def cancel_with_parent(
    store: JobStore,
    child: JobRecord,
    parent_id: str,
    now: datetime,
    *,
    tasks: TaskStopper | None,
    emit: Callable[[str], None] | None = None,
) -> JobCancel:
    """Cancel one child of a cancelled parent. Raises JobStateConflict when the child has already ended.
    `tasks` None leaves a running child's task to its consumer, which sees the request (the fan-out has no ECS)."""
    why = f"cancelled with its parent {parent_id}"
    record = store.request_cancel(child.job_id, now=now, reason=why)
    return _follow_up(store, record, now, tasks=tasks, ended=f"{why} before it started", stop=why, emit=emit)


def _follow_up(
    store: JobStore,
    record: JobRecord,
    now: datetime,
    *,
    tasks: TaskStopper | None,
    ended: str,
    stop: str,
    emit: Callable[[str], None] | None,
) -> JobCancel:
    """After the request: end a waiting job (reason `ended`), or stop a dedicated job's task (reason `stop`)."""
    if record.state in WAITING and record.launch_claim is None:
        try:
            return JobCancel(cancel_waiting(store, record, now, reason=ended, emit=emit), Step.CANCELLED)
        except JobStateConflict as conflict:
            return JobCancel(conflict.current or record, Step.STARTED)
    if record.state not in ACTIVE:
        return JobCancel(record, Step.LAUNCHING)
    if record.queue == DISPATCH_QUEUE and record.task_arn and tasks is not None:
        tasks.stop_task(record.task_arn, stop)
        return JobCancel(record, Step.STOPPING_TASK)
    return JobCancel(record, Step.WORKER_STOPS)


def cancel_waiting(
    store: JobStore, job: JobRecord, now: datetime, *, reason: str, emit: Callable[[str], None] | None = None
) -> JobRecord:
    """A job still waiting (no task, no launch in progress) ends CANCELLED, then the finished hook. Raises
    JobStateConflict when it moved on since `job` was read (e.g. it started)."""
    return end_waiting(store, job, now, state=JobState.CANCELLED, reason=reason, emit=emit)


def end_waiting(
    store: JobStore,
    job: JobRecord,
    now: datetime,
    *,
    state: JobState,
    reason: str,
    expected_claim: str | None = None,
    emit: Callable[[str], None] | None = None,
) -> JobRecord:
    """A job that never got a task ends in `state` (CANCELLED, or FAILED past its max_wait), then the finished
    hook. `expected_claim`: the launch claim it must still hold (NO_CLAIM: none). Raises JobStateConflict when it
    moved on since `job` was read."""
    ended = store.transition(
        job.job_id,
        state,
        expected_states=job.state,
        expected_attempt=job.attempt,
        expected_claim=expected_claim,
        now=now,
        reason=reason,
    )
    job_finished(store, ended, now, emit=emit)
    return ended
