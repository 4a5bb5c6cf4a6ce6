"""Rejecting a message: its copy in a DLQ with the reason, the job REJECTED, the finished hook (one path for the
submitter and the worker).

DLQ first, then the REJECTED record: a crash in between re-runs both (a duplicate DLQ message at worst); the
reverse order could lose the DLQ copy. An invalid message for a job that already exists leaves that job alone,
unless it is still SUBMITTED at the same attempt with no launch in progress (e.g. recorded by trainctl or a
sweep's fan-out, then refused by the deployment's rules).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping

from jobs.errors import JobStateConflict
from jobs.jobspec import derive_job_id, guess_job_id
from jobs.messages import JOB_ID, REASON
from jobs.record import JobRecord, clip_reason
from jobs.states import JobState
from lifecycle.finished import job_finished
from lifecycle.ports import Clock, JobStore, QueuePort

log = logging.getLogger(__name__)

MAX_BODY_KEPT = 4096
"""Characters of a rejected body kept on its record (the DLQ holds all of it)."""


def string_attributes(values: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """String message attributes (SQS rejects empty values, so those are left out)."""
    return {k: {"DataType": "String", "StringValue": v} for k, v in values.items() if v}


def reject(
    *,
    store: JobStore,
    queues: QueuePort,
    clock: Clock,
    dlq_url: str | None,
    queue: str,
    message_id: str,
    body: str,
    reason: str,
    attempt: int = 1,
    job_id: str | None = None,
    emit: Callable[[str], None] | None = None,
) -> str:
    """Record why `body` was refused; returns the job id it was recorded under. No `dlq_url` (none configured):
    the record alone keeps the reason. `emit` overrides where the finished job's metric line goes
    (lifecycle.finished)."""
    reason = clip_reason(reason)
    job_id = job_id or guess_job_id(body) or derive_job_id(message_id)
    if dlq_url:
        queues.send(
            dlq_url,
            body or "(empty body)",
            string_attributes({REASON: reason, JOB_ID: job_id, "source_message_id": message_id}),
        )
    now = clock()
    created, job = store.create_if_absent(
        job_id, state=JobState.REJECTED, attempt=attempt, now=now, queue=queue, reason=reason, body=body[:MAX_BODY_KEPT]
    )
    ended: JobRecord | None = job if created else None
    if not created and job.state == JobState.SUBMITTED and job.launch_claim is None and job.attempt == attempt:
        with contextlib.suppress(JobStateConflict):
            ended = store.transition(
                job_id,
                JobState.REJECTED,
                expected_states=job.state,
                expected_attempt=job.attempt,
                now=now,
                reason=reason,
            )
    if ended is None:
        log.warning("invalid message for existing job %s (%s) left the job alone", job_id, job.state)
    else:
        job_finished(store, ended, now, emit=emit)
    return job_id
