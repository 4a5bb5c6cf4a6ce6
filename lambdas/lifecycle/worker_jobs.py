"""A worker-queue job's lifecycle, as a worker lives it: take a delivered job, keep its lease while it runs,
record how its attempt ended. The worker (worker/service.py) keeps the queue, the process and the task's
scale-in protection; every job state it needs written is written here.

- Take (`take`): the record is created if absent, then moved SUBMITTED/RETRYING -> RUNNING (RETRYING starts
  attempt + 1). A job RUNNING elsewhere with a fresh lease is a duplicate delivery. A RUNNING job whose lease
  (``updated_at``, renewed by every heartbeat) went stale lost its worker: that is an interruption, and the job
  is taken over (or fails after too many). A finished job's message is a duplicate; a job whose cancel was
  requested ends CANCELLED before it starts.
- Run (`renew_lease`): every heartbeat renews the lease, and sees a cancel request or a lost job.
- End (`after_attempt`, `record_end`): the one retry decision (lifecycle.outcomes) in the worker's words, with
  the worker's base delay and no on-demand preference (the worker service's capacity strategy decides).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from contracts import WORKER_QUEUE
from jobs.errors import JobStateConflict
from jobs.jobspec import JobSpec
from jobs.record import JobRecord, clip_reason
from jobs.retry_rules import Stop
from jobs.states import ACTIVE, JobState
from jobs.timeutil import parse_iso
from lifecycle.cancel import cancel_waiting
from lifecycle.finished import job_finished
from lifecycle.outcomes import Finish, Retry, Wording, after_interruption, after_stop
from lifecycle.ports import Clock, JobStore

log = logging.getLogger(__name__)

WORKER_OOM = "the job ran out of the worker's memory; submit it with dedicated: true and a larger `memory`"
MAX_TAKE_TRIES = 5
"""Conditional writes lost in a row before a delivery is left for later (the job keeps changing)."""

WORKER = Wording(
    exit_rule="attempt {attempt} failed with {what}; {why}",
    no_attempts_left="{what}; gave up after {count} failed attempt(s) (max_attempts={max_attempts})",
    retrying="attempt {attempt} failed with {what}; retrying in {delay} s ({count} of max_attempts={max_attempts} "
    "failures)",
    too_many_interruptions="{what}; gave up after {limit} interruptions",
    interrupted="{what}; requeued at once (interruption {count} of {limit})",
)
"""The worker's reason texts."""
TAKEN_OVER = replace(WORKER, interrupted="{what}; taken over by another worker")
"""A lost worker's job, taken over by the worker that received its message again."""


class Outcome(enum.StrEnum):
    """How a job's process ended (worker/process.py supervises it)."""

    EXITED = "exited"  # the command ended by itself (exit code tells success or failure)
    TIMED_OUT = "timed_out"  # killed after timeout_seconds
    INTERRUPTED = "interrupted"  # the worker is shutting down (SIGTERM): checkpoint and requeue
    CANCELLED = "cancelled"  # a user asked to cancel the job
    ABANDONED = "abandoned"  # the worker lost the job to another worker (its lease was taken over)
    NOT_STARTED = "not_started"  # the command could not be started (e.g. program not found)


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    exit_code: int | None
    detail: str = ""


class Delivery(enum.StrEnum):
    """What the worker does with the message it took a job from."""

    RUN = "run"  # the job is RUNNING for this worker
    DROP = "drop"  # the job has ended (maybe just now): delete the message
    HIDE = "hide"  # the job runs elsewhere: hide the message for another visibility period
    LEAVE = "leave"  # the job keeps changing: leave the message to its visibility timeout


@dataclass(frozen=True)
class Taken:
    delivery: Delivery
    job: JobRecord | None = None
    """The RUNNING record to run (Delivery.RUN)."""


# --- decisions (pure) ---------------------------------------------------------------------------------------------


def lease_stale(job: JobRecord, now: datetime, stale_after_seconds: int) -> bool:
    """A RUNNING worker job whose lease was not renewed for `stale_after_seconds` lost its worker."""
    if job.state != JobState.RUNNING or job.queue != WORKER_QUEUE:
        return False
    return not job.updated_at or now - parse_iso(job.updated_at) > timedelta(seconds=stale_after_seconds)


def lost_worker(job: JobRecord) -> Finish | Retry:
    """A job whose worker was lost: an interruption."""
    what = f"worker lost: no heartbeat since {job.updated_at}"
    return after_interruption(job, what, prefer_on_demand=False, wording=TAKEN_OVER)


def next_attempt(job: JobRecord) -> tuple[int, str | None]:
    """The attempt a waiting job starts now, and the reason it starts with (a retried job says why)."""
    if job.state != JobState.RETRYING:
        return job.attempt, None
    attempt = job.attempt + 1
    return attempt, job.reason and clip_reason(f"attempt {attempt} after: {job.reason}")


