"""Parents of array jobs and sweeps: children counts, and the parent's state derived from its children.

Parent record attributes: ``kind`` = "array", ``array_size``, ``enqueued`` (children created and sent so far),
``children_finished`` (a counter bumped as each child ends; when it reaches the size, or for a parent cancelled
during its fan-out the number enqueued, the children are read and the parent settles). Child records carry
``parent_id`` and ``array_index``; a child's id is ``<parent>-<index>``.
The parent ends SUCCEEDED when every child succeeded, FAILED when any child failed (or was rejected) after its
retries, naming them, else CANCELLED; its cost fields are the sums of its children's.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobs.cost import sum_costs
from jobs.errors import JobStateConflict
from jobs.record import JobRecord
from jobs.states import TERMINAL, JobState, can_transition
from jobs.sweep import child_id
from lifecycle.ports import JobStore

KIND = "array"
MAX_NAMED = 10


def is_parent(record: JobRecord) -> bool:
    return record.extra.get("kind") == KIND


def size(parent: JobRecord) -> int:
    return int(parent.extra.get("array_size") or 0)


def enqueued(parent: JobRecord) -> int:
    return int(parent.extra.get("enqueued") or 0)


@dataclass(frozen=True)
class Progress:
    size: int
    enqueued: int
    counts: Counter[str] = field(default_factory=Counter)
    failed: tuple[str, ...] = ()
    cost: dict[str, float] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return sum(n for state, n in self.counts.items() if JobState(state) in TERMINAL)

    def derived_state(self, *, cancel_requested: bool) -> JobState | None:
        """The parent's final state once every enqueued child is terminal (and fan-out is done or stopped).

        A cancel only reaches the children not yet terminal: when it lands after every child was enqueued and
        all of them had already ended, the parent takes the state they derive (SUCCEEDED if all succeeded), not
        CANCELLED; CANCELLED is for a parent some of whose children were cancelled or never enqueued."""
        if self.finished < self.enqueued or (self.enqueued < self.size and not cancel_requested):
            return None
        if self.failed:
            return JobState.FAILED
        if self.counts.get(JobState.SUCCEEDED, 0) == self.size:
            return JobState.SUCCEEDED
        return JobState.CANCELLED

    def summary(self) -> str:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(self.counts.items()))
        text = f"{self.size} children: {counts or 'none enqueued yet'}"
        if self.enqueued < self.size:
            text += f" ({self.enqueued} of {self.size} enqueued)"
        if self.failed:
            named = ", ".join(self.failed[:MAX_NAMED]) + (" ..." if len(self.failed) > MAX_NAMED else "")
            text += f"; failed: {named}"
        return text

    def bar(self, width: int = 30) -> str:
        done = round(width * self.finished / self.size) if self.size else 0
        return f"[{'#' * done}{'.' * (width - done)}] {self.finished}/{self.size}"


def children(store: JobStore, parent: JobRecord) -> list[JobRecord]:
    """The parent's children that exist so far, in index order."""
    ids = [child_id(parent.job_id, i) for i in range(enqueued(parent) or size(parent))]
    found = store.get_many(ids)
    return [found[i] for i in ids if i in found]


def progress(parent: JobRecord, records: list[JobRecord]) -> Progress:
    failed = tuple(r.job_id for r in records if r.state in (JobState.FAILED, JobState.REJECTED))
    costs = sum_costs([{**r.extra} for r in records])
    counts: Counter[str] = Counter(r.state.value for r in records)
    return Progress(size(parent), enqueued(parent), counts, failed, costs)


def settle(store: JobStore, parent: JobRecord, now: datetime) -> JobRecord:
    """Move the parent to its derived final state when its children allow it (else leave it as it is). A parent
    still SUBMITTED (its last group's mark saw a cancel, so it never went RUNNING) settles too, through RUNNING
    when the state machine requires it (SUBMITTED -> SUCCEEDED is not a move)."""
    if parent.terminal:
        return parent
    state_of = progress(parent, children(store, parent))
    cost: dict[str, Any] = dict(state_of.cost)
    state = state_of.derived_state(cancel_requested=parent.cancel_requested)
    if state is None:
        return parent
    try:
        if parent.state == JobState.SUBMITTED and not can_transition(parent.state, state):
            # a parent whose fan-out ended with a cancel never went RUNNING: SUCCEEDED goes through it
            parent = store.transition(
                parent.job_id,
                JobState.RUNNING,
                expected_states=parent.state,
                expected_attempt=parent.attempt,
                now=now,
                reason=state_of.summary(),
            )
        if not can_transition(parent.state, state):
            return parent
        return store.transition(
            parent.job_id,
            state,
            expected_states=parent.state,
            expected_attempt=parent.attempt,
            now=now,
            reason=state_of.summary(),
            **cost,
        )
    except JobStateConflict as conflict:  # settled meanwhile by another child's end
        return conflict.current or parent


def on_child_finished(store: JobStore, child: JobRecord, now: datetime) -> JobRecord | None:
    """Count a child's end on its parent and settle the parent after the last one (None: not a child)."""
    parent_id = child.extra.get("parent_id") or _spec_parent(child.spec or child.extra.get("body"))
    if not isinstance(parent_id, str) or not child.terminal:
        return None
    parent = store.add_to(parent_id, "children_finished", 1, now=now)
    # the last child, or (a parent cancelled during its fan-out) the last of the children enqueued before it
    last = size(parent) if not parent.cancel_requested else min(size(parent), enqueued(parent))
    if int(parent.extra.get("children_finished") or 0) < last:
        return parent
    return settle(store, parent, now)


def _spec_parent(spec: str | None) -> Any:
    """A child's parent from its spec (a child whose record was created by its consumer, not the fan-out)."""
    try:
        return json.loads(spec or "{}").get("parent_id")
    except (ValueError, AttributeError):
        return None
