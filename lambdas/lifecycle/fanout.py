"""Fan-out of an array job or sweep: the parent message becomes N child jobs on the queues (idempotent).

Per parent message: create the parent record (once), then, from the parent's ``enqueued`` mark on, for each
group of 10 children: create each child's record if absent (``<parent>-<index>``, SUBMITTED), SendMessageBatch
their specs to the worker queue (or, for dedicated jobs, the dispatch queue), then move the mark. A redelivered
or crashed fan-out resumes at the mark: no child is created twice, and at most one group is sent twice (the
consumers skip a duplicate by job id). One invocation enqueues at most ``CHUNK`` children, then re-sends the
parent message to continue; the last group moves the parent to RUNNING. A cancel request stops the fan-out
(checked before and after each group, also mid-invocation): the group in flight is cancelled too (its children
may have been created after `trainctl cancel` listed the enqueued ones), and the parent settles with its counts
as soon as its enqueued children are terminal (lifecycle.parents: CANCELLED, unless every child had already ended).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime

from contracts import DISPATCH_QUEUE, WORKER_QUEUE
from jobs.children import expand, size_of
from jobs.errors import JobSpecInvalid, JobStateConflict
from jobs.jobspec import JobSpec
from jobs.messages import dispatch_attributes
from jobs.record import JobRecord
from jobs.states import JobState
from jobs.sweep import child_id
from lifecycle.cancel import cancel_with_parent
from lifecycle.dispatch_rules import Outcome
from lifecycle.parents import KIND, enqueued, settle
from lifecycle.ports import Clock, JobStore, QueuePort

CHUNK = 500
"""Children enqueued per invocation (10 creates + 1 SendMessageBatch per group of 10)."""
GROUP = 10
"""SendMessageBatch takes at most 10 messages."""


def fan_out(
    spec: JobSpec,
    *,
    store: JobStore,
    queues: QueuePort,
    clock: Clock,
    dispatch_queue_url: str,
    worker_queue_url: str,
    reject: Callable[[str], Outcome],
) -> Outcome:
    """Enqueue the next chunk of the parent's children; returns what happened."""
    assert spec.job_id is not None
    try:
        children = expand(spec)
    except JobSpecInvalid as exc:
        return reject(str(exc))
    queue, queue_url = (DISPATCH_QUEUE, dispatch_queue_url) if spec.dedicated else (WORKER_QUEUE, worker_queue_url)
    if not queue_url:
        return reject("invalid job spec: dedicated: this deployment has no worker queue for the children")
    _, parent = store.create_if_absent(
        spec.job_id,
        state=JobState.SUBMITTED,
        attempt=1,
        now=clock(),
        spec=spec.to_json(),
        queue=DISPATCH_QUEUE,
        kind=KIND,
        array_size=len(children),
        enqueued=0,
        reason=f"fanning out {len(children)} children",
    )
    if parent.terminal or parent.state != JobState.SUBMITTED:
        return Outcome.SKIPPED
    start = enqueued(parent)
    if parent.cancel_requested:  # a crash may have left the next group created (not yet marked): cancel it too
        return _stop(store, parent, range(start, min(len(children), start + GROUP)), clock)
    for first in range(start, min(len(children), start + CHUNK), GROUP):
        group = children[first : first + GROUP]
        for child in group:
            store.create_if_absent(
                str(child.job_id),
                state=JobState.SUBMITTED,
                attempt=1,
                now=clock(),
                spec=child.to_json(),
                queue=queue,
                parent_id=spec.job_id,
                array_index=child.array_index,
            )
        queues.send_batch(queue_url, [(str(child.array_index), child.to_json()) for child in group])
        marked = _mark(store, parent, first + len(group), len(children), clock())
        if marked is None:
            return Outcome.SKIPPED
        parent = marked
        if parent.cancel_requested:  # cancelled during this invocation: stop here, with this group
            return _stop(store, parent, range(first, first + len(group)), clock)
    if enqueued(parent) < len(children):
        queues.send(dispatch_queue_url, spec.to_json(), dispatch_attributes(attempt=1))
        return Outcome.FAN_OUT_CONTINUED
    return Outcome.FANNED_OUT


def _stop(store: JobStore, parent: JobRecord, indexes: range, clock: Clock) -> Outcome:
    """Stop the fan-out of a cancelled parent: cancel the children of the group around the cancel that are still
    waiting (the running ones see their cancel request), then settle the parent if its children allow it."""
    ids = [child_id(parent.job_id, i) for i in indexes if i >= 0]
    for child in store.get_many(ids).values():
        if child.terminal:
            continue
        with contextlib.suppress(JobStateConflict):
            cancel_with_parent(store, child, parent.job_id, clock(), tasks=None)
    current = store.get(parent.job_id) or parent
    settle(store, current, clock())
    return Outcome.CANCELLED


def _mark(store: JobStore, parent: JobRecord, done: int, total: int, now: datetime) -> JobRecord | None:
    """Record progress; the last group moves the parent to RUNNING (unless a cancel arrived: the progress write
    returns the cancel flag first). None when another consumer moved it on."""
    reason = f"{total} children enqueued" if done == total else f"fanning out: {done} of {total} children enqueued"
    try:
        progress = store.annotate(
            parent.job_id,
            expected_states=JobState.SUBMITTED,
            expected_attempt=parent.attempt,
            now=now,
            reason=reason,
            enqueued=done,
            kind=KIND,  # also when trainctl created the record
            array_size=total,
        )
        if done == total and not progress.cancel_requested:
            return store.transition(
                parent.job_id,
                JobState.RUNNING,
                expected_states=JobState.SUBMITTED,
                expected_attempt=parent.attempt,
                now=now,
                reason=reason,
                enqueued=done,
                kind=KIND,
                array_size=total,
            )
        return progress
    except JobStateConflict:
        return None


def is_parent_spec(spec: JobSpec) -> bool:
    return size_of(spec) > 0
