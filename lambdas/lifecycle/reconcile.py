"""The scheduled reconcile pass: what task events missed, and what no event will ever report.

- dedicated tasks of DISPATCHED / RUNNING jobs, described 100 per call: missed stops, vanished tasks, timeouts,
  missed RUNNING events (lifecycle.task_decisions.decide_reconcile);
- RETRYING jobs untouched for STALE_RETRY_SECONDS have lost their dispatch message: it is sent again;
- every active gang re-decided from DescribeTasks, then orphaned ranks stopped (lifecycle.gang_events);
- `housekeeping`: jobs past ``max_wait`` (action FAIL) that never started are FAILED, and sweep parents whose
  last child's count was lost are settled (RUNNING ones, and SUBMITTED ones cancelled during fan-out).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import datetime, timedelta

from contracts import DISPATCH_QUEUE
from jobs import waiting
from jobs.errors import JobSpecInvalid, JobStateConflict
from jobs.gang import gang_tasks
from jobs.jobspec import JobSpec, parse_job_spec
from jobs.record import JobRecord
from jobs.states import JobState
from jobs.timeutil import iso
from lifecycle import parents
from lifecycle.finished import job_finished
from lifecycle.gang_events import GangEvents
from lifecycle.ports import JobStore
from lifecycle.task_actions import Decide, TaskActions, describe_all
from lifecycle.task_decisions import Action, TaskView, decide_reconcile, stale_retry_cutoff

PARENT_SETTLE_SECONDS = 600
"""A RUNNING (or cancelled SUBMITTED) sweep parent untouched this long is re-checked against its children by the
reconcile pass."""
MAX_WAIT_CLAIM = "max-wait"


def reconcile(actions: TaskActions, gangs: GangEvents) -> Counter[str]:
    """One pass; returns counts by metric name."""
    counts: Counter[str] = Counter()
    store, now = actions.store, actions.clock()
    jobs = [
        job
        for state in (JobState.DISPATCHED, JobState.RUNNING)
        for job in store.query_state(state, queue=DISPATCH_QUEUE)
        if job.task_arn
    ]
    gang_ids = [job.job_id for job in jobs if gang_tasks(job.extra)]
    jobs = [job for job in jobs if not gang_tasks(job.extra)]
    arns = [str(job.task_arn) for job in jobs]
    tasks = describe_all(actions.ecs, arns)
    for job in jobs:
        described = tasks.get(str(job.task_arn))
        view = TaskView.from_ecs(described) if described is not None else None
        counts[actions.settle(job.job_id, _reconcile_decider(view), view, first=job)] += 1
    for job in store.query_state(JobState.RETRYING, updated_before=stale_retry_cutoff(now), queue=DISPATCH_QUEUE):
        actions.resend(job, delay_seconds=0)
        with contextlib.suppress(JobStateConflict):
            store.annotate(
                job.job_id,
                expected_states=JobState.RETRYING,
                expected_attempt=job.attempt,
                now=now,
                reason=f"{job.reason or 'retrying'} (dispatch message re-sent by reconcile)",
            )
        counts["RetryResent"] += 1
    counts.update(gangs.reconcile(gang_ids, known=arns))
    counts.update(housekeeping(store, now))
    return counts


def _reconcile_decider(view: TaskView | None) -> Decide:
    def decide(job: JobRecord, spec: JobSpec, now: datetime) -> Action:
        return decide_reconcile(job, spec, view, now=now)

    return decide


def housekeeping(store: JobStore, now: datetime) -> dict[str, int]:
    """The pass's duties beyond tasks: max_wait expiry and parents left behind; returns counts by metric name."""
    counts = {"JobsMaxWaitFailed": 0, "ParentsSettled": 0}
    submitted = list(store.query_state(JobState.SUBMITTED))
    for job in [*submitted, *store.query_state(JobState.RETRYING)]:
        if not job.started_at and job.spec and _fail_past_max_wait(store, job, now):
            counts["JobsMaxWaitFailed"] += 1
    stale = iso(now - timedelta(seconds=PARENT_SETTLE_SECONDS))
    candidates = [
        *store.query_state(JobState.RUNNING, updated_before=stale),
        *(job for job in submitted if job.updated_at and job.updated_at < stale),
    ]
    for parent in candidates:  # a SUBMITTED one only when cancelled during its fan-out (no more fan-out runs)
        if parents.is_parent(parent) and (parent.state == JobState.RUNNING or parent.cancel_requested):
            settled = parents.settle(store, parent, now)
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
    if parents.is_parent(job) or waiting.expired(spec, job, now) != waiting.FAIL or job.launch_claim:
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
    job_finished(store, failed, now)
    return True
