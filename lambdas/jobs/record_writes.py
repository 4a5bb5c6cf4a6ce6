"""What each job-store write does to a job item and what it requires (pure): one description that every store
runs (aws.job_store renders it as a DynamoDB update, fakes.store applies it to a dict), so they cannot differ.

Item layout (contract): pk = job_id; state, attempt, spec (JSON), queue, task_arn, capacity_provider, reason,
exit_code, submitted_at / dispatched_at / started_at / finished_at / updated_at (ISO-8601 UTC), history (list of
{at, from, to, reason}). Extra attributes used here: failures / interruptions (retry budgets), cancel_requested,
launch_claim / launch_claimed_at (the submitter's launch lease, see `claim_launch`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from contracts import TABLE_PARTITION_KEY
from jobs.errors import InvalidTransition
from jobs.gang import RENDEZVOUS
from jobs.record import NO_CLAIM, JobRecord
from jobs.states import INITIAL, TERMINAL, JobState, can_transition
from jobs.timeutil import iso

HISTORY = "history"

STATE_TIMESTAMPS = {
    JobState.DISPATCHED: "dispatched_at",
    JobState.RUNNING: "started_at",
    JobState.SUCCEEDED: "finished_at",
    JobState.FAILED: "finished_at",
    JobState.CANCELLED: "finished_at",
    JobState.REJECTED: "finished_at",
}
"""The attribute each state stamps with the time the job entered it."""


@dataclass(frozen=True)
class Condition:
    """One requirement on the stored item's `attr`: equals values[0], is one of `values`, is absent, or is absent
    or false."""

    attr: str
    test: Literal["equals", "in", "absent", "not_true"]
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Write:
    """A conditional update of a job item: it applies when the item exists and every condition holds."""

    changes: Mapping[str, Any]
    """Attribute -> new value; None removes the attribute."""
    conditions: tuple[Condition, ...]
    expected: str
    """What the writer expected, for the JobStateConflict raised when a condition fails."""
    history: Mapping[str, Any] | None = None
    """An entry appended to the item's history."""
    increment: tuple[str, int] | None = None
    """(attribute, amount): the number attribute (created at 0) grows by amount."""

    def __post_init__(self) -> None:
        grown = {HISTORY} if self.history is not None else set()
        grown |= {self.increment[0]} if self.increment is not None else set()
        if grown & self.changes.keys():
            raise ValueError(f"a write cannot also set {sorted(grown & self.changes.keys())}")


def record_from_item(item: Mapping[str, Any]) -> JobRecord:
    """A JobRecord from a stored item's plain values."""
    return JobRecord.from_values({"job_id": item.get(TABLE_PARTITION_KEY), **item})


