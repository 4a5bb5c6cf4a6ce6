"""What an attempt of a dedicated task (or gang) used, and what the job has cost so far (pure).

`attempt_fields` gives the job-record fields written with the transition that ends an attempt (usage, and the
job's cost over all its attempts, jobs.cost), so a duplicate event can never count an attempt twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from jobs.cost import Rate, attempt_usage, record_fields
from jobs.jobspec import JobSpec
from jobs.record import JobRecord
from jobs.states import JobState
from jobs.timeutil import parse_iso
from lifecycle.task_decisions import INTERRUPTION_STOP_CODES, TaskView


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
