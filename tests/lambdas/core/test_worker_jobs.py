"""The worker's decisions (lifecycle.worker_jobs): pure, no mocks. The worker's runs against moto are in
tests/containers/test_worker*.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from jobs.jobspec import JobSpec
from jobs.record import JobRecord
from jobs.retries import MAX_INTERRUPTIONS
from jobs.states import JobState
from jobs.timeutil import iso
from lifecycle.outcomes import Finish, Retry
from lifecycle.worker_jobs import Outcome, Result, after_attempt, lease_stale, lost_worker, next_attempt

S = JobState
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SPEC = JobSpec.model_validate({"job_id": "w1", "command": ["train"], "max_attempts": 3, "timeout_seconds": 3600})


def job(state: JobState = S.RUNNING, **fields: Any) -> JobRecord:
    values: dict[str, Any] = {"job_id": "w1", "state": state, "attempt": 1, "queue": "worker", **fields}
    return JobRecord(**values)


def end(result: Result, record: JobRecord | None = None, *, stop: str = "") -> Finish | Retry | None:
    return after_attempt(record or job(), SPEC, result, stop_reason=stop, retry_delay_seconds=10)


def test_a_failed_attempt_retries_after_the_worker_s_own_backoff_then_gives_up_counting_failures() -> None:
    first = end(Result(Outcome.EXITED, 3, "exit code 3"))
    assert isinstance(first, Retry) and (first.delay_seconds, first.failures, first.exit_code) == (10, 1, 3)
    assert first.reason == "attempt 1 failed with exit code 3; retrying in 10 s (1 of max_attempts=3 failures)"
    assert not first.prefer_on_demand
    last = end(Result(Outcome.EXITED, 3, "exit code 3"), job(attempt=3, failures=2))
    assert last == Finish(S.FAILED, "exit code 3; gave up after 3 failed attempt(s) (max_attempts=3)", 3, failures=3)


def test_an_interruption_requeues_at_once_on_the_same_capacity_until_the_limit() -> None:
    result = Result(Outcome.INTERRUPTED, 143, "exit code 143")
    retry = end(result, stop="received SIGTERM")
    assert isinstance(retry, Retry) and (retry.delay_seconds, retry.interruptions, retry.exit_code) == (0, 1, 143)
    assert not retry.prefer_on_demand
    assert retry.reason.startswith("interrupted: worker received SIGTERM (Spot interruption, scale-in or deploy)")
    assert retry.reason.endswith(f"; requeued at once (interruption 1 of {MAX_INTERRUPTIONS})")
    given_up = end(result, job(interruptions=MAX_INTERRUPTIONS))
    assert isinstance(given_up, Finish) and given_up.state == S.FAILED
    assert given_up.interruptions == MAX_INTERRUPTIONS + 1 and given_up.exit_code == 143
    assert str(given_up.reason).endswith(f"gave up after {MAX_INTERRUPTIONS} interruptions")


def test_success_cancel_timeout_not_started_and_abandoned() -> None:
    assert end(Result(Outcome.EXITED, 0, "exit code 0")) == Finish(S.SUCCEEDED, None, 0)
    assert end(Result(Outcome.INTERRUPTED, 0, "exit code 0")) == Finish(S.SUCCEEDED, None, 0)  # it finished anyway
    assert end(Result(Outcome.CANCELLED, -15, "killed by SIGTERM")) == Finish(
        S.CANCELLED, "cancelled on request (killed by SIGTERM)", -15
    )
    timed_out = end(Result(Outcome.TIMED_OUT, -15, "killed by SIGTERM"))
    assert timed_out == Finish(S.FAILED, "timed out after timeout_seconds=3600 (killed by SIGTERM); not retried", -15)
    assert end(Result(Outcome.NOT_STARTED, None, "cannot start 'x'")) == Finish(
        S.FAILED, "cannot start 'x'; not retried", None
    )
    assert end(Result(Outcome.ABANDONED, -15, "killed by SIGTERM")) is None


def test_an_exit_rule_fails_at_once_and_counts_the_failure() -> None:
    spec = JobSpec.model_validate({"command": ["train"], "retry_rules": [{"exit_code": "3", "action": "EXIT"}]})
    decision = after_attempt(
        job(), spec, Result(Outcome.EXITED, 3, "exit code 3"), stop_reason="", retry_delay_seconds=1
    )
    assert isinstance(decision, Finish) and (decision.state, decision.failures) == (S.FAILED, 1)
    assert str(decision.reason).startswith("attempt 1 failed with exit code 3; retry_rules[0] matched: EXIT")


def test_a_lease_goes_stale_only_for_a_running_worker_job() -> None:
    fresh = job(updated_at=iso(NOW - timedelta(seconds=60)))
    old = replace(fresh, updated_at=iso(NOW - timedelta(seconds=601)))
    assert not lease_stale(fresh, NOW, 600) and lease_stale(old, NOW, 600)
    assert not lease_stale(replace(old, queue="dispatch"), NOW, 600)
    assert not lease_stale(replace(old, state=S.DISPATCHED), NOW, 600)


def test_a_lost_worker_s_job_is_taken_over_as_an_interruption() -> None:
    lost = lost_worker(job(updated_at="2026-11-25T11:00:00.000Z"))
    assert isinstance(lost, Retry) and (lost.interruptions, lost.prefer_on_demand) == (1, False)
    assert lost.reason == "worker lost: no heartbeat since 2026-11-25T11:00:00.000Z; taken over by another worker"


def test_a_retried_job_starts_its_next_attempt_saying_why() -> None:
    assert next_attempt(job(S.SUBMITTED)) == (1, None)
    assert next_attempt(job(S.RETRYING, reason="x")) == (2, "attempt 2 after: x")
    assert next_attempt(job(S.RETRYING)) == (2, None)