def new_item(
    job_id: str, *, state: JobState, attempt: int, now: datetime, reason: str | None, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """The item `create_if_absent` puts (None fields are left out). Raises InvalidTransition for a state no job
    starts in."""
    if state not in INITIAL:
        raise InvalidTransition(f"a job cannot be created in state {state}")
    stamp = iso(now)
    item: dict[str, Any] = {
        TABLE_PARTITION_KEY: job_id,
        "job_id": job_id,
        "state": state.value,
        "attempt": attempt,
        "submitted_at": stamp,
        "updated_at": stamp,
        HISTORY: [_history_entry(stamp, None, state, reason)],
    }
    if state in STATE_TIMESTAMPS:
        item[STATE_TIMESTAMPS[state]] = stamp
    item.update((key, value) for key, value in {"reason": reason, **fields}.items() if value is not None)
    return item


def transition(
    to: JobState,
    *,
    expected_states: JobState | Collection[JobState],
    expected_attempt: int,
    now: datetime,
    reason: str | None,
    expected_task_arn: str | None,
    expected_claim: str | None,
    fields: Mapping[str, Any],
) -> Write:
    """See JobStore.transition. Raises InvalidTransition for a move the state machine forbids."""
    expected = _states(expected_states)
    if not expected:
        raise InvalidTransition("expected_states is empty")
    for state in expected:
        if not can_transition(state, to):
            raise InvalidTransition(f"{state} -> {to} is not allowed")
    stamp = iso(now)
    changes: dict[str, Any] = {"state": to.value, "updated_at": stamp, "reason": reason}
    if to in STATE_TIMESTAMPS and STATE_TIMESTAMPS[to] not in fields:
        changes[STATE_TIMESTAMPS[to]] = stamp
    from_state = expected[0].value if len(expected) == 1 else "|".join(sorted(s.value for s in expected))
    conditions = [_in_states(expected), _equals("attempt", expected_attempt)]
    if expected_task_arn is not None:
        conditions.append(_equals("task_arn", expected_task_arn))
    if expected_claim == NO_CLAIM:
        conditions.append(Condition("launch_claim", "absent"))
    elif expected_claim is not None:
        conditions.append(_equals("launch_claim", expected_claim))
    return Write(
        _with_fields(changes, fields),
        tuple(conditions),
        f"{'|'.join(expected)} attempt {expected_attempt}",
        history=_history_entry(stamp, from_state, to, reason),
    )


def annotate(
    *,
    expected_states: JobState | Collection[JobState],
    expected_attempt: int,
    now: datetime,
    reason: str | None,
    expected_claim: str | None,
    fields: Mapping[str, Any],
) -> Write:
    """See JobStore.annotate: the reason and fields change, the state and history do not."""
    expected = _states(expected_states)
    conditions = [_in_states(expected), _equals("attempt", expected_attempt)]
    if expected_claim is not None:
        conditions.append(_equals("launch_claim", expected_claim))
    changes = _with_fields({"updated_at": iso(now), "reason": reason}, fields)
    return Write(changes, tuple(conditions), f"{'|'.join(expected)} attempt {expected_attempt}")


def claim_launch(*, state: JobState, attempt: int, claim: str, now: datetime, takeover_from: str | None) -> Write:
    """See JobStore.claim_launch. A gang's rendezvous is removed here, before any RunTask: the launch's rank 0
    may publish as soon as it runs (jobs.gang)."""
    stamp = iso(now)
    changes = {"launch_claim": claim, "launch_claimed_at": stamp, RENDEZVOUS: None, "updated_at": stamp}
    conditions = (
        _in_states((state,)),
        _equals("attempt", attempt),
        Condition("cancel_requested", "not_true"),
        Condition("launch_claim", "absent") if takeover_from is None else _equals("launch_claim", takeover_from),
    )
    return Write(changes, conditions, f"{state} attempt {attempt} unclaimed")


def release_claim(*, state: JobState, attempt: int, claim: str, now: datetime, reason: str) -> Write:
    """See JobStore.release_claim."""
    changes = {"launch_claim": None, "launch_claimed_at": None, "updated_at": iso(now), "reason": reason}
    conditions = (_in_states((state,)), _equals("attempt", attempt), _equals("launch_claim", claim))
    return Write(changes, conditions, f"{state} attempt {attempt} claimed by {claim}")


def request_cancel(*, now: datetime, reason: str) -> Write:
    """See JobStore.request_cancel: any job not yet terminal."""
    changes = {"cancel_requested": True, "updated_at": iso(now), "reason": reason}
    non_terminal = tuple(s for s in JobState if s not in TERMINAL)
    return Write(changes, (_in_states(non_terminal),), "a non-terminal state")


def add_to(attr: str, amount: int, *, now: datetime) -> Write:
    """See JobStore.add_to."""
    return Write({"updated_at": iso(now)}, (), "an existing job", increment=(attr, amount))


class ConditionalUpdates:
    """The JobStore port's conditional updates, once for every store: each method describes its write here and
    hands it to the store's `_apply` (aws.job_store: one UpdateItem; fakes.store: a dict, under the same rules)."""

    def _apply(self, operation: str, job_id: str, write: Write) -> JobRecord:
        """Perform `write` on the job's item if every condition holds, else raise JobStateConflict."""
        raise NotImplementedError

    def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        expected_states: JobState | Collection[JobState],
        expected_attempt: int,
        now: datetime,
        reason: str | None = None,
        expected_task_arn: str | None = None,
        expected_claim: str | None = None,
        **fields: Any,
    ) -> JobRecord:
        """Move the job to `to` if it is in one of `expected_states` at `expected_attempt` (and, when given,
        runs `expected_task_arn` / holds `expected_claim`; NO_CLAIM: holds none).
        Appends {at, from, to, reason} to history, stamps updated_at and the state's own timestamp, sets
        `fields` (None removes an attribute).
        Raises InvalidTransition for a move the state machine forbids, JobStateConflict when the write loses."""
        write = transition(
            to,
            expected_states=expected_states,
            expected_attempt=expected_attempt,
            now=now,
            reason=reason,
            expected_task_arn=expected_task_arn,
            expected_claim=expected_claim,
            fields=fields,
        )
        return self._apply("transition", job_id, write)

    def annotate(
        self,
        job_id: str,
        *,
        expected_states: JobState | Collection[JobState],
        expected_attempt: int,
        now: datetime,
        reason: str | None,
        expected_claim: str | None = None,
        **fields: Any,
    ) -> JobRecord:
        """Update the reason (and fields) without a state change and without growing history, e.g. "waiting:
        concurrency cap reached". Conditional on state and attempt like a transition."""
        write = annotate(
            expected_states=expected_states,
            expected_attempt=expected_attempt,
            now=now,
            reason=reason,
            expected_claim=expected_claim,
            fields=fields,
        )
        return self._apply("annotate", job_id, write)

    def claim_launch(
        self,
        job_id: str,
        *,
        state: JobState,
        attempt: int,
        claim: str,
        now: datetime,
        takeover_from: str | None = None,
    ) -> JobRecord:
        """Take the launch lease for (job, attempt) before calling RunTask: only one consumer can hold it.

        Without `takeover_from` the job must be unclaimed; with it, the job must still hold that (expired)
        claim, so exactly one consumer recovers an abandoned launch. A cancel request blocks the claim. A gang's
        rendezvous is removed here, before the launch's rank 0 can publish (jobs.gang)."""
        write = claim_launch(state=state, attempt=attempt, claim=claim, now=now, takeover_from=takeover_from)
        return self._apply("claim_launch", job_id, write)

    def release_claim(
        self, job_id: str, *, state: JobState, attempt: int, claim: str, now: datetime, reason: str
    ) -> JobRecord:
        """Give the lease back after a launch that certainly did not start a task (throttled, no capacity)."""
        return self._apply(
            "release_claim", job_id, release_claim(state=state, attempt=attempt, claim=claim, now=now, reason=reason)
        )

    def request_cancel(self, job_id: str, *, now: datetime, reason: str = "cancel requested") -> JobRecord:
        """Flag a non-terminal job for cancellation (CLI). The caller then stops its task, if any; the
        task-events handler records CANCELLED when the task stops, the submitter for a job still waiting."""
        return self._apply("request_cancel", job_id, request_cancel(now=now, reason=reason))

    def add_to(self, job_id: str, attr: str, amount: int, *, now: datetime) -> JobRecord:
        """Atomically add `amount` to a number attribute (created at 0) of an existing job."""
        return self._apply("add_to", job_id, add_to(attr, amount, now=now))


def _states(states: JobState | Collection[JobState]) -> tuple[JobState, ...]:
    return (states,) if isinstance(states, JobState) else tuple(states)


def _in_states(states: Collection[JobState]) -> Condition:
    return Condition("state", "in", tuple(s.value for s in states))


def _equals(attr: str, value: Any) -> Condition:
    return Condition(attr, "equals", (value,))


def _with_fields(changes: dict[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """`changes` plus the caller's fields; a field the write sets itself is a programming error (DynamoDB refuses
    two updates of one attribute)."""
    overlap = changes.keys() & fields.keys()
    if overlap:
        raise ValueError(f"the store sets {sorted(overlap)} itself")
    return {**changes, **fields}


def _history_entry(now: str, from_state: str | None, to_state: JobState, reason: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": now, "from": from_state, "to": to_state.value}
    if reason:
        entry["reason"] = reason
    return entry
