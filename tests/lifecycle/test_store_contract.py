"""One suite, every JobStore: DynamoJobStore against moto DynamoDB and the in-memory fake run the same tests
(conditional writes, history, claims, the by-state index), so the fake cannot drift from the adapter."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from aws.job_store import DynamoJobStore, decode_item, encode
from contracts import STATE_INDEX, TABLE_PARTITION_KEY
from fakes.store import InMemoryJobStore
from jobs.errors import InvalidTransition, JobStateConflict
from jobs.gang import RENDEZVOUS
from jobs.record import NO_CLAIM, JobRecord
from jobs.states import JobState
from lifecycle.ports import JobStore

S = JobState
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REGION = "us-east-1"


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


@pytest.fixture
def dynamo_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoJobStore]:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = _session().client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="jobs",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": TABLE_PARTITION_KEY, "AttributeType": "S"},
                {"AttributeName": "state", "AttributeType": "S"},
                {"AttributeName": "updated_at", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": TABLE_PARTITION_KEY, "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": STATE_INDEX,
                    "KeySchema": [
                        {"AttributeName": "state", "KeyType": "HASH"},
                        {"AttributeName": "updated_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        yield DynamoJobStore(client, "jobs")


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> JobStore:
    if request.param == "memory":
        return InMemoryJobStore()
    dynamo: DynamoJobStore = request.getfixturevalue("dynamo_store")
    return dynamo


# --- DynamoJobStore's attribute values ------------------------------------------------------------


def test_codec_round_trip() -> None:
    value = {"a": 1, "b": 2.5, "c": "x", "d": True, "e": None, "f": [1, {"g": "h"}]}
    assert decode_item({"v": encode(value)})["v"] == value
    with pytest.raises(TypeError):
        encode(object())


def test_numbers_come_back_as_they_went_in() -> None:
    values = [0, 3, -7, 2.0, 0.1, 1e-07, 1e20, 123456789012345678901234567890]
    decoded = decode_item({str(i): encode(v) for i, v in enumerate(values)})
    assert [decoded[str(i)] for i in range(len(values))] == values
    assert [type(decoded[str(i)]) for i in range(len(values))] == [type(v) for v in values]
    assert decode_item({"n": {"N": "5"}, "s": {"SS": ["b", "a"]}}) == {"n": 5, "s": ["a", "b"]}


# --- the contract ----------------------------------------------------------------------------------


def test_create_if_absent_is_idempotent(store: JobStore) -> None:
    created, first = store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0, spec="{}", queue="dispatch")
    assert created and first.state == S.SUBMITTED and first.submitted_at == "2026-11-25T12:00:00.000Z"
    again, existing = store.create_if_absent("j1", state=S.REJECTED, attempt=1, now=T0 + timedelta(1), reason="x")
    assert not again
    assert existing.state == S.SUBMITTED and existing.reason is None  # the existing record, untouched
    assert store.get("j1") == existing


def test_cannot_create_in_a_later_state(store: JobStore) -> None:
    with pytest.raises(InvalidTransition):
        store.create_if_absent("j1", state=S.RUNNING, attempt=1, now=T0)


def test_a_job_created_rejected_is_finished(store: JobStore) -> None:
    _, job = store.create_if_absent("j1", state=S.REJECTED, attempt=1, now=T0, reason="bad", queue="dispatch")
    assert job.finished_at == job.submitted_at == job.updated_at == "2026-11-25T12:00:00.000Z"
    assert job.history == ({"at": "2026-11-25T12:00:00.000Z", "from": None, "to": "REJECTED", "reason": "bad"},)


def test_transition_records_history_timestamps_and_fields(store: JobStore) -> None:
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


def test_history_names_every_expected_state(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    job = store.transition("j1", S.CANCELLED, expected_states=(S.SUBMITTED, S.RETRYING), expected_attempt=1, now=T0)
    assert job.history[-1] == {"at": "2026-11-25T12:00:00.000Z", "from": "RETRYING|SUBMITTED", "to": "CANCELLED"}


def test_none_removes_a_field_and_a_given_state_timestamp_wins(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0, reason="waiting")
    store.transition("j1", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=T0, task_arn="t1")
    job = store.transition(
        "j1",
        S.RETRYING,
        expected_states=S.RUNNING,
        expected_attempt=1,
        now=T0 + timedelta(seconds=1),
        task_arn=None,
        started_at="2026-11-25T11:59:00.000Z",
    )
    assert job.task_arn is None and job.reason is None and job.started_at == "2026-11-25T11:59:00.000Z"
    job = store.transition(
        "j1", S.FAILED, expected_states=S.RETRYING, expected_attempt=1, now=T0, finished_at="2026-11-25T13:00:00.000Z"
    )
    assert job.finished_at == "2026-11-25T13:00:00.000Z" and job.updated_at == "2026-11-25T12:00:00.000Z"


def test_a_field_the_store_sets_itself_is_refused(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    with pytest.raises(ValueError, match="updated_at"):
        store.annotate("j1", expected_states=S.SUBMITTED, expected_attempt=1, now=T0, reason=None, updated_at="x")
    with pytest.raises(ValueError, match="history"):
        store.transition("j1", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=T0, history=[])


def test_no_going_backwards(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    store.transition("j1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=T0)
    with pytest.raises(InvalidTransition, match="RUNNING -> DISPATCHED is not allowed"):
        store.transition("j1", S.DISPATCHED, expected_states=S.RUNNING, expected_attempt=1, now=T0)
    with pytest.raises(InvalidTransition, match="empty"):
        store.transition("j1", S.RUNNING, expected_states=(), expected_attempt=1, now=T0)


def test_lost_update_is_refused_with_the_current_record(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    store.transition("j1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=T0, task_arn="t1")
    with pytest.raises(JobStateConflict) as caught:  # a second writer that read the old state
        store.transition("j1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=T0, task_arn="t2")
    assert caught.value.current is not None and caught.value.current.task_arn == "t1"
    assert store.get("j1").task_arn == "t1"  # type: ignore[union-attr]
    assert str(caught.value) == "job 'j1': expected SUBMITTED attempt 1, found DISPATCHED attempt 1"


def test_attempt_and_task_arn_guard_the_write(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=2, now=T0)
    with pytest.raises(JobStateConflict):
        store.transition("j1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=T0)
    store.transition("j1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=2, now=T0, task_arn="t2")
    with pytest.raises(JobStateConflict):
        store.transition(
            "j1", S.RUNNING, expected_states=S.DISPATCHED, expected_attempt=2, expected_task_arn="t-old", now=T0
        )


def test_transition_of_a_missing_job_conflicts(store: JobStore) -> None:
    with pytest.raises(JobStateConflict) as caught:
        store.transition("ghost", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=T0)
    assert caught.value.current is None


def test_retry_bumps_the_attempt_in_the_same_write(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    store.transition("j1", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=T0)
    job = store.transition(
        "j1", S.RETRYING, expected_states=S.RUNNING, expected_attempt=1, now=T0, reason="exit 1", attempt=2, failures=1
    )
    assert (job.attempt, job.failures, job.state) == (2, 1, S.RETRYING)


def test_annotate_changes_the_reason_without_growing_history(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    for i in range(3):
        job = store.annotate("j1", expected_states=S.SUBMITTED, expected_attempt=1, now=T0, reason=f"waiting {i}")
    assert job.reason == "waiting 2" and len(job.history) == 1
    with pytest.raises(JobStateConflict):
        store.annotate("j1", expected_states=S.RUNNING, expected_attempt=1, now=T0, reason="x")


def test_annotate_can_require_the_claim(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    store.claim_launch("j1", state=S.SUBMITTED, attempt=1, claim="A", now=T0)
    job = store.annotate(
        "j1",
        expected_states=S.SUBMITTED,
        expected_attempt=1,
        now=T0,
        reason="launching",
        expected_claim="A",
        deferrals=2,
    )
    assert job.reason == "launching" and job.extra["deferrals"] == 2
    with pytest.raises(JobStateConflict) as caught:
        store.annotate("j1", expected_states=S.SUBMITTED, expected_attempt=1, now=T0, reason="x", expected_claim="B")
    assert str(caught.value) == "job 'j1': expected SUBMITTED attempt 1, found SUBMITTED attempt 1"


def test_only_one_consumer_can_claim_a_launch(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    claimed = store.claim_launch("j1", state=S.SUBMITTED, attempt=1, claim="A", now=T0)
    assert claimed.launch_claim == "A" and claimed.launch_claimed_at == "2026-11-25T12:00:00.000Z"
    with pytest.raises(JobStateConflict) as caught:
        store.claim_launch("j1", state=S.SUBMITTED, attempt=1, claim="B", now=T0)
    assert "expected SUBMITTED attempt 1 unclaimed" in str(caught.value)
    # A takeover names the claim it replaces: only one of two recoverers wins.
    store.claim_launch("j1", state=S.SUBMITTED, attempt=1, claim="B", now=T0, takeover_from="A")
    with pytest.raises(JobStateConflict):
        store.claim_launch("j1", state=S.SUBMITTED, attempt=1, claim="C", now=T0, takeover_from="A")
    with pytest.raises(JobStateConflict):  # the DISPATCHED write is guarded by the claim too
        store.transition(
            "j1", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, expected_claim="A", now=T0
        )
    with pytest.raises(JobStateConflict) as caught:
        store.release_claim("j1", state=S.SUBMITTED, attempt=1, claim="A", now=T0, reason="throttled")
    assert "expected SUBMITTED attempt 1 claimed by A" in str(caught.value)
    released = store.release_claim("j1", state=S.SUBMITTED, attempt=1, claim="B", now=T0, reason="throttled")
    assert released.launch_claim is None and released.reason == "throttled"


def test_no_claim_means_the_job_holds_none(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    store.create_if_absent("j2", state=S.SUBMITTED, attempt=1, now=T0)
    store.claim_launch("j2", state=S.SUBMITTED, attempt=1, claim="A", now=T0)
    job = store.transition(
        "j1", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, expected_claim=NO_CLAIM, now=T0
    )
    assert job.state == S.RUNNING
    with pytest.raises(JobStateConflict):
        store.transition(
            "j2", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, expected_claim=NO_CLAIM, now=T0
        )


def test_a_claim_removes_the_gang_rendezvous(store: JobStore) -> None:
    published: dict[str, Any] = {RENDEZVOUS: {"host": "10.0.0.1"}}
    store.create_if_absent("g1", state=S.SUBMITTED, attempt=1, now=T0, **published)
    assert RENDEZVOUS in store.get("g1").extra  # type: ignore[union-attr]
    claimed = store.claim_launch("g1", state=S.SUBMITTED, attempt=1, claim="A", now=T0 + timedelta(seconds=1))
    assert RENDEZVOUS not in claimed.extra and claimed.updated_at == "2026-11-25T12:00:01.000Z"
    assert len(claimed.history) == 1


def test_a_cancel_request_blocks_the_claim(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    assert store.request_cancel("j1", now=T0).cancel_requested
    with pytest.raises(JobStateConflict):
        store.claim_launch("j1", state=S.SUBMITTED, attempt=1, claim="A", now=T0)


def test_a_cancel_request_keeps_the_state_and_says_why(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0)
    store.transition("j1", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=T0)
    job = store.request_cancel("j1", now=T0 + timedelta(seconds=3), reason="cancelled by trainctl")
    assert (job.state, job.reason, job.cancel_requested) == (S.RUNNING, "cancelled by trainctl", True)
    assert job.updated_at == "2026-11-25T12:00:03.000Z" and len(job.history) == 2


def test_cancel_request_on_a_finished_job_conflicts(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.REJECTED, attempt=1, now=T0, reason="bad")
    with pytest.raises(JobStateConflict) as caught:
        store.request_cancel("j1", now=T0)
    assert str(caught.value) == "job 'j1': expected a non-terminal state, found REJECTED attempt 1"


def test_add_to_counts_from_zero_on_an_existing_job(store: JobStore) -> None:
    store.create_if_absent("p1", state=S.SUBMITTED, attempt=1, now=T0)
    store.add_to("p1", "children_finished", 1, now=T0)
    job = store.add_to("p1", "children_finished", 2, now=T0 + timedelta(seconds=1))
    assert job.extra["children_finished"] == 3 and job.updated_at == "2026-11-25T12:00:01.000Z"
    with pytest.raises(JobStateConflict) as caught:
        store.add_to("ghost", "children_finished", 1, now=T0)
    assert caught.value.current is None
    assert str(caught.value) == "job 'ghost': expected an existing job, found missing"


def test_get_many_reads_every_id_once(store: JobStore) -> None:
    ids = [f"c-{i}" for i in range(150)]
    for job_id in ids[::2]:
        store.create_if_absent(job_id, state=S.SUBMITTED, attempt=1, now=T0)
    found = store.get_many([*ids, *ids[:10]])
    assert sorted(found) == sorted(ids[::2])
    assert all(record.job_id == job_id for job_id, record in found.items())
    assert store.get_many([]) == {}


def test_query_by_state_uses_the_index(store: JobStore) -> None:
    for i in range(5):
        store.create_if_absent(f"j{i}", state=S.SUBMITTED, attempt=1, now=T0 + timedelta(minutes=i), queue="dispatch")
    store.create_if_absent("w1", state=S.SUBMITTED, attempt=1, now=T0, queue="worker")
    store.transition("j4", S.DISPATCHED, expected_states=S.SUBMITTED, expected_attempt=1, now=T0)
    found = list(store.query_state(S.SUBMITTED, queue="dispatch"))
    assert sorted(j.job_id for j in found) == ["j0", "j1", "j2", "j3"]
    older = list(store.query_state(S.SUBMITTED, updated_before="2026-11-25T12:02:00.000Z"))
    assert sorted(j.job_id for j in older) == ["j0", "j1", "w1"]
    assert [j.job_id for j in store.query_state(S.DISPATCHED)] == ["j4"]


def test_query_by_state_lists_the_oldest_update_first(store: JobStore) -> None:
    for i in range(3):
        store.create_if_absent(f"j{i}", state=S.SUBMITTED, attempt=1, now=T0 + timedelta(minutes=i))
    store.annotate("j0", expected_states=S.SUBMITTED, expected_attempt=1, now=T0 + timedelta(minutes=5), reason="x")
    assert [j.job_id for j in store.query_state(S.SUBMITTED)] == ["j1", "j2", "j0"]


def test_items_whose_key_holds_a_hash_are_not_jobs(store: JobStore) -> None:
    store.create_if_absent("j1#aux", state=S.SUBMITTED, attempt=1, now=T0)
    assert list(store.query_state(S.SUBMITTED)) == []
    assert store.get("j1#aux") is not None


def test_values_come_back_as_they_went_in(store: JobStore) -> None:
    values: dict[str, Any] = {
        "cost_usd": 0.0,
        "vcpu_seconds": 2.0,
        "saving_usd": 0.125,
        "children_total": 4,
        "prefer_on_demand": False,
        "usage": [{"seconds": 61.5, "vcpu": 1, "provider": "FARGATE_SPOT"}],
        "ranks": ("a", "b"),
    }
    _, created = store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0, **values)
    read = store.get("j1")
    assert read is not None
    expected = {**values, "ranks": ["a", "b"]}
    for record in (created, read):
        assert dict(record.extra) == expected
        assert {k: type(v) for k, v in record.extra.items()} == {k: type(v) for k, v in expected.items()}


def test_what_dynamodb_cannot_hold_is_refused(store: JobStore) -> None:
    with pytest.raises(TypeError):
        store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0, blob=object())


def test_records_keep_unknown_attributes_in_extra(store: JobStore) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=T0, prefer_on_demand=True)
    job = store.get("j1")
    assert isinstance(job, JobRecord) and job.extra == {"prefer_on_demand": True}
    assert store.get("nope") is None
