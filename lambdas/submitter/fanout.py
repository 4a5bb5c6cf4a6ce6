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

Also here: `hold_for_spot`, which keeps a ``max_wait: ON_DEMAND`` job on Spot until its deadline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from aws.job_store import DynamoJobStore
from jobs import waiting
from jobs.children import expand, size_of
from jobs.ecs import FARGATE_SPOT
from jobs.errors import JobSpecInvalid, JobStateConflict
from jobs.jobspec import JobSpec
from jobs.messages import dispatch_attributes
from jobs.record import JobRecord
from jobs.states import JobState
from jobs.sweep import child_id
from lifecycle.finished import job_finished
from lifecycle.parents import KIND, cancel_child, enqueued, settle
from submitter.logic import LaunchPlan

CHUNK = 500
"""Children enqueued per invocation (10 creates + 1 SendMessageBatch per group of 10)."""
GROUP = 10
"""SendMessageBatch takes at most 10 messages."""


class BatchQueuePort(Protocol):
    def send(
        self, queue_url: str, body: str, attributes: Mapping[str, Mapping[str, str]], *, delay_seconds: int = 0
    ) -> str: ...

    def send_batch(self, queue_url: str, bodies: Sequence[tuple[str, str]]) -> None: ...


def fan_out(
    spec: JobSpec,
    *,
    store: DynamoJobStore,
    queues: BatchQueuePort,
    clock: Callable[[], datetime],
    dispatch_queue_url: str,
    worker_queue_url: str,
    reject: Callable[[str], str],
) -> str:
    """Enqueue the next chunk of the parent's children; returns what happened (a metric name)."""
    assert spec.job_id is not None
    try:
        children = expand(spec)
    except JobSpecInvalid as exc:
        return reject(str(exc))
    queue, queue_url = ("dispatch", dispatch_queue_url) if spec.dedicated else ("worker", worker_queue_url)
    if not queue_url:
        return reject("invalid job spec: dedicated: this deployment has no worker queue for the children")
    _, parent = store.create_if_absent(
        spec.job_id,
        state=JobState.SUBMITTED,
        attempt=1,
        now=clock(),
        spec=spec.to_json(),
        queue="dispatch",
        kind=KIND,
        array_size=len(children),
        enqueued=0,
        reason=f"fanning out {len(children)} children",
    )
    if parent.terminal or parent.state != JobState.SUBMITTED:
        return "DuplicatesSkipped"
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
            return "DuplicatesSkipped"
        parent = marked
        if parent.cancel_requested:  # cancelled during this invocation: stop here, with this group
            return _stop(store, parent, range(first, first + len(group)), clock)
    if enqueued(parent) < len(children):
        queues.send(dispatch_queue_url, spec.to_json(), dispatch_attributes(attempt=1))
        return "ArrayFanOutContinued"
    return "ArrayChildrenEnqueued"


def _stop(store: DynamoJobStore, parent: JobRecord, indexes: range, clock: Callable[[], datetime]) -> str:
    """Stop the fan-out of a cancelled parent: cancel the children of the group around the cancel that are still
    waiting (the running ones see their cancel request), then settle the parent if its children allow it."""
    ids = [child_id(parent.job_id, i) for i in indexes if i >= 0]
    for child in store.get_many(ids).values():
        if child.terminal:
            continue
        with contextlib.suppress(JobStateConflict):
            record, ended = cancel_child(store, child, parent.job_id, clock())
            if ended:
                job_finished(store, record, clock())
    current = store.get(parent.job_id) or parent
    settle(store, current, clock())
    return "JobsCancelled"


def _mark(store: DynamoJobStore, parent: JobRecord, done: int, total: int, now: datetime) -> JobRecord | None:
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


def hold_for_spot(plan: LaunchPlan, spec: JobSpec, job: JobRecord, now: datetime) -> LaunchPlan:
    """A max_wait ON_DEMAND job tries Spot only until its deadline (jobs.waiting), then falls back."""
    if waiting.hold_for_spot(spec, job, now) and FARGATE_SPOT in plan.providers:
        return replace(plan, providers=(FARGATE_SPOT,))
    return plan
