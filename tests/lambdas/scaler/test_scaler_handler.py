"""Handler tests against moto (mock_aws) with AWS-documented event payloads: the worker
service's desired count really changes, the surplus clock lives in a service tag, and
every decision leaves one log line and one EMF document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from scaler_testkit import GRACE_S, Scaler, World

from aws.ecs_service import CLOCK_TAG

T0 = 1_764_064_800.0


def stdout_documents(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def decision_log(out: str) -> dict[str, Any]:
    logs = [doc for doc in stdout_documents(out) if doc.get("message") == "scaling decision"]
    assert len(logs) == 1, logs
    return logs[0]


def emf(out: str) -> dict[str, Any]:
    docs = [doc for doc in stdout_documents(out) if "_aws" in doc]
    assert len(docs) == 1, docs
    return docs[0]


def test_each_trigger_scales_out_from_zero(world: World, scaler: Scaler, any_trigger: dict[str, Any]) -> None:
    world.send(3)
    response = scaler(any_trigger, now=T0)
    assert world.desired() == 3
    assert response == {"desired": 3, "previous_desired": 0, "reason": "backlog", "changed": True}


def test_default_wiring_reads_the_environment_and_scales(world: World, lambda_context: Any, events: Any) -> None:
    from scaler.handler import handler

    world.send(2)
    assert handler(events.alarm(), lambda_context)["desired"] == 2
    assert world.desired() == 2


def test_in_flight_jobs_keep_their_workers(world: World, scaler: Scaler, events: Any) -> None:
    world.send(4)
    scaler(events.alarm(), now=T0)
    handles = world.take(4)  # four workers busy
    world.finish(handles[:2])  # two jobs done, two still running
    scaler(events.schedule(), now=T0 + 60)
    assert world.desired() == 4  # grace period started, holding
    scaler(events.schedule(), now=T0 + 60 + GRACE_S)
    assert world.desired() == 2  # scaled in, never below the 2 busy workers


def test_full_cycle_scale_out_hold_scale_in_and_clock_cleanup(world: World, scaler: Scaler, events: Any) -> None:
    world.send(2)
    scaler(events.alarm(), now=T0)
    assert (world.desired(), world.tags()) == (2, {})

    world.finish(world.take(2))  # both jobs done, queue empty
    first = scaler(events.schedule(), now=T0 + 60)
    assert first["reason"] == "grace_started"
    assert world.tags() == {CLOCK_TAG: f"{T0 + 60:.3f}@2"}

    held = scaler(events.schedule(), now=T0 + 60 + GRACE_S - 1)
    assert (held["reason"], world.desired()) == ("grace", 2)

    scaled = scaler(events.schedule(), now=T0 + 60 + GRACE_S)
    assert (scaled["reason"], world.desired()) == ("scale_in", 0)
    assert CLOCK_TAG in world.tags()  # left behind, bound to the old count: ignored

    steady = scaler(events.schedule(), now=T0 + 120 + GRACE_S)
    assert (steady["reason"], world.desired(), world.tags()) == ("steady", 0, {})


def test_work_arriving_during_the_grace_period_stops_the_clock(world: World, scaler: Scaler, events: Any) -> None:
    world.set_desired(3)
    scaler(events.schedule(), now=T0)
    assert CLOCK_TAG in world.tags()
    world.send(3)
    assert scaler(events.nudge(), now=T0 + 10)["reason"] == "steady"
    assert (world.desired(), world.tags()) == (3, {})


def test_scale_out_during_the_grace_period_leaves_a_stale_clock_that_never_counts(
    world: World, scaler: Scaler, events: Any
) -> None:
    world.set_desired(2)
    scaler(events.schedule(), now=T0)  # surplus clock starts at desired 2
    world.send(5)
    assert scaler(events.alarm(), now=T0 + 10)["desired"] == 5
    world.finish(world.take(5))
    # Long after the old clock started: a fresh clock starts, no scale-in yet.
    later = scaler(events.schedule(), now=T0 + 10 * GRACE_S)
    assert (later["reason"], world.desired()) == ("grace_started", 5)
    assert world.tags() == {CLOCK_TAG: f"{T0 + 10 * GRACE_S:.3f}@5"}


def test_unreadable_clock_tag_is_ignored_and_removed(world: World, scaler: Scaler, events: Any) -> None:
    world.ecs.tag_resource(resourceArn=world.service_arn, tags=[{"key": CLOCK_TAG, "value": "yesterday"}])
    assert scaler(events.schedule(), now=T0)["reason"] == "steady"
    assert world.tags() == {}


def test_a_desired_count_edited_above_max_is_corrected_at_once(world: World, scaler: Scaler, events: Any) -> None:
    world.set_desired(40)
    assert scaler(events.schedule(), now=T0)["reason"] == "above_max"
    assert world.desired() == 10


def test_delayed_messages_do_not_scale_out(world: World, scaler: Scaler, events: Any) -> None:
    world.send(3, delay_s=900)
    assert scaler(events.alarm(), now=T0)["reason"] == "steady"
    assert world.desired() == 0


def test_unknown_payload_is_a_manual_reconciliation(world: World, scaler: Scaler, stdout: Any) -> None:
    world.send(1)
    assert scaler({}, now=T0)["desired"] == 1
    assert decision_log(stdout())["trigger"]["kind"] == "manual"


def test_one_log_line_with_all_inputs_and_the_outcome(world: World, scaler: Scaler, events: Any, stdout: Any) -> None:
    world.send(3)
    world.take(1)
    scaler(events.alarm(), now=T0)
    log = decision_log(stdout())
    assert log["level"] == "INFO"
    assert log["trigger"] == {
        "kind": "alarm",
        "event_id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "name": "training-worker-backlog",
        "state": "ALARM",
    }
    assert log["queue"] == {"visible": 2, "in_flight": 1, "delayed": 0}
    assert log["worker_service"] == {"desired": 0, "running": 0, "pending": 0}
    assert log["config"] == {"min_tasks": 0, "max_tasks": 10, "jobs_per_task": 1, "scale_in_grace_s": GRACE_S}
    assert log["decision"] == {"desired": 3, "reason": "backlog", "surplus_since": None}
    assert log["now"] == T0
    assert (log["changed"], log["writes"], log["aws_calls"]) == (True, ["update_service"], 3)
    assert log["function_request_id"] == "3f0b2a4e-5c1d-4e8f-9a7b-1c2d3e4f5a6b"


def test_emf_metrics_backlog_per_task_desired_and_reason(
    world: World, scaler: Scaler, events: Any, stdout: Any
) -> None:
    world.set_desired(2)
    world.send(6)
    scaler(events.alarm(), now=T0)
    doc = emf(stdout())
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "TrainingAutoscaler"
    assert {m["Name"] for m in directive["Metrics"]} == {"BacklogPerTask", "DesiredTasks"}
    assert directive["Dimensions"] == [["service"]]
    assert (doc["service"], doc["DesiredTasks"], doc["BacklogPerTask"]) == ("scaler", [6.0], [3.0])
    assert (doc["reason"], doc["trigger"]) == ("backlog", "alarm")


# Without settings there is nothing to measure: Powertools warns that no metrics were added.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WORKER_QUEUE_URL", None, "WORKER_QUEUE_URL: is not set"),
        ("CLUSTER_NAME", "  ", "CLUSTER_NAME: is empty"),
        ("MAX_WORKERS", "lots", "MAX_WORKERS: must be an integer"),
        ("MIN_WORKERS", "11", "MAX_WORKERS: must be >= MIN_WORKERS"),
        ("JOBS_PER_WORKER", "0", "JOBS_PER_WORKER: must be between 1 and"),
        ("SCALE_IN_GRACE_SECONDS", "nan", "SCALE_IN_GRACE_SECONDS: must be between 0 and"),
        ("SCALE_IN_GRACE_SECONDS", "soon", "SCALE_IN_GRACE_SECONDS: must be a number"),
        ("POWERTOOLS_METRICS_NAMESPACE", None, "POWERTOOLS_METRICS_NAMESPACE: is not set"),
    ],
)
def test_bad_settings_fail_loudly_naming_the_variable(
    world: World,
    lambda_context: Any,
    events: Any,
    monkeypatch: pytest.MonkeyPatch,
    stdout: Any,
    variable: str,
    value: str | None,
    message: str,
) -> None:
    from jobs.errors import ConfigError
    from scaler.handler import handler

    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    world.send(1)
    with pytest.raises(ConfigError, match=message):
        handler(events.schedule(), lambda_context)
    assert world.desired() == 0
    failure = [d for d in stdout_documents(stdout()) if d.get("message") == "scaling decision failed"]
    assert failure[0]["error_type"] == "ConfigError"


def test_missing_queue_is_a_typed_error(world: World, scaler: Scaler, events: Any, stdout: Any) -> None:
    from jobs.errors import QueueNotFound

    world.sqs.delete_queue(QueueUrl=world.queue_url)
    with pytest.raises(QueueNotFound):
        scaler(events.schedule(), now=T0)
    out = stdout()
    assert emf(out)["ScalerErrors"] == [1.0]
    assert world.desired() == 0


def test_missing_service_is_a_typed_error(world: World, scaler: Scaler, events: Any) -> None:
    from jobs.errors import ServiceNotFound

    world.ecs.delete_service(cluster="training", service="worker", force=True)
    with pytest.raises(ServiceNotFound):
        scaler(events.schedule(), now=T0)


def test_missing_cluster_is_a_typed_error(
    world: World, scaler: Scaler, events: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs.errors import ServiceNotFound

    monkeypatch.setenv("CLUSTER_NAME", "no-such-cluster")
    with pytest.raises(ServiceNotFound):
        scaler(events.schedule(), now=T0)
