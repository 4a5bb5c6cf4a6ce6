"""lifecycle.parents on fakes: a parent settles after its last child, from its children's states and costs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fakes.clock import ManualClock
from fakes.store import InMemoryJobStore
from jobs.record import JobRecord
from jobs.states import JobState
from jobs.timeutil import iso
from lifecycle.cancel import Step, cancel_with_parent
from lifecycle.finished import job_finished
from lifecycle.parents import children, on_child_finished, progress, settle

S = JobState


def make_parent(store: InMemoryJobStore, clock: ManualClock, size: int, *, enqueued: int | None = None) -> JobRecord:
    """A parent whose fan-out created `enqueued` children (all of them by default), then went RUNNING."""
    count = size if enqueued is None else enqueued
    store.create_if_absent(
        "p", state=S.SUBMITTED, attempt=1, now=clock(), kind="array", array_size=size, enqueued=count
    )
    for i in range(count):
        store.create_if_absent(f"p-{i}", state=S.SUBMITTED, attempt=1, now=clock(), parent_id="p", array_index=i)
    return store.transition("p", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=clock())


def end_child(store: InMemoryJobStore, clock: ManualClock, index: int, state: JobState, **fields: Any) -> JobRecord:
    """Run child `index` to `state` and call the finished hook, as the path that wrote it would."""
    clock.advance(60)
    job_id = f"p-{index}"
    store.transition(job_id, S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=clock())
    ended = store.transition(job_id, state, expected_states=S.RUNNING, expected_attempt=1, now=clock(), **fields)
    job_finished(store, ended, clock(), emit=lambda line: None)
    parent = store.get("p")
    assert parent is not None
    return parent


def test_a_parent_succeeds_after_its_last_child_with_their_summed_costs(
    store: InMemoryJobStore, clock: ManualClock
) -> None:
    make_parent(store, clock, 3)
    for i in range(2):
        parent = end_child(store, clock, i, S.SUCCEEDED, cost_usd=0.5, vcpu_seconds=60.0)
        assert parent.state == S.RUNNING and parent.extra["children_finished"] == i + 1
    parent = end_child(store, clock, 2, S.SUCCEEDED, cost_usd=0.25, vcpu_seconds=30.0)
    assert parent.state == S.SUCCEEDED and parent.reason == "3 children: 3 SUCCEEDED"
    assert parent.extra["cost_usd"] == 1.25 and parent.extra["vcpu_seconds"] == 150.0
    assert parent.finished_at == iso(clock())


def test_a_parent_fails_naming_its_failed_and_rejected_children(store: InMemoryJobStore, clock: ManualClock) -> None:
    make_parent(store, clock, 3)
    end_child(store, clock, 0, S.FAILED)
    end_child(store, clock, 1, S.SUCCEEDED)
    store.transition("p-2", S.REJECTED, expected_states=S.SUBMITTED, expected_attempt=1, now=clock(), reason="bad")
    job_finished(store, store.get("p-2"), clock(), emit=lambda line: None)  # type: ignore[arg-type]
    parent = store.get("p")
    assert parent is not None and parent.state == S.FAILED
    assert parent.reason == "3 children: 1 FAILED, 1 REJECTED, 1 SUCCEEDED; failed: p-0, p-2"


def test_a_parent_cancelled_during_its_fan_out_settles_after_its_enqueued_children(
    store: InMemoryJobStore, clock: ManualClock
) -> None:
    make_parent(store, clock, 4, enqueued=2)
    store.request_cancel("p", now=clock())
    for i in range(2):
        child = store.get(f"p-{i}")
        assert child is not None
        cancel = cancel_with_parent(store, child, "p", clock(), tasks=None, emit=lambda line: None)
        ended = cancel.record
        assert cancel.step == Step.CANCELLED
        assert ended.state == S.CANCELLED and ended.reason == "cancelled with its parent p before it started"
    parent = store.get("p")
    assert parent is not None and parent.state == S.CANCELLED
    assert parent.reason == "4 children: 2 CANCELLED (2 of 4 enqueued)"


def test_cancelling_a_child_under_way_only_flags_it(store: InMemoryJobStore, clock: ManualClock) -> None:
    make_parent(store, clock, 2)
    claimed = store.claim_launch("p-0", state=S.SUBMITTED, attempt=1, claim="A", now=clock())
    running = store.transition("p-1", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=clock())
    for child in (claimed, running):
        cancel = cancel_with_parent(store, child, "p", clock(), tasks=None)
        flagged = cancel.record
        assert cancel.step != Step.CANCELLED and flagged.state == child.state and flagged.cancel_requested
        assert flagged.reason == "cancelled with its parent p"


def test_a_submitted_parent_whose_children_all_succeeded_goes_through_running(
    store: InMemoryJobStore, clock: ManualClock
) -> None:
    store.create_if_absent("p", state=S.SUBMITTED, attempt=1, now=clock(), kind="array", array_size=1, enqueued=1)
    store.create_if_absent("p-0", state=S.SUBMITTED, attempt=1, now=clock(), parent_id="p", array_index=0)
    store.request_cancel("p", now=clock())  # too late: its only child was already under way
    end_child(store, clock, 0, S.SUCCEEDED)
    parent = store.get("p")
    assert parent is not None and parent.state == S.SUCCEEDED
    assert [h["to"] for h in parent.history] == ["SUBMITTED", "RUNNING", "SUCCEEDED"]


def test_a_child_known_only_by_its_spec_is_counted(store: InMemoryJobStore, clock: ManualClock) -> None:
    make_parent(store, clock, 2)
    spec = json.dumps({"command": ["python"], "parent_id": "p", "array_index": 0})
    _, child = store.create_if_absent("p-x", state=S.REJECTED, attempt=1, now=clock(), spec=spec)
    parent = on_child_finished(store, child, clock())
    assert parent is not None and parent.extra["children_finished"] == 1
    _, orphan = store.create_if_absent("solo", state=S.REJECTED, attempt=1, now=clock(), spec="not json")
    assert on_child_finished(store, orphan, clock()) is None


def test_a_settle_that_lost_the_race_returns_the_parent_as_settled(store: InMemoryJobStore, clock: ManualClock) -> None:
    stale = make_parent(store, clock, 1)
    end_child(store, clock, 0, S.SUCCEEDED)
    settled = settle(store, stale, clock())  # another child's end settled it meanwhile
    assert settled.state == S.SUCCEEDED and settled == store.get("p")


@pytest.mark.parametrize("enqueued", [0, 3])
def test_progress_counts_the_children_that_exist(store: InMemoryJobStore, clock: ManualClock, enqueued: int) -> None:
    parent = make_parent(store, clock, 3, enqueued=enqueued)
    state_of = progress(parent, children(store, parent))
    assert (state_of.size, state_of.enqueued, state_of.finished) == (3, enqueued, 0)
    assert state_of.derived_state(cancel_requested=False) is None
    assert state_of.bar(width=3) == "[...] 0/3"
