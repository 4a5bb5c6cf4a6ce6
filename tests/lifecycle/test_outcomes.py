"""lifecycle.outcomes: the one retry decision after an attempt fails, is interrupted or stops."""

from __future__ import annotations

from jobs.jobspec import JobSpec
from jobs.record import JobRecord
from jobs.retries import MAX_INTERRUPTIONS
from jobs.retry_rules import RetryRule, Stop
from jobs.states import JobState
from lifecycle.outcomes import Finish, Retry, after_failure, after_interruption, after_stop

SPEC = JobSpec(command=["python", "train.py"], max_attempts=3)
OOM_ADVICE = "raise memory"


def job(**values: object) -> JobRecord:
    return JobRecord.from_values({"job_id": "j1", "state": "RUNNING", "attempt": 1, **values})


def test_a_failure_retries_with_backoff_until_max_attempts_are_used() -> None:
    first = after_failure(job(), SPEC, "exit 1", 1)
    assert first == Retry(
        reason="attempt 1 failed (exit 1); retrying (1 of max_attempts=3 used)",
        next_attempt=2,
        failures=1,
        interruptions=0,
        prefer_on_demand=False,
        delay_seconds=30,
        exit_code=1,
    )
    second = after_failure(job(attempt=2, failures=1, prefer_on_demand=True), SPEC, "exit 1", 1, base_delay_seconds=10)
    assert isinstance(second, Retry) and (second.delay_seconds, second.prefer_on_demand) == (20, True)
    last = after_failure(job(attempt=3, failures=2), SPEC, "exit 1", 1)
    assert last == Finish(
        JobState.FAILED, "attempt 3 failed (exit 1); no attempts left (3 of max_attempts=3)", 1, failures=3
    )


def test_an_interruption_moves_to_on_demand_without_using_an_attempt() -> None:
    retry = after_interruption(job(failures=1), "was interrupted (Spot)")
    assert retry == Retry(
        reason="attempt 1 was interrupted (Spot); re-submitting on on-demand capacity (interruption 1 of 5)",
        next_attempt=2,
        failures=1,
        interruptions=1,
        prefer_on_demand=True,
        delay_seconds=0,
    )
    gave_up = after_interruption(job(interruptions=MAX_INTERRUPTIONS), "was interrupted (Spot)")
    assert gave_up == Finish(
        JobState.FAILED, "attempt 1 was interrupted (Spot); gave up after 5 interruptions", interruptions=6
    )


def test_a_stop_follows_the_rules_then_the_defaults_then_retries() -> None:
    out_of_memory = after_stop(
        job(), SPEC, Stop(137, "EssentialContainerExited", None), "exit 137", oom_advice=OOM_ADVICE
    )
    assert out_of_memory == Finish(
        JobState.FAILED, "attempt 1 failed (exit 137); out of memory: raise memory (not retried)", 137, failures=1
    )
    ruled = SPEC.model_copy(update={"retry_rules": [RetryRule(action="EXIT", exit_code="3")]})
    exited = after_stop(job(), ruled, Stop(3, None, None), "exit 3", oom_advice=OOM_ADVICE)
    assert exited == Finish(JobState.FAILED, "attempt 1 failed (exit 3); retry_rules[0] matched: EXIT", 3, failures=1)
    retried = after_stop(job(), SPEC, Stop(1, None, None), "exit 1", oom_advice=OOM_ADVICE, base_delay_seconds=5)
    assert isinstance(retried, Retry) and (retried.delay_seconds, retried.exit_code, retried.failures) == (5, 1, 1)
