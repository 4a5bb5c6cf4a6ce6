"""What to do with a dispatch-queue message for a job that already has a record, and the launch lease (pure).

No I/O, no clock: the record, the time and the room under the concurrency cap come in as arguments; the
dispatch path (lifecycle.submit, lifecycle.launch) performs the action chosen here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from jobs import waiting
from jobs.jobspec import JobSpec
from jobs.record import JobRecord
from jobs.states import ACTIVE, WAITING
from jobs.timeutil import parse_iso

LAUNCH_LEASE_SECONDS = 300
"""How long a launch claim protects (job, attempt) before another consumer may recover it. Must exceed the
submitter Lambda's timeout, so a live invocation never loses its claim."""
BASE_DEFER_SECONDS = 10
MAX_DEFER_SECONDS = 900
"""SQS DelaySeconds maximum."""


class Outcome(StrEnum):
    """What happened to one dispatch message (also the submitter's metric name)."""

    DISPATCHED = "JobsDispatched"
    REJECTED = "JobsRejected"
    DEFERRED = "JobsDeferred"
    SKIPPED = "DuplicatesSkipped"
    CANCELLED = "JobsCancelled"
    LAUNCH_ERROR = "LaunchErrors"
    EXPIRED = "JobsMaxWaitFailed"
    FANNED_OUT = "ArrayChildrenEnqueued"
    FAN_OUT_CONTINUED = "ArrayFanOutContinued"


# --- decisions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skip:
    """Acknowledge the message without doing anything (duplicate, stale or finished job)."""

    reason: str


@dataclass(frozen=True)
class Defer:
    """Put the message back on the queue with a delay; the job stays waiting with `reason`."""

    reason: str


@dataclass(frozen=True)
class Launch:
    """Claim the job and run its task. `takeover` is the expired claim being recovered, if any."""

    takeover: str | None = None


@dataclass(frozen=True)
class CancelWaiting:
    """The job was cancelled before it got a task: record CANCELLED."""

    reason: str


@dataclass(frozen=True)
class Expire:
    """The job's max_wait (action FAIL) ran out before it got a task: record FAILED."""

    reason: str


Decision = Skip | Defer | Launch | CancelWaiting | Expire


def claim_expired(job: JobRecord, now: datetime) -> bool:
    if job.launch_claimed_at is None:
        return True
    return parse_iso(job.launch_claimed_at) + timedelta(seconds=LAUNCH_LEASE_SECONDS) <= now


def decide(
    *, job: JobRecord, spec: JobSpec, message_attempt: int, now: datetime, room: bool, room_reason: str
) -> Decision:
    """What to do with a valid message for an existing job record.

    `room` says whether the job's tasks fit under the concurrency cap (`room_reason` says why not).
    """
    if job.state in WAITING and job.launch_claim is None and waiting.expired(spec, job, now) == waiting.FAIL:
        # only a job still waiting with no launch in progress: a DISPATCHED job's task may be starting
        return Expire(waiting.expiry_reason(spec, job))
    if job.terminal:
        return Skip(f"job already {job.state}")
    if message_attempt != job.attempt:
        return Skip(f"message is for attempt {message_attempt}, job is at attempt {job.attempt}")
    if job.state in ACTIVE:
        return Skip(f"attempt {job.attempt} already launched ({job.state}, task {job.task_arn})")
    if job.state not in WAITING:  # pragma: no cover - every state is terminal, active or waiting
        return Skip(f"job in unexpected state {job.state}")
    if job.launch_claim is not None and not claim_expired(job, now):
        # A cancel waits too: the claim holder's record sees cancel_requested and stops the task it launched.
        return Defer(f"launch of attempt {job.attempt} in progress elsewhere (claim {job.launch_claim})")
    if job.cancel_requested:  # with an expired claim, the cancel first stops whatever that launch started
        return CancelWaiting("cancelled before a task was launched")
    if job.launch_claim is not None:
        return Launch(takeover=job.launch_claim)
    if not room:
        return Defer(room_reason)
    return Launch()


def after_lost_claim(current: JobRecord | None, now: datetime) -> Skip | Defer | CancelWaiting:
    """Taking the launch claim failed: the job changed since it was read (`current`, as it is now). A cancel
    that arrived meanwhile is carried out (once no live launch holds the claim); anything else means another
    consumer took the launch."""
    if current is not None and current.cancel_requested and current.state in WAITING:
        if current.launch_claim is not None and not claim_expired(current, now):
            return Defer("cancel waits for the launch in progress elsewhere")
        return CancelWaiting("cancelled before a task was launched")
    return Skip("lost the launch claim to another consumer")


def stop_after_lost_claim(task_arns: tuple[str, ...], current: JobRecord | None, *, gang: bool) -> list[str]:
    """Tasks to stop when recording DISPATCHED found the claim gone (our lease expired, another consumer took
    the job over). None when the record shows our own write landed (a retried update). A single task is
    adopted by the takeover via startedBy / the client token, so it is stopped only when the job has ended
    meanwhile (no takeover will adopt it). A gang's ranks are not adopted (their client tokens name our claim,
    and the takeover may have listed the job's tasks before we started them): all of them are stopped."""
    if current is not None and current.task_arn == task_arns[0]:
        return []
    if gang:
        return list(task_arns)
    return [task_arns[0]] if current is None or current.terminal else []


def backoff_seconds(deferrals: int, job_id: str) -> int:
    """Exponential backoff for a deferred message: 10 s, 20 s, 40 s ... capped at 900 s (SQS's maximum
    DelaySeconds), with up to +25% deterministic jitter from the job id so a burst does not return at once."""
    base = min(MAX_DEFER_SECONDS, BASE_DEFER_SECONDS * (2 ** min(deferrals, 16)))
    spread = int.from_bytes(hashlib.sha256(f"{job_id}:{deferrals}".encode()).digest()[:2], "big") / 65535
    return min(MAX_DEFER_SECONDS, int(base * (1 + 0.25 * spread)))


def deferred_reason(reason: str, delay: int) -> str:
    return f"{reason} (next try in {delay} s)"


def cap_reason(active: int, maximum: int) -> str:
    return f"waiting: concurrency cap reached ({active} of {maximum} training tasks active)"
