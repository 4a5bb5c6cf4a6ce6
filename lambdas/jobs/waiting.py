"""max_wait (pure): how long a job may wait from submission to its first start, and what happens then.

``max_wait: {seconds: 900, action: ON_DEMAND}`` keeps a Spot job on Spot only (no immediate fallback) until the
deadline, then lets it fall back to on-demand FARGATE. ``action: FAIL`` ends a job that has not started by then
FAILED with the reason it was waiting for. Without max_wait a job waits, always with a visible reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from jobs.jobspec import JobSpec
from jobs.max_wait import FAIL, ON_DEMAND, OnMaxWait
from jobs.record import JobRecord
from jobs.timeutil import iso, parse_iso

__all__ = ["FAIL", "ON_DEMAND", "deadline", "expired", "expiry_reason", "fallback_at", "hold_for_spot"]


def deadline(spec: JobSpec, job: JobRecord) -> datetime | None:
    """When max_wait runs out for a job that has not started yet (None: no max_wait, or it started)."""
    if spec.max_wait is None or job.started_at or not job.submitted_at:
        return None
    return parse_iso(job.submitted_at) + timedelta(seconds=spec.max_wait.seconds)


def expired(spec: JobSpec, job: JobRecord, now: datetime) -> OnMaxWait | None:
    """The action due now, if the job's max_wait has run out."""
    due = deadline(spec, job)
    return spec.max_wait.action if due is not None and spec.max_wait is not None and now >= due else None


def hold_for_spot(spec: JobSpec, job: JobRecord | None, now: datetime) -> bool:
    """True while a max_wait ON_DEMAND job should try Spot only (its on-demand fallback is planned later)."""
    if spec.max_wait is None or spec.max_wait.action != ON_DEMAND or not spec.spot:
        return False
    if job is None:
        return True
    if job.extra.get("prefer_on_demand"):
        return False
    due = deadline(spec, job)
    return due is not None and now < due


def expiry_reason(spec: JobSpec, job: JobRecord) -> str:
    assert spec.max_wait is not None
    waited = f"not started within max_wait={spec.max_wait.seconds} s of submission ({job.submitted_at})"
    last = f"; last waiting reason: {job.reason}" if job.reason else ""
    if spec.max_wait.action == FAIL:
        return f"{waited}{last}"
    return f"{waited}: falling back to on-demand capacity{last}"


def fallback_at(spec: JobSpec, job: JobRecord) -> str | None:
    """ISO time of the planned on-demand fallback (for "why is my job waiting")."""
    if spec.max_wait is None or spec.max_wait.action != ON_DEMAND:
        return None
    due = deadline(spec, job)
    return iso(due) if due is not None else None
