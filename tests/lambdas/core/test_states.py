"""The job state machine: pure, no mocks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jobs.states import (
    ACTIVE,
    INITIAL,
    TERMINAL,
    TRANSITIONS,
    WAITING,
    JobState,
    can_transition,
)

S = JobState


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(JobState)


def test_terminal_states_have_no_way_out() -> None:
    assert {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.REJECTED} == TERMINAL
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()


def test_nothing_goes_back_to_submitted_and_no_self_loops() -> None:
    for state, targets in TRANSITIONS.items():
        assert S.SUBMITTED not in targets
        assert state not in targets


def test_the_documented_paths() -> None:
    assert can_transition(S.SUBMITTED, S.DISPATCHED)
    assert can_transition(S.SUBMITTED, S.RUNNING)  # worker-queue jobs
    assert can_transition(S.SUBMITTED, S.REJECTED)
    assert can_transition(S.DISPATCHED, S.RUNNING)
    assert can_transition(S.DISPATCHED, S.SUCCEEDED)  # the RUNNING event was missed
    assert can_transition(S.RUNNING, S.RETRYING)
    assert can_transition(S.RETRYING, S.DISPATCHED)
    assert can_transition(S.RETRYING, S.RUNNING)
    assert not can_transition(S.RUNNING, S.DISPATCHED)
    assert not can_transition(S.RETRYING, S.REJECTED)
    assert not can_transition(S.SUCCEEDED, S.FAILED)


def test_groups_partition_the_states() -> None:
    assert set(JobState) == WAITING | ACTIVE | TERMINAL
    assert not (WAITING & ACTIVE) and not (WAITING & TERMINAL) and not (ACTIVE & TERMINAL)
    assert {S.SUBMITTED, S.REJECTED} == INITIAL


def test_only_waiting_states_lead_to_a_launch() -> None:
    assert {s for s, nxt in TRANSITIONS.items() if S.DISPATCHED in nxt} == {S.SUBMITTED, S.RETRYING}
    assert not any(S.SUBMITTED in nxt for nxt in TRANSITIONS.values())


def test_every_state_can_reach_a_terminal_state() -> None:
    for start in JobState:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert seen & TERMINAL


@given(st.lists(st.sampled_from(list(JobState)), max_size=40))
def test_a_walk_never_leaves_a_terminal_state(steps: list[JobState]) -> None:
    state = S.SUBMITTED
    for target in steps:
        if can_transition(state, target):
            assert state not in TERMINAL
            state = target
    if state in TERMINAL:
        assert all(not can_transition(state, t) for t in JobState)
