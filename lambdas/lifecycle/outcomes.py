"""How an attempt's end decides the job's next step (pure): finish, or retry as attempt + 1.

One rule for every path (dedicated tasks, gangs, the worker): a failed attempt uses one of the job's
``max_attempts`` unless a retry rule (or a built-in default) says EXIT; an interruption (Spot, no capacity, a
stopped worker) does not, up to MAX_INTERRUPTIONS (jobs.retries). A path words its reasons its own way
(`Wording`); the decision is the same.
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
    failures: int | None = None
    """Failed attempts to record, this one included (None: unchanged)."""
    interruptions: int | None = None
    """Interruptions to record, this one included (None: unchanged)."""


@dataclass(frozen=True)
class Retry:
    reason: str
    next_attempt: int
    failures: int
    interruptions: int
    prefer_on_demand: bool
    delay_seconds: int
    exit_code: int | None = None


@dataclass(frozen=True)
class Wording:
    """A path's reason texts (str.format fields: attempt, what, count, max_attempts, delay, why, limit)."""

    exit_rule: str = "attempt {attempt} failed ({what}); {why}"
    no_attempts_left: str = (
        "attempt {attempt} failed ({what}); no attempts left ({count} of max_attempts={max_attempts})"
    )
    retrying: str = "attempt {attempt} failed ({what}); retrying ({count} of max_attempts={max_attempts} used)"
    too_many_interruptions: str = "attempt {attempt} {what}; gave up after {limit} interruptions"
    interrupted: str = "attempt {attempt} {what}; re-submitting on on-demand capacity (interruption {count} of {limit})"


TASKS = Wording()
"""The dedicated tasks' wording (the task-events Lambda)."""


def _prefers_on_demand(job: JobRecord) -> bool:
    return bool(job.extra.get("prefer_on_demand"))


def after_failure(
    job: JobRecord,
    spec: JobSpec,
    what: str,
    exit_code: int | None,
    *,
    base_delay_seconds: int = RETRY_BASE_DELAY_SECONDS,
    wording: Wording = TASKS,
) -> Finish | Retry:
    """A failed attempt uses one of the job's max_attempts (jobs.retries)."""
    verdict = retries.after_failure(job.failures, spec.max_attempts, base_delay_seconds=base_delay_seconds)
    words = {"attempt": job.attempt, "what": what, "count": verdict.count, "max_attempts": spec.max_attempts}
    if verdict.give_up:
        return Finish(JobState.FAILED, wording.no_attempts_left.format(**words), exit_code, failures=verdict.count)
    return Retry(
        reason=wording.retrying.format(**words, delay=verdict.delay_seconds),
        next_attempt=job.attempt + 1,
        failures=verdict.count,
        interruptions=job.interruptions,
        prefer_on_demand=_prefers_on_demand(job),
        delay_seconds=verdict.delay_seconds,
        exit_code=exit_code,
    )


def after_interruption(
    job: JobRecord, what: str, *, prefer_on_demand: bool = True, wording: Wording = TASKS
) -> Finish | Retry:
    """Spot interruption, no capacity to start, a stopped worker: retry at once (on on-demand capacity when
    `prefer_on_demand`); bounded by MAX_INTERRUPTIONS."""
    verdict = retries.after_interruption(job.interruptions)
    words = {"attempt": job.attempt, "what": what, "count": verdict.count, "limit": MAX_INTERRUPTIONS}
    if verdict.give_up:
        return Finish(JobState.FAILED, wording.too_many_interruptions.format(**words), interruptions=verdict.count)
    return Retry(
        reason=wording.interrupted.format(**words),
        next_attempt=job.attempt + 1,
        failures=job.failures,
        interruptions=verdict.count,
        prefer_on_demand=prefer_on_demand,
        delay_seconds=0,
    )


def after_stop(
    job: JobRecord,
    spec: JobSpec,
    stop: Stop,
    what: str,
    *,
    oom_advice: str,
    base_delay_seconds: int = RETRY_BASE_DELAY_SECONDS,
    wording: Wording = TASKS,
) -> Finish | Retry:
    """An attempt that ended without success: the job's retry rules and the built-in defaults (jobs.retry_rules)
    decide between failing now (a failed attempt too) and after_failure."""
    rule = evaluate(spec.retry_rules, stop, oom_advice=oom_advice)
    if rule.action == EXIT:
        reason = wording.exit_rule.format(attempt=job.attempt, what=what, why=rule.why)
        return Finish(JobState.FAILED, reason, stop.exit_code, failures=job.failures + 1)
    return after_failure(job, spec, what, stop.exit_code, base_delay_seconds=base_delay_seconds, wording=wording)
