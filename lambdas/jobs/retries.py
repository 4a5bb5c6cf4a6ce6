"""The retry rules every job follows, whichever way it runs (pure).

Used by the task-events Lambda (dispatch jobs) and by the worker (worker-queue jobs), so both count the same way:

- a failed attempt (non-zero exit, lost task) uses one of the job's ``max_attempts``, with exponential backoff;
- an interruption (Spot interruption, no capacity to start, worker stopped or lost) does not, but a job absorbs at
  most ``MAX_INTERRUPTIONS`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_INTERRUPTIONS = 5
"""Interruptions a job may absorb without using its max_attempts."""
MAX_RETRY_DELAY_SECONDS = 900


@dataclass(frozen=True)
class Verdict:
    count: int
    """Failures (or interruptions) so far, this one included: the value to record on the job."""
    give_up: bool
    delay_seconds: int = 0
    """Wait before the next attempt (when not giving up)."""


def retry_delay(base_seconds: int, failures: int) -> int:
    """Backoff after ``failures`` failures: base, 2x base, 4x base ... at most 900 s."""
    return min(MAX_RETRY_DELAY_SECONDS, base_seconds * 2 ** max(0, failures - 1))


def after_failure(failures: int, max_attempts: int, *, base_delay_seconds: int) -> Verdict:
    """One more failed attempt, ``failures`` before it: retry after a backoff until max_attempts are used."""
    count = failures + 1
    return Verdict(count, count >= max_attempts, retry_delay(base_delay_seconds, count))


def after_interruption(interruptions: int) -> Verdict:
    """One more interruption, ``interruptions`` before it: retry at once, up to MAX_INTERRUPTIONS."""
    count = interruptions + 1
    return Verdict(count, count > MAX_INTERRUPTIONS)
