"""Unit tests below the handler, with fakes (no moto): the decision's writes, the clock
tag codec, error translation, event parsing and settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from scaler_testkit import alarm_event, nudge_event, scaler_environment, schedule_event

from aws.clients import translate
from aws.ecs_service import EcsWorkerService, decode_clock, encode_clock
from jobs.errors import AwsCallError, ConfigError, QueueNotFound, RequestRejected, ServiceNotFound, Throttled
from lifecycle import scaling
from lifecycle.scaling import ServiceSnapshot, Trigger, TriggerKind, Write, reconcile
from lifecycle.scaling_policy import Decision, QueueState, ScalingConfig, ServiceState
from scaler.events import parse_trigger
from scaler.settings import Settings

NOW = 1_764_064_800.0
ARN = "arn:aws:ecs:us-east-1:123456789012:service/training/worker"
CFG = ScalingConfig(min_tasks=0, max_tasks=10, jobs_per_task=1, scale_in_grace_s=300)
TRIGGER = Trigger(TriggerKind.SCHEDULE)


@dataclass
class FakeQueue:
    state: QueueState

    def read(self) -> QueueState:
        return self.state


@dataclass
class FakeService:
    snapshot: ServiceSnapshot
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def read(self) -> ServiceSnapshot:
        return self.snapshot

    def set_desired(self, desired: int) -> None:
        self.calls.append(("set_desired", desired))

    def save_surplus_clock(self, service_arn: str, since: float, desired: int) -> None:
        self.calls.append(("save", service_arn, since, desired))

    def clear_surplus_clock(self, service_arn: str) -> None:
        self.calls.append(("clear", service_arn))


def run(
    queue: QueueState, desired: int, *, since: float | None = None, stale: bool = False
) -> tuple[scaling.Outcome, FakeService]:
    service = FakeService(
        ServiceSnapshot(ARN, ServiceState(desired, desired, 0), surplus_since=since, stale_clock=stale)
    )
    outcome = reconcile(trigger=TRIGGER, config=CFG, queue=FakeQueue(queue), service=service, now=NOW)
    return outcome, service


EMPTY = QueueState(0, 0, 0)


# --- which write a decision makes --------------------------------------------------------------


def test_steady_writes_nothing() -> None:
    outcome, service = run(QueueState(2, 1, 0), 3)
    assert (service.calls, outcome.writes, outcome.aws_calls) == ([], (), 2)


def test_scale_out_writes_only_the_count() -> None:
    outcome, service = run(QueueState(4, 0, 0), 1, since=NOW - 10)
    assert service.calls == [("set_desired", 4)]
    assert (outcome.writes, outcome.aws_calls, outcome.changed) == ((Write.UPDATE_SERVICE,), 3, True)


def test_surplus_saves_the_clock_bound_to_the_current_count() -> None:
    outcome, service = run(EMPTY, 3)
    assert service.calls == [("save", ARN, NOW, 3)]
    assert outcome.writes == (Write.SAVE_CLOCK,)


def test_hold_with_a_running_clock_writes_nothing() -> None:
    _, service = run(EMPTY, 3, since=NOW - 10)
    assert service.calls == []


def test_scale_in_writes_only_the_count() -> None:
    _, service = run(EMPTY, 3, since=NOW - 300)
    assert service.calls == [("set_desired", 0)]


def test_end_of_surplus_clears_the_clock() -> None:
    _, service = run(QueueState(3, 0, 0), 3, since=NOW - 10)
    assert service.calls == [("clear", ARN)]


def test_stale_clock_is_cleared_when_nothing_else_is_written() -> None:
    _, service = run(QueueState(3, 0, 0), 3, stale=True)
    assert service.calls == [("clear", ARN)]


def test_stale_clock_is_overwritten_when_a_new_clock_starts() -> None:
    _, service = run(EMPTY, 3, stale=True)
    assert service.calls == [("save", ARN, NOW, 3)]


def test_a_policy_that_changed_the_count_and_the_clock_together_would_still_be_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """scaling_policy never does this; the orchestration stays correct for any policy."""
    monkeypatch.setattr(scaling, "decide", lambda *a, **k: Decision(5, "custom", NOW))
    outcome, service = run(EMPTY, 3)
    assert service.calls == [("set_desired", 5), ("save", ARN, NOW, 5)]
    assert outcome.aws_calls == 4


def test_outcome_log_and_response() -> None:
    outcome, _ = run(QueueState(6, 0, 0), 2)
    assert outcome.as_response() == {"desired": 6, "previous_desired": 2, "reason": "backlog", "changed": True}
    assert outcome.backlog_per_task == 3.0
    assert outcome.as_log()["decision"] == {"desired": 6, "reason": "backlog", "surplus_since": None}
    assert "service" not in outcome.as_log()  # Powertools Logger owns that key


def test_backlog_per_task_with_no_running_task_is_the_backlog() -> None:
    outcome, _ = run(QueueState(5, 0, 0), 0)
    assert outcome.backlog_per_task == 5.0


# --- clock tag codec ---------------------------------------------------------------------------


def test_clock_round_trips_for_its_own_count() -> None:
    assert encode_clock(NOW + 0.1234, 4) == "1764064800.123@4"
    assert decode_clock("1764064800.123@4", 4) == (1764064800.123, False)


@pytest.mark.parametrize("value", ["1764064800.123@3", "garbage", "@4", "123@", "123@four", "nan@4"])
def test_clock_for_another_count_or_unreadable_is_stale(value: str) -> None:
    assert decode_clock(value, 4) == (None, True)


# --- error translation (the one place) ---------------------------------------------------------


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "Op")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ThrottlingException", Throttled),
        ("Throttling", Throttled),
        ("RequestThrottled", Throttled),
        ("TooManyRequestsException", Throttled),
        ("AWS.SimpleQueueService.NonExistentQueue", QueueNotFound),
        ("QueueDoesNotExist", QueueNotFound),
        ("ServiceNotFoundException", ServiceNotFound),
        ("ServiceNotActiveException", ServiceNotFound),
        ("ClusterNotFoundException", ServiceNotFound),
        ("AccessDeniedException", RequestRejected),
    ],
)
def test_client_errors_become_typed_errors(code: str, expected: type[Exception]) -> None:
    assert isinstance(translate("Op", client_error(code)), expected)


def test_other_aws_errors_keep_operation_and_code() -> None:
    error = translate("UpdateService", client_error("AccessDeniedException"))
    assert isinstance(error, RequestRejected)
    assert (error.operation, error.code) == ("UpdateService", "AccessDeniedException")


def test_network_errors_become_aws_call_errors() -> None:
    error = translate("DescribeServices", EndpointConnectionError(endpoint_url="https://ecs"))
    assert isinstance(error, AwsCallError)
    assert error.code == "EndpointConnectionError"


class _Ecs:
    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response

    def describe_services(self, **_: Any) -> dict[str, Any]:
        return self.response


@pytest.mark.parametrize(
    "response",
    [
        {"services": [], "failures": [{"arn": ARN, "reason": "MISSING"}]},
        {"services": [{"serviceArn": ARN, "status": "DRAINING", "desiredCount": 1}], "failures": []},
        {"services": [{"serviceArn": ARN, "status": "INACTIVE", "desiredCount": 0}], "failures": []},
    ],
)
def test_missing_or_inactive_service_is_service_not_found(response: dict[str, Any]) -> None:
    with pytest.raises(ServiceNotFound):
        EcsWorkerService(_Ecs(response), "training", "worker").read()


# --- event parsing -----------------------------------------------------------------------------


def test_alarm_event() -> None:
    trigger = parse_trigger(alarm_event(state="OK", previous="ALARM"))
    assert (trigger.kind, trigger.name, trigger.state) == (TriggerKind.ALARM, "training-worker-backlog", "OK")


def test_schedule_event() -> None:
    trigger = parse_trigger(schedule_event())
    assert trigger.kind == TriggerKind.SCHEDULE
    assert trigger.name == "arn:aws:events:us-east-1:123456789012:rule/training-scaler-reconcile"


def test_nudge_event() -> None:
    assert parse_trigger(nudge_event("burst")) == Trigger(
        TriggerKind.NUDGE, "6a7e8feb-b491-4cf7-a9f1-bf3703467718", name="burst"
    )


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "ping",
        {},
        {"source": ["aws.cloudwatch"], "detail-type": {"x": 1}},
        {"source": "aws.s3", "detail-type": "Object Created", "detail": {}},
    ],
)
def test_anything_else_is_a_manual_reconciliation(event: Any) -> None:
    assert parse_trigger(event).kind == TriggerKind.MANUAL


def test_malformed_parts_of_known_events_are_tolerated() -> None:
    alarm = {**alarm_event(), "detail": {"alarmName": 7, "state": "ALARM"}}
    assert parse_trigger(alarm) == Trigger(TriggerKind.ALARM, "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92")
    schedule = {**schedule_event(), "resources": []}
    assert parse_trigger(schedule).name is None
    nudge = {**nudge_event(), "detail": "not an object"}
    assert parse_trigger(nudge).name is None


# --- settings ----------------------------------------------------------------------------------


def test_settings_from_a_valid_environment() -> None:
    env = {**scaler_environment("https://sqs.us-east-1.amazonaws.com/1/q"), "SCALE_IN_GRACE_SECONDS": " 90.5 "}
    settings = Settings.from_env(env)
    assert settings.scaling == ScalingConfig(min_tasks=0, max_tasks=10, jobs_per_task=1, scale_in_grace_s=90.5)
    assert (settings.cluster_name, settings.service_name) == ("training", "worker")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WORKER_SERVICE_NAME", None, "WORKER_SERVICE_NAME: is not set"),
        ("WORKER_QUEUE_URL", "training-worker-queue", "WORKER_QUEUE_URL: must be an SQS queue URL"),
        ("MIN_WORKERS", "-1", "MIN_WORKERS: must be between 0 and 5000"),
        ("MAX_WORKERS", "5001", "MAX_WORKERS: must be between 0 and 5000"),
        ("JOBS_PER_WORKER", "1.5", "JOBS_PER_WORKER: must be an integer"),
        ("SCALE_IN_GRACE_SECONDS", "-5", "SCALE_IN_GRACE_SECONDS: must be between 0 and 86400"),
        ("SCALE_IN_GRACE_SECONDS", "inf", "SCALE_IN_GRACE_SECONDS: must be between 0 and 86400"),
    ],
)
def test_invalid_settings_name_the_variable(variable: str, value: str | None, message: str) -> None:
    env = scaler_environment("https://sqs.us-east-1.amazonaws.com/1/q")
    if value is None:
        del env[variable]
    else:
        env[variable] = value
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable
