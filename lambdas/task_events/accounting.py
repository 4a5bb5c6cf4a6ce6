"""What task events add for issue-8 features: per-attempt usage and per-job cost, parents of sweeps, max_wait.

- `attempt_fields`: the job-record fields written with the transition that ends an attempt (usage, and the
  job's cost so far), so a duplicate event can never count an attempt twice.
- `after_terminal`: counts a child's end on its parent and prints one EMF metric line per finished job.
- `housekeeping` (reconcile pass): fails jobs past ``max_wait`` (action FAIL) that never started, and settles
  sweep parents whose last child's count was lost (RUNNING ones, and SUBMITTED ones cancelled during fan-out).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from aws.job_store import DynamoJobStore
from jobs import waiting
from jobs.cost import Rate, attempt_usage, record_fields
from jobs.errors import JobSpecInvalid, JobStateConflict
from jobs.jobspec import JobSpec, parse_job_spec
from jobs.record import JobRecord
from jobs.states import JobState
from jobs.timeutil import iso, parse_iso
from lifecycle import parents as arrays
from lifecycle.finished import job_finished
from task_events.logic import INTERRUPTION_STOP_CODES, TaskView

PARENT_SETTLE_SECONDS = 600
"""A RUNNING (or cancelled SUBMITTED) sweep parent untouched this long is re-checked against its children by the
reconcile pass."""
MAX_WAIT_CLAIM = "max-wait"


def attempt_fields(
    job: JobRecord,
    spec: JobSpec,
    task: TaskView | None,
    *,
    now: datetime,
    prices: Mapping[str, Rate] | None,
    ranks: Sequence[TaskView | None] | None = None,
) -> dict[str, object]:
    """`usage` with this attempt appended, and the job's cost over all its attempts (jobs.cost). `ranks`: a
    gang's rank tasks of this attempt (`task` is then the rank that decided the end, if any)."""
    previous = job.extra.get("usage")
    if ranks is not None:
        gang = _gang_usage(job, spec, task, ranks, now=now)
        return record_fields(previous if isinstance(previous, list) else [], gang, prices)
    started = task.started_at if task and task.started_at else None
    if started is None and _started_this_attempt(job):  # e.g. a lost task: the start the job recorded
        started = job.started_at
    stopped = parse_iso(task.stopped_at) if task and task.stopped_at else now
    usage = attempt_usage(
        attempt=job.attempt,
        cpu=spec.cpu * spec.nodes,
        memory=spec.memory * spec.nodes,
        provider=(task.capacity_provider if task else None) or job.capacity_provider,
        started=parse_iso(started) if started else None,
        stopped=stopped,
        interrupted=bool(task and task.stop_code in INTERRUPTION_STOP_CODES),
    )
    return record_fields(previous if isinstance(previous, list) else [], usage, prices)


def _gang_usage(
    job: JobRecord, spec: JobSpec, cause: TaskView | None, ranks: Sequence[TaskView | None], *, now: datetime
) -> dict[str, Any]:
    """A gang attempt: each rank task billed from its own start to its own stop (now if still running, 60 s
    minimum, 0 if it never started), at the attempt's provider and the job's per-task size. `seconds` is the
    ranks' billed seconds summed (task-seconds), `tasks` their number. A rank DescribeTasks no longer finds is
    billed from the job's recorded start, if it started this attempt."""
    fallback = job.started_at if _started_this_attempt(job) else None
    provider = next((v.capacity_provider for v in (cause, *ranks) if v and v.capacity_provider), None)
    provider = provider or job.capacity_provider
    seconds = 0
    for view in ranks:
        started = (view.started_at if view is not None else fallback) or None
        stopped = parse_iso(view.stopped_at) if view is not None and view.stopped_at else now
        one = attempt_usage(
            attempt=job.attempt,
            cpu=spec.cpu,
            memory=spec.memory,
            provider=provider,
            started=parse_iso(started) if started else None,
            stopped=stopped,
            interrupted=False,
        )
        seconds += int(one["seconds"])
    return {
        "attempt": job.attempt,
        "capacity_provider": provider or "unknown",
        "seconds": seconds,
        "tasks": len(ranks),
        "vcpu_seconds": round(spec.cpu / 1024 * seconds, 3),
        "gb_seconds": round(spec.memory / 1024 * seconds, 3),
        "interrupted": bool(cause and cause.stop_code in INTERRUPTION_STOP_CODES),
    }


def _started_this_attempt(job: JobRecord) -> bool:
    """Whether the job's last RUNNING entry belongs to its current attempt (after its last RETRYING)."""
    for entry in reversed(job.history):
        if entry.get("to") == JobState.RUNNING:
            return True
        if entry.get("to") == JobState.RETRYING:
            return False
    return False


def after_terminal(store: DynamoJobStore, record: JobRecord, now: datetime) -> None:
    """Emit the job's metric and count the end on a sweep's parent (lifecycle.finished, shared by every path)."""
    job_finished(store, record, now)


def housekeeping(store: DynamoJobStore, now: datetime) -> dict[str, int]:
    """The reconcile pass's extra duties; returns counts by metric name."""
    counts = {"JobsMaxWaitFailed": 0, "ParentsSettled": 0}
    submitted = list(store.query_state(JobState.SUBMITTED))
    for job in [*submitted, *store.query_state(JobState.RETRYING)]:
        if not job.started_at and job.spec and _fail_past_max_wait(store, job, now):
            counts["JobsMaxWaitFailed"] += 1
    stale = iso(now - timedelta(seconds=PARENT_SETTLE_SECONDS))
    parents = [
        *store.query_state(JobState.RUNNING, updated_before=stale),
        *(job for job in submitted if job.updated_at and job.updated_at < stale),
    ]
    for parent in parents:  # a SUBMITTED one only when cancelled during its fan-out (no more fan-out runs)
        if arrays.is_parent(parent) and (parent.state == JobState.RUNNING or parent.cancel_requested):
            settled = arrays.settle(store, parent, now)
            if settled.terminal:
                counts["ParentsSettled"] += 1
            else:  # touch it, so it is looked at again in PARENT_SETTLE_SECONDS, not every pass
                with contextlib.suppress(JobStateConflict):
                    store.annotate(
                        parent.job_id,
                        expected_states=parent.state,
                        expected_attempt=parent.attempt,
                        now=now,
                        reason=parent.reason,
                    )
    return {k: v for k, v in counts.items() if v}


def _fail_past_max_wait(store: DynamoJobStore, job: JobRecord, now: datetime) -> bool:
    """Take the launch claim (so no launch can start meanwhile), then FAIL the job with its waiting reason."""
    try:
        spec = parse_job_spec(str(job.spec))
    except JobSpecInvalid:
        return False
    if arrays.is_parent(job) or waiting.expired(spec, job, now) != waiting.FAIL or job.launch_claim:
        return False
    try:
        claimed = store.claim_launch(job.job_id, state=job.state, attempt=job.attempt, claim=MAX_WAIT_CLAIM, now=now)
        failed = store.transition(
            job.job_id,
            JobState.FAILED,
            expected_states=claimed.state,
            expected_attempt=claimed.attempt,
            expected_claim=MAX_WAIT_CLAIM,
            now=now,
            reason=waiting.expiry_reason(spec, job),
            launch_claim=None,
            launch_claimed_at=None,
        )
    except JobStateConflict:
        return False  # it started, was claimed or cancelled meanwhile
    after_terminal(store, failed, now)
    return True
