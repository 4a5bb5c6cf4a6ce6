"""trainctl for array jobs and sweeps: a parent's status, its children, cancelling them all."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import IO, Any

from aws.job_store import DynamoJobStore
from jobs.children import size_of
from jobs.errors import JobStateConflict
from jobs.jobspec import JobSpec
from jobs.record import JobRecord
from jobs.states import TERMINAL, JobState
from lifecycle import parents as arrays
from trainctl.errors import TrainctlError, aws_call
from trainctl.explain import Facts, cost_text, explain


def parent_fields(spec: JobSpec) -> dict[str, Any]:
    """Record fields of a parent created by trainctl (the submitter fans it out)."""
    return {"kind": arrays.KIND, "array_size": size_of(spec), "enqueued": 0} if size_of(spec) else {}


def children_of(store: DynamoJobStore, parent_id: str) -> list[JobRecord]:
    parent = aws_call("GetItem", store.get, job_id=parent_id)
    if parent is None:
        raise TrainctlError(f"job {parent_id!r} not found")
    if not arrays.is_parent(parent):
        raise TrainctlError(f"job {parent_id} is not an array job or sweep: it has no children")
    return list(aws_call("BatchGetItem", arrays.children, store=store, parent=parent))


def status_lines(facts: Facts) -> list[str]:
    """Extra `trainctl status` lines: a parent's progress bar and summed cost, a job's cost, why it waits."""
    record = facts.record
    assert record is not None
    lines = []
    if facts.progress is not None:
        lines.append(f"{'children':<10} {facts.progress.bar()}  {facts.progress.summary()}")
        total = facts.progress.cost
        lines.append(f"{'cost':<10} ${total['cost_usd']:.4f} in total (saved ${total['saving_usd']:.4f} vs on-demand)")
    elif (cost := cost_text(record)) is not None:
        lines.append(f"{'cost':<10} {cost}")
    if facts.progress is None and record.state not in (JobState.RUNNING, *TERMINAL):
        lines.extend(f"{'why' if i == 0 else '':<10} {line}" for i, line in enumerate(explain(facts)))
    return [line + "\n" for line in lines]


def cancel_children(store: DynamoJobStore, parent: JobRecord, now: datetime, stop_task: Any, out: IO[str]) -> int:
    """Cancel every child not yet terminal (waiting ones at once; running ones are stopped by their consumer)."""
    cancelled = stopping = 0
    for child in aws_call("BatchGetItem", arrays.children, store=store, parent=parent):
        if child.terminal:
            continue
        with contextlib.suppress(JobStateConflict):
            child, ended = arrays.cancel_child(store, child, parent.job_id, now)
            if ended:
                arrays.on_child_finished(store, child, now)
                cancelled += 1
                continue
            if child.state in (JobState.DISPATCHED, JobState.RUNNING) and child.queue == "dispatch" and child.task_arn:
                stop_task(child.task_arn, f"cancelled with its parent {parent.job_id}")
            stopping += 1
    settled = arrays.settle(store, aws_call("GetItem", store.get, job_id=parent.job_id) or parent, now)
    out.write(
        f"{parent.job_id}: {cancelled} waiting child(ren) cancelled, {stopping} running child(ren) stopping; "
        f"parent {settled.state}\n"
    )
    return 0
