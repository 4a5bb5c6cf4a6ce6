"""How an attempt's end decides the job's next step (pure): finish, or retry as attempt + 1.

One rule for every path (dedicated tasks, gangs, the worker): a failed attempt uses one of the job's
``max_attempts`` unless a retry rule (or a built-in default) says EXIT; an interruption (Spot, no capacity, a
stopped worker) does not, up to MAX_INTERRUPTIONS (jobs.retries).
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs import retries
from jobs.jobspec import JobSpec
from jobs.record import JobRecord
from jobs.retries import MAX_INTERRUPTIONS
from jobs.retry_rules import EXIT, Stop, evaluate
from jobs.states import JobState

RETRY_BASE_DELAY_SECONDS = 30
"""Backoff before the second attempt (doubling after each failure, jobs.retries)."""


@dataclass(frozen=True)
class Finish:
    state: JobState
    reason: str | None
    exit_code: int | None = None


@dataclass(frozen=True)
class Retry:
    reason: str
    next_attempt: int
    failures: int
    interruptions: int
    prefer_on_demand: bool
    delay_seconds: int
    exit_code: int | None = None


def _prefers_on_demand(job: JobRecord) -> bool:
    return bool(job.extra.get("prefer_on_demand"))


def after_failure(
    job: JobRecord,
    spec: JobSpec,
    what: str,
    exit_code: int | None,
    *,
    base_delay_seconds: int = RETRY_BASE_DELAY_SECONDS,
) -> Finish | Retry:
    """A failed attempt uses one of the job's max_attempts (jobs.retries)."""
    verdict = retries.after_failure(job.failures, spec.max_attempts, base_delay_seconds=base_delay_seconds)
    used = f"{verdict.count} of max_attempts={spec.max_attempts}"
    if verdict.give_up:
        return Finish(JobState.FAILED, f"attempt {job.attempt} failed ({what}); no attempts left ({used})", exit_code)
    return Retry(
        reason=f"attempt {job.attempt} failed ({what}); retrying ({used} used)",
        next_attempt=job.attempt + 1,
        failures=verdict.count,
        interruptions=job.interruptions,
        prefer_on_demand=_prefers_on_demand(job),
        delay_seconds=verdict.delay_seconds,
        exit_code=exit_code,
    )


def after_interruption(job: JobRecord, what: str) -> Finish | Retry:
    """Spot interruption or no capacity to start: re-submit on on-demand; bounded by MAX_INTERRUPTIONS."""
    verdict = retries.after_interruption(job.interruptions)
    if verdict.give_up:
        return Finish(JobState.FAILED, f"attempt {job.attempt} {what}; gave up after {MAX_INTERRUPTIONS} interruptions")
    return Retry(
        reason=f"attempt {job.attempt} {what}; re-submitting on on-demand capacity "
        f"(interruption {verdict.count} of {MAX_INTERRUPTIONS})",
        next_attempt=job.attempt + 1,
        failures=job.failures,
        interruptions=verdict.count,
        prefer_on_demand=True,
        delay_seconds=0,
    )


def after_stop(
    job: JobRecord, spec: JobSpec, stop: Stop, what: str, *, oom_advice: str, **retry: int
) -> Finish | Retry:
    """An attempt that ended without success: the job's retry rules and the built-in defaults (jobs.retry_rules)
    decide between failing now and after_failure (`retry`: its keyword arguments)."""
    rule = evaluate(spec.retry_rules, stop, oom_advice=oom_advice)
    if rule.action == EXIT:
        return Finish(JobState.FAILED, f"attempt {job.attempt} failed ({what}); {rule.why}", stop.exit_code)
    return after_failure(job, spec, what, stop.exit_code, **retry)