def after_attempt(
    job: JobRecord, spec: JobSpec, result: Result, *, stop_reason: str, retry_delay_seconds: int
) -> Finish | Retry | None:
    """How the job goes on after its process ended (None: abandoned, the job is no longer this worker's).
    `stop_reason`: why the worker is stopping, when it is."""
    code, detail = result.exit_code, result.detail
    if result.outcome == Outcome.ABANDONED:
        return None
    if code == 0:
        return Finish(JobState.SUCCEEDED, None, 0)
    if result.outcome == Outcome.CANCELLED:
        return Finish(JobState.CANCELLED, f"cancelled on request ({detail})", code)
    if result.outcome == Outcome.INTERRUPTED:
        what = (
            f"interrupted: worker {stop_reason or 'stopping'} (Spot interruption, scale-in or deploy); "
            f"the job was asked to checkpoint ({detail})"
        )
        return replace(after_interruption(job, what, prefer_on_demand=False, wording=WORKER), exit_code=code)
    if result.outcome == Outcome.TIMED_OUT:
        return Finish(
            JobState.FAILED, f"timed out after timeout_seconds={spec.timeout_seconds} ({detail}); not retried", code
        )
    if result.outcome == Outcome.NOT_STARTED:
        return Finish(JobState.FAILED, f"{detail}; not retried", code)
    stop = Stop(code, None, detail)
    return after_stop(
        job, spec, stop, detail, oom_advice=WORKER_OOM, base_delay_seconds=retry_delay_seconds, wording=WORKER
    )


# --- writes -------------------------------------------------------------------------------------------------------


def take(
    store: JobStore,
    spec: JobSpec,
    *,
    attempt: int,
    clock: Clock,
    task_arn: str | None,
    lease_stale_seconds: int,
    emit: Callable[[str], None] | None = None,
) -> Taken:
    """Take the job of a delivered message (`spec` has its job id; `attempt`: the message's). `emit`: where the
    metric line of a job that ends here goes (lifecycle.finished)."""
    job_id = str(spec.job_id)
    _, job = store.create_if_absent(
        job_id, state=JobState.SUBMITTED, attempt=attempt, now=clock(), spec=spec.to_json(), queue=WORKER_QUEUE
    )
    for _ in range(MAX_TAKE_TRIES):
        try:
            return _take(store, job, clock(), task_arn=task_arn, lease_stale_seconds=lease_stale_seconds, emit=emit)
        except JobStateConflict as conflict:
            log.info("job %s changed meanwhile (%s); re-reading", job_id, conflict)
            current = conflict.current or store.get(job_id)
            if current is None:
                return Taken(Delivery.LEAVE)
            job = current
    log.warning("job %s keeps changing; leaving its message for later", job_id)
    return Taken(Delivery.LEAVE)


def _take(
    store: JobStore,
    job: JobRecord,
    now: datetime,
    *,
    task_arn: str | None,
    lease_stale_seconds: int,
    emit: Callable[[str], None] | None,
) -> Taken:
    if job.terminal:
        log.info("job %s is already %s: its message is a duplicate", job.job_id, job.state)
        return Taken(Delivery.DROP)
    if job.state in ACTIVE:
        if not lease_stale(job, now, lease_stale_seconds):
            log.info("job %s is %s elsewhere: leaving this duplicate delivery alone", job.job_id, job.state)
            return Taken(Delivery.HIDE)
        job = _record(store, job, lost_worker(job), now, emit=emit)
        log.warning("job %s attempt %d: %s", job.job_id, job.attempt, job.reason)
        if job.terminal:
            return Taken(Delivery.DROP)
    if job.cancel_requested:
        cancel_waiting(store, job, now, reason="cancelled before it started", emit=emit)
        return Taken(Delivery.DROP)
    attempt, reason = next_attempt(job)
    running = store.transition(
        job.job_id,
        JobState.RUNNING,
        expected_states=job.state,
        expected_attempt=job.attempt,
        now=now,
        reason=reason,
        attempt=attempt,
        task_arn=task_arn,
        queue=WORKER_QUEUE,
        exit_code=None,
    )
    return Taken(Delivery.RUN, running)


def renew_lease(store: JobStore, job: JobRecord, now: datetime) -> JobRecord:
    """Renew the lease of the RUNNING attempt `job` (its `updated_at`); returns the record as it is now (a cancel
    request shows there). Raises JobStateConflict when the attempt is no longer running: another worker took it
    over, or it ended."""
    return store.annotate(
        job.job_id, expected_states=JobState.RUNNING, expected_attempt=job.attempt, now=now, reason=job.reason
    )


def record_end(
    store: JobStore,
    job: JobRecord,
    decision: Finish | Retry,
    now: datetime,
    *,
    emit: Callable[[str], None] | None = None,
) -> JobRecord | None:
    """Record the end of the RUNNING attempt `job` as `decision` says; None when the attempt is no longer this
    worker's (the record changed meanwhile: logged, left alone)."""
    try:
        return _record(store, job, decision, now, emit=emit)
    except JobStateConflict as conflict:
        log.error("job %s attempt %d: could not record %s (%s)", job.job_id, job.attempt, _state(decision), conflict)
        return None


def _state(decision: Finish | Retry) -> JobState:
    return decision.state if isinstance(decision, Finish) else JobState.RETRYING


def _record(
    store: JobStore,
    job: JobRecord,
    decision: Finish | Retry,
    now: datetime,
    *,
    emit: Callable[[str], None] | None,
) -> JobRecord:
    """The RUNNING attempt `job` ends as `decision` says (the next attempt starts when a worker takes it)."""
    counts: dict[str, Any] = {"failures": decision.failures, "interruptions": decision.interruptions}
    ended = store.transition(
        job.job_id,
        _state(decision),
        expected_states=JobState.RUNNING,
        expected_attempt=job.attempt,
        now=now,
        reason=decision.reason and clip_reason(decision.reason),
        exit_code=decision.exit_code,
        **{name: count for name, count in counts.items() if count is not None},
    )
    job_finished(store, ended, now, emit=emit)
    return ended
