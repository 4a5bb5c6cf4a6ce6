"""What task events add for issue-8 features: per-attempt usage and per-job cost, parents of sweeps, max_wait.

- `attempt_fields`: the job-record fields written with the transition that ends an attempt (usage, and the
  cost when the job ends), so a duplicate event can never count an attempt twice.
- `after_terminal`: counts a child's end on its parent and prints one EMF metric line per finished job.
- `housekeeping` (reconcile pass): fails jobs past ``max_wait`` (action FAIL) that never started, and settles
  sweep parents whose last child's count was lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from common import arrays, waiting
from common.cost import Rate, attempt_usage, emf_line, record_fields
from common.errors import JobSpecInvalid, JobStateConflict
from common.jobspec import JobSpec, parse_job_spec
from common.states import JobState
from common.store import JobRecord, JobStore
from common.timeutil import iso, parse_iso
from task_events.logic import INTERRUPTION_STOP_CODES, TaskView

logger = Logger(child=True)

PARENT_SETTLE_SECONDS = 600
"""A RUNNING sweep parent untouched this long is re-checked against its children by the reconcile pass."""
MAX_WAIT_CLAIM = "max-wait"


def attempt_fields(
    job: JobRecord,
    spec: JobSpec,
    task: TaskView | None,
    *,
    now: datetime,
    prices: Mapping[str, Rate] | None,
    final: bool,
) -> dict[str, object]:
    """`usage` with this attempt appended (and the job's cost when `final`)."""
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
    previous = job.extra.get("usage")
    return record_fields(previous if isinstance(previous, list) else [], usage, prices, final=final)


def _started_this_attempt(job: JobRecord) -> bool:
    """Whether the job's last RUNNING entry belongs to its current attempt (after its last RETRYING)."""
    for entry in reversed(job.history):
        if entry.get("to") == JobState.RUNNING:
            return True
        if entry.get("to") == JobState.RETRYING:
            return False
    return False


def after_terminal(store: JobStore, record: JobRecord, now: datetime) -> None:
    """Count the end on a sweep's parent (the reconcile pass covers a failure here) and emit the job's metric."""
    print(
        emf_line(
            at=now,
            job_id=record.job_id,
            state=record.state.value,
            queue=record.queue,
            cost=record.extra,
            parent_id=record.extra.get("parent_id"),
        ),
        flush=True,
    )
    try:
        arrays.on_child_finished(store, record, now)
    except Exception:
        logger.exception("could not update the parent of a finished child", extra={"job_id": record.job_id})


def housekeeping(store: JobStore, now: datetime) -> dict[str, int]:
    """The reconcile pass's extra duties; returns counts by metric name."""
    counts = {"JobsMaxWaitFailed": 0, "ParentsSettled": 0}
    for state in (JobState.SUBMITTED, JobState.RETRYING):
        for job in store.query_state(state):
            if not job.started_at and job.spec and _fail_past_max_wait(store, job, now):
                counts["JobsMaxWaitFailed"] += 1
    stale = iso(now - timedelta(seconds=PARENT_SETTLE_SECONDS))
    for parent in store.query_state(JobState.RUNNING, updated_before=stale):
        if arrays.is_parent(parent):
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


def _fail_past_max_wait(store: JobStore, job: JobRecord, now: datetime) -> bool:
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
