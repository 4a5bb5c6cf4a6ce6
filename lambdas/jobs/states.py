"""Job states and the allowed transitions between them (pure).

SUBMITTED -> DISPATCHED (task launched, dispatch queue) -> RUNNING -> SUCCEEDED / FAILED / RETRYING / CANCELLED.
Worker-queue jobs skip DISPATCHED (SUBMITTED -> RUNNING). RETRYING means "waiting for attempt + 1" and leads
back to DISPATCHED / RUNNING. Terminal states have no way out, so no write can move a job backwards.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    SUBMITTED = "SUBMITTED"
    DISPATCHED = "DISPATCHED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    RETRYING = "RETRYING"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


S = JobState

TERMINAL: frozenset[JobState] = frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.REJECTED})
"""States a job never leaves."""

WAITING: frozenset[JobState] = frozenset({S.SUBMITTED, S.RETRYING})
"""States in which a job waits for a task (its message is, or will be, on a queue)."""

ACTIVE: frozenset[JobState] = frozenset({S.DISPATCHED, S.RUNNING})
"""States in which a task exists for the job's current attempt."""

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.SUBMITTED: frozenset({S.DISPATCHED, S.RUNNING, S.REJECTED, S.CANCELLED, S.FAILED}),
    S.DISPATCHED: frozenset({S.RUNNING, S.SUCCEEDED, S.FAILED, S.RETRYING, S.CANCELLED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.RETRYING, S.CANCELLED}),
    S.RETRYING: frozenset({S.DISPATCHED, S.RUNNING, S.FAILED, S.CANCELLED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}

INITIAL: frozenset[JobState] = frozenset({S.SUBMITTED, S.REJECTED})
"""States a job record may be created in."""


def can_transition(current: JobState, target: JobState) -> bool:
    """True when `current -> target` is a forward move the state machine allows."""
    return target in TRANSITIONS[current]
