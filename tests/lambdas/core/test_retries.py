"""The retry rules shared by the task-events Lambda and the worker (pure, no mocks)."""

from __future__ import annotations

from jobs.retries import MAX_INTERRUPTIONS, Verdict, after_failure, after_interruption, retry_delay


def test_retry_delay_doubles_up_to_fifteen_minutes() -> None:
    assert [retry_delay(30, n) for n in (1, 2, 3, 10)] == [30, 60, 120, 900]
    assert retry_delay(0, 4) == 0


def test_failures_use_max_attempts_with_backoff() -> None:
    assert after_failure(0, 3, base_delay_seconds=30) == Verdict(count=1, give_up=False, delay_seconds=30)
    assert after_failure(1, 3, base_delay_seconds=30) == Verdict(count=2, give_up=False, delay_seconds=60)
    assert after_failure(2, 3, base_delay_seconds=30).give_up
    assert after_failure(0, 1, base_delay_seconds=30).give_up  # max_attempts=1: no retry


def test_interruptions_retry_at_once_up_to_the_bound() -> None:
    assert after_interruption(0) == Verdict(count=1, give_up=False, delay_seconds=0)
    assert not after_interruption(MAX_INTERRUPTIONS - 1).give_up
    assert after_interruption(MAX_INTERRUPTIONS) == Verdict(count=MAX_INTERRUPTIONS + 1, give_up=True)
