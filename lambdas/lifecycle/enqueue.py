"""A client that enqueues jobs itself (trainctl): the record before the message, its end when the message cannot
be sent, a note when a dead-lettered message is sent back.

The record comes first so a job id is used once (a second submission finds it and is refused) and the job is
visible at once; the consumer that receives the message then finds the record SUBMITTED and takes it from there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from jobs.children import size_of
from jobs.jobspec import JobSpec
from jobs.record import JobRecord, clip_reason
from jobs.states import JobState
from lifecycle.finished import job_finished
from lifecycle.parents import KIND
from lifecycle.ports import JobStore


def parent_fields(spec: JobSpec) -> dict[str, Any]:
    """Record fields of an array job or sweep recorded before its message (the submitter fans it out)."""
    return {"kind": KIND, "array_size": size_of(spec), "enqueued": 0} if size_of(spec) else {}


def record_submitted(store: JobStore, spec: JobSpec, *, queue: str, now: datetime) -> tuple[bool, JobRecord]:
    """Record the job SUBMITTED at attempt 1 unless its id exists: (created, the record as stored now). The
    record's `spec` is the message body to send."""
    return store.create_if_absent(
        str(spec.job_id),
        state=JobState.SUBMITTED,
        attempt=1,
        now=now,
        spec=spec.to_json(),
        queue=queue,
        **parent_fields(spec),
    )


def enqueue_failed(
    store: JobStore, job_id: str, error: str, now: datetime, *, by: str, emit: Callable[[str], None] | None = None
) -> None:
    """The job's message could not be sent: the job ends FAILED, saying why (raises JobStateConflict when it is
    no longer SUBMITTED at attempt 1)."""
    ended = store.transition(
        job_id,
        JobState.FAILED,
        expected_states=JobState.SUBMITTED,
        expected_attempt=1,
        now=now,
        reason=clip_reason(f"{by} could not enqueue it: {error}"),
    )
    job_finished(store, ended, now, emit=emit)


def note_redriven(store: JobStore, record: JobRecord, now: datetime, *, by: str) -> JobRecord:
    """Note on a job's record that its dead-lettered message was sent back to its queue (raises JobStateConflict
    when the job moved on since `record` was read)."""
    return store.annotate(
        record.job_id,
        expected_states=record.state,
        expected_attempt=record.attempt,
        now=now,
        reason=f"redriven from the DLQ by {by}",
    )
