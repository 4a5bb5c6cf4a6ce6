"""lifecycle.reject on fakes: the DLQ copy, the REJECTED record and one metric line, whatever the redelivery."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import pytest

from fakes.clock import ManualClock
from fakes.queues import FakeQueues
from fakes.store import InMemoryJobStore
from jobs.errors import TransientAwsError
from jobs.messages import JOB_ID, REASON
from jobs.record import MAX_REASON_CHARS
from jobs.states import JobState
from lifecycle.reject import MAX_BODY_KEPT, reject

DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/dispatch-dlq"
WHY = "invalid job spec: command: field required"
S = JobState


@dataclass
class Rejecting:
    store: InMemoryJobStore
    queues: FakeQueues
    clock: ManualClock
    lines: list[str] = field(default_factory=list)
    """The metric lines the finished hook emitted."""

    def __call__(self, body: str, *, message_id: str = "m-1", reason: str = WHY, attempt: int = 1) -> str:
        return reject(
            store=self.store,
            queues=self.queues,
            clock=self.clock,
            dlq_url=DLQ,
            queue="dispatch",
            message_id=message_id,
            body=body,
            reason=reason,
            attempt=attempt,
            emit=self.lines.append,
        )


@pytest.fixture
def rejecting(store: InMemoryJobStore, queues: FakeQueues, clock: ManualClock) -> Rejecting:
    return Rejecting(store, queues, clock)


def test_a_bad_body_is_copied_to_the_dlq_and_its_job_rejected(rejecting: Rejecting) -> None:
    job_id = rejecting('{"image": "default"}')
    assert job_id == "sqs-m-1"  # no job id in the body: one derived from the message id
    (copy,) = rejecting.queues.messages(DLQ)
    assert copy.body == '{"image": "default"}'
    assert {name: value["StringValue"] for name, value in copy.attributes.items()} == {
        REASON: WHY,
        JOB_ID: "sqs-m-1",
        "source_message_id": "m-1",
    }
    job = rejecting.store.get(job_id)
    assert job is not None and (job.state, job.reason, job.queue) == (S.REJECTED, WHY, "dispatch")
    assert job.extra["body"] == '{"image": "default"}' and job.finished_at is not None
    (line,) = rejecting.lines
    metric = json.loads(line)
    assert (metric["job_id"], metric["State"], metric["Queue"]) == ("sqs-m-1", "REJECTED", "dispatch")


def test_a_body_with_a_valid_job_id_is_recorded_under_it(rejecting: Rejecting) -> None:
    assert rejecting('{"job_id": "train-7", "cpu": "lots"}') == "train-7"
    assert rejecting.store.get("train-7") is not None


def test_an_empty_body_and_a_long_reason_still_fit(rejecting: Rejecting) -> None:
    job_id = rejecting("", reason="x" * 5000)
    assert rejecting.queues.bodies(DLQ) == ["(empty body)"]
    job = rejecting.store.get(job_id)
    assert job is not None and job.reason is not None and len(job.reason) == MAX_REASON_CHARS
    rejecting("y" * (MAX_BODY_KEPT + 10), message_id="m-2")
    assert len(rejecting.store.get("sqs-m-2").extra["body"]) == MAX_BODY_KEPT  # type: ignore[union-attr]
    assert rejecting.queues.bodies(DLQ)[1] == "y" * (MAX_BODY_KEPT + 10)  # the DLQ keeps all of it


def test_a_duplicate_delivery_copies_again_but_ends_the_job_once(rejecting: Rejecting) -> None:
    rejecting("not json")
    rejecting.clock.advance(10)
    rejecting("not json", reason="seen again")
    assert len(rejecting.queues.messages(DLQ)) == 2
    job = rejecting.store.get("sqs-m-1")
    assert job is not None and job.reason == WHY and len(job.history) == 1
    assert len(rejecting.lines) == 1


def test_a_submitted_job_refused_by_the_deployment_is_rejected(rejecting: Rejecting) -> None:
    rejecting.store.create_if_absent("train-1", state=S.SUBMITTED, attempt=1, now=rejecting.clock(), queue="dispatch")
    rejecting.clock.advance(5)
    rejecting('{"job_id": "train-1", "image": "unknown"}', reason="invalid job spec: image: unknown")
    job = rejecting.store.get("train-1")
    assert job is not None and job.state == S.REJECTED and job.reason == "invalid job spec: image: unknown"
    assert [(h["from"], h["to"]) for h in job.history] == [(None, "SUBMITTED"), ("SUBMITTED", "REJECTED")]
    assert len(rejecting.lines) == 1


@pytest.mark.parametrize("case", ["claimed", "other attempt", "running"])
def test_an_existing_job_under_way_is_left_alone(
    rejecting: Rejecting, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    store, now = rejecting.store, rejecting.clock()
    store.create_if_absent("train-1", state=S.SUBMITTED, attempt=2 if case == "other attempt" else 1, now=now)
    if case == "claimed":
        store.claim_launch("train-1", state=S.SUBMITTED, attempt=1, claim="A", now=now)
    if case == "running":
        store.transition("train-1", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=now)
    before = store.get("train-1")
    with caplog.at_level(logging.WARNING, logger="lifecycle.reject"):
        rejecting('{"job_id": "train-1"}')
    assert store.get("train-1") == before and rejecting.lines == []
    assert len(rejecting.queues.messages(DLQ)) == 1 and "left the job alone" in caplog.text


def test_a_job_changed_under_the_rejection_is_left_alone(rejecting: Rejecting) -> None:
    store, now = rejecting.store, rejecting.clock()
    store.create_if_absent("train-1", state=S.SUBMITTED, attempt=1, now=now)

    def launched_meanwhile() -> None:
        store.transition("train-1", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=now)

    store.inject("transition", launched_meanwhile)
    rejecting('{"job_id": "train-1"}')
    assert store.get("train-1").state == S.RUNNING and rejecting.lines == []  # type: ignore[union-attr]


def test_the_dlq_copy_comes_first(rejecting: Rejecting) -> None:
    rejecting.queues.inject("send", TransientAwsError("SendMessage", "InternalError", "boom"))
    with pytest.raises(TransientAwsError):
        rejecting("not json")
    assert rejecting.store.get("sqs-m-1") is None  # no record without its DLQ copy
    rejecting.store.inject("create_if_absent", TransientAwsError("PutItem", "InternalServerError", "boom"))
    with pytest.raises(TransientAwsError):
        rejecting("not json")
    assert len(rejecting.queues.messages(DLQ)) == 1 and rejecting.store.get("sqs-m-1") is None
    rejecting("not json")  # the redelivery does both
    assert len(rejecting.queues.messages(DLQ)) == 2 and rejecting.store.get("sqs-m-1") is not None
    assert len(rejecting.lines) == 1
