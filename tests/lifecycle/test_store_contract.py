"""DynamoJobStore against moto DynamoDB: conditional writes, history, claims, the by-state index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aws.job_store import DynamoJobStore, from_attr, to_attr
from jobs.errors import InvalidTransition, JobStateConflict
from jobs.record import JobRecord
from jobs.states import JobState
from tests.lambdas.core.helpers import World

S = JobState
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(world: World, clients: dict[str, Any]) -> DynamoJobStore:
    return DynamoJobStore(clients["dynamodb"], world.table)


def test_codec_round_trip() -> None:
    value = {"a": 1, "b": 2.5, "c": "x", "d": True, "e": None, "f": [1, {"g": "h"}]}
    assert from_attr(to_attr(value)) == value
    with pytest.raises(TypeError):
        to_attr(object())


def test_create_if_absent_is_idempotent(store: DynamoJobStore) -> None:
    created, first = store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0, spec="{}", queue="dispatch")
    assert created and first.state == S.SUBMITTED and first.submitted_at == "2026-11-25T12:00:00.000Z"
    again, existing = store.create_if_absent("j1", state=S.REJECTED, attempt=1, now=T0 + timedelta(1), reason="x")
    assert not again
    assert existing.state == S.SUBMITTED and existing.reason is None  # the existing record, untouched
    assert store.get("j1") == existing


def test_cannot_create_in_a_later_state(store: DynamoJobStore) -> None:
    with pytest.raises(InvalidTransition):
        store.create_if_absent("j1", state=S.RUNNING, attempt=1, now=T0)


def test_transition_records_history_timestamps_and_fields(store: DynamoJobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    job = store.transition(
        "j1",
        S.DISPATCHED,
        expected_states=S.SUBMITTED,
        expected_attempt=1,
        now=T0 + timedelta(seconds=5),
        task_arn="arn:task/1",
        capacity_provider="FARGATE_SPOT",
    )
    assert job.state == S.DISPATCHED and job.task_arn == "arn:task/1" and job.capacity_provider == "FARGATE_SPOT"
    assert job.dispatched_at == job.updated_at == "2026-11-25T12:00:05.000Z"
    job = store.transition(
        "j1",
        S.FAILED,
        expected_states=S.DISPATCHED,
        expected_attempt=1,
        expected_task_arn="arn:task/1",
        now=T0 + timedelta(seconds=9),
        reason="exit 3",
        exit_code=3,
    )
    assert job.finished_at == "2026-11-25T12:00:09.000Z" and job.exit_code == 3 and job.reason == "exit 3"
    assert [(h["from"], h["to"], h.get("reason")) for h in job.history] == [
        (None, "SUBMITTED", None),
        ("SUBMITTED", "DISPATCHED", None),
        ("DISPATCHED", "FAILED", "exit 3"),
    ]


def test_no_going_backwards(store: DynamoJobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    store.transition("j1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=T0)
    with pytest.raises(InvalidTransition, match="RUNNING -> DISPATCHED is not allowed"):
        store.transition("j1", S.DISPATCHED, expected_states=S.RUNNING, expected_attempt=1, now=T0)


def test_lost_update_is_refused_with_the_current_record(store: DynamoJobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    store.transition("j1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=T0, task_arn="t1")
    with pytest.raises(JobStateConflict) as caught:  # a second writer that read the old state
        store.transition("j1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=T0, task_arn="t2")
    assert caught.value.current is not None and caught.value.current.task_arn == "t1"
    assert store.get("j1").task_arn == "t1"  # type: ignore[union-attr]


def test_attempt_and_task_arn_guard_the_write(store: DynamoJobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=2, now=T0)
    with pytest.raises(JobStateConflict):
        store.transition("j1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=T0)
    store.transition("j1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=2, now=T0, task_arn="t2")
    with pytest.raises(JobStateConflict):
        store.transition(
            "j1", S.RUNNING, expected_states=S.DISPATCHED, expected_attempt=2, expected_task_arn="t-old", now=T0
        )


def test_transition_of_a_missing_job_conflicts(store: DynamoJobStore) -> None:
    with pytest.raises(JobStateConflict) as caught:
        store.transition("ghost", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=T0)
    assert caught.value.current is None


def test_retry_bumps_the_attempt_in_the_same_write(store: DynamoJobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    store.transition("j1", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=T0)
    job = store.transition(
        "j1", S.RETRYING, expected_states=S.RUNNING, expected_attempt=1, now=T0, reason="exit 1", attempt=2, failures=1
    )
    assert (job.attempt, job.failures, job.state) == (2, 1, S.RETRYING)


def test_annotate_changes_the_reason_without_growing_history(store: DynamoJobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    for i in range(3):
        job = store.annotate("j1", expected_states=S.SUBMITTED, expected_attempt=1, now=T0, reason=f"waiting {i}")
    assert job.reason == "waiting 2" and len(job.history) == 1
    with pytest.raises(JobStateConflict):
        store.annotate("j1", expected_states=S.RUNNING, expected_attempt=1, now=T0, reason="x")


def test_only_one_consumer_can_claim_a_launch(store: DynamoJobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    claimed = store.claim_launch("j1", state=S.SUBMITTED, attempt=1, claim="A", now=T0)
    assert claimed.launch_claim == "A" and claimed.launch_claimed_at == "2026-11-25T12:00:00.000Z"
    with pytest.raises(JobStateConflict):
        store.claim_launch("j1", state=S.SUBMITTED, attempt=1, claim="B", now=T0)
    # A takeover names the claim it replaces: only one of two recoverers wins.
    store.claim_launch("j1", state=S.SUBMITTED, attempt=1, claim="B", now=T0, takeover_from="A")
    with pytest.raises(JobStateConflict):
        store.claim_launch("j1", state=S.SUBMITTED, attempt=1, claim="C", now=T0, takeover_from="A")
    with pytest.raises(JobStateConflict):  # the DISPATCHED write is guarded by the claim too
        store.transition(
            "j1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, expected_claim="A", now=T0
        )
    released = store.release_claim("j1", state=S.SUBMITTED, attempt=1, claim="B", now=T0, reason="throttled")
    assert released.launch_claim is None and released.reason == "throttled"


def test_a_cancel_request_blocks_the_claim(store: DynamoJobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    assert store.request_cancel("j1", now=T0).cancel_requested
    with pytest.raises(JobStateConflict):
        store.claim_launch("j1", state=S.SUBMITTED, attempt=1, claim="A", now=T0)


def test_cancel_request_on_a_finished_job_conflicts(store: DynamoJobStore) -> None:
    store.create_if_absent("j1", state=S.REJECTED, attempt=1, now=T0, reason="bad")
    with pytest.raises(JobStateConflict):
        store.request_cancel("j1", now=T0)


def test_query_by_state_uses_the_index(store: DynamoJobStore) -> None:
    for i in range(5):
        store.create_if_absent(f"j{i}", state=S.SUBMITTED, attempt=1, now=T0 + timedelta(minutes=i), queue="dispatch")
    store.create_if_absent("w1", state=S.SUBMITTED, attempt=1, now=T0, queue="worker")
    store.transition("j4", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=T0)
    found = list(store.query_state(S.SUBMITTED, queue="dispatch"))
    assert sorted(j.job_id for j in found) == ["j0", "j1", "j2", "j3"]
    older = list(store.query_state(S.SUBMITTED, updated_before="2026-11-25T12:02:00.000Z"))
    assert sorted(j.job_id for j in older) == ["j0", "j1", "w1"]
    assert [j.job_id for j in store.query_state(S.DISPATCHED)] == ["j4"]


def test_records_keep_unknown_attributes_in_extra(store: DynamoJobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0, prefer_on_demand=True)
    job = store.get("j1")
    assert isinstance(job, JobRecord) and job.extra == {"prefer_on_demand": True}
    assert store.get("nope") is None
