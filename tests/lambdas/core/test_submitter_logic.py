"""Submitter decisions and launch plans: pure, no mocks."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.jobspec import JobSpec
from jobs.record import JobRecord
from jobs.states import JobState
from jobs.timeutil import iso
from lifecycle.dispatch_rules import (
    LAUNCH_LEASE_SECONDS,
    MAX_DEFER_SECONDS,
    CancelWaiting,
    Defer,
    Expire,
    Launch,
    Skip,
    after_lost_claim,
    backoff_seconds,
    decide,
    stop_after_lost_claim,
)
from lifecycle.launch_plan import (
    LaunchConfig,
    Launched,
    LaunchFailed,
    NoCapacity,
    OverridesTooLarge,
    choose_providers,
    plan_launch,
    read_run_task,
)

S = JobState
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CONFIG = LaunchConfig(
    cluster="training",
    task_definitions={"default": "arn:aws:ecs:us-east-1:1:task-definition/training:3"},
    gpu_task_definitions={"default": "arn:aws:ecs:us-east-1:1:task-definition/training-gpu:1"},
    gpu_capacity_provider="gpu-spot",
    subnet_ids=("subnet-a", "subnet-b"),
    security_group_ids=("sg-1",),
    artifacts_bucket="artifacts",
)


def job(state: JobState = S.SUBMITTED, attempt: int = 1, **fields: Any) -> JobRecord:
    return JobRecord(job_id="j1", state=state, attempt=attempt, **fields)


def spec(**fields: Any) -> JobSpec:
    return JobSpec.model_validate({"job_id": "j1", "command": ["python", "train.py"], "dedicated": True, **fields})


def run(record: JobRecord, attempt: int = 1, room: bool = True) -> Any:
    return decide(job=record, spec=spec(), message_attempt=attempt, now=NOW, room=room, room_reason="cap reached")


# --- decide ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [S.SUCCEEDED, S.FAILED, S.CANCELLED, S.REJECTED])
def test_finished_jobs_are_skipped(state: JobState) -> None:
    assert run(job(state)) == Skip(f"job already {state}")


@pytest.mark.parametrize("state", [S.DISPATCHED, S.RUNNING])
def test_launched_attempts_are_skipped(state: JobState) -> None:
    decision = run(job(state, task_arn="t1"))
    assert isinstance(decision, Skip) and "already launched" in decision.reason


def test_messages_for_other_attempts_are_skipped() -> None:
    assert isinstance(run(job(S.RETRYING, attempt=3), attempt=2), Skip)
    assert isinstance(run(job(S.SUBMITTED, attempt=1), attempt=2), Skip)


@pytest.mark.parametrize("state", [S.SUBMITTED, S.RETRYING])
def test_waiting_jobs_launch_when_there_is_room(state: JobState) -> None:
    assert run(job(state)) == Launch()
    assert run(job(state), room=False) == Defer("cap reached")


def test_a_fresh_claim_defers_and_an_expired_claim_is_taken_over() -> None:
    claimed = job(launch_claim="req:msg", launch_claimed_at=iso(NOW - timedelta(seconds=10)))
    decision = run(claimed)
    assert isinstance(decision, Defer) and "in progress elsewhere" in decision.reason
    expired = replace(claimed, launch_claimed_at=iso(NOW - timedelta(seconds=LAUNCH_LEASE_SECONDS)))
    assert run(expired) == Launch(takeover="req:msg")
    assert run(expired, room=False) == Launch(takeover="req:msg")  # recovery first looks for the task


def test_cancelled_waiting_job() -> None:
    assert isinstance(run(job(cancel_requested=True)), CancelWaiting)


def test_a_cancel_waits_for_a_live_launch_claim() -> None:
    claimed = job(cancel_requested=True, launch_claim="req:msg", launch_claimed_at=iso(NOW - timedelta(seconds=10)))
    assert isinstance(run(claimed), Defer)  # the claim holder's record stops its task
    expired = replace(claimed, launch_claimed_at=iso(NOW - timedelta(seconds=LAUNCH_LEASE_SECONDS)))
    assert isinstance(run(expired), CancelWaiting)  # the service stops whatever the lost launch started


def test_a_waiting_job_past_its_max_wait_fail_expires_unless_a_launch_is_in_progress() -> None:
    patient = spec(max_wait={"seconds": 60, "action": "FAIL"})
    late = job(submitted_at=iso(NOW - timedelta(seconds=61)), reason="cap reached")
    decision = decide(job=late, spec=patient, message_attempt=1, now=NOW, room=True, room_reason="")
    assert isinstance(decision, Expire) and "max_wait=60" in decision.reason
    claimed = replace(late, launch_claim="req:msg", launch_claimed_at=iso(NOW))
    assert isinstance(decide(job=claimed, spec=patient, message_attempt=1, now=NOW, room=True, room_reason=""), Defer)


def test_after_a_lost_claim_a_cancel_is_carried_out_once_no_live_launch_holds_the_claim() -> None:
    live = job(cancel_requested=True, launch_claim="req:msg", launch_claimed_at=iso(NOW - timedelta(seconds=10)))
    assert isinstance(after_lost_claim(live, NOW), Defer)
    assert isinstance(after_lost_claim(replace(live, launch_claim=None), NOW), CancelWaiting)
    assert isinstance(after_lost_claim(job(launch_claim="other"), NOW), Skip)
    assert isinstance(after_lost_claim(None, NOW), Skip)


def test_a_launch_that_lost_its_claim_stops_what_no_takeover_adopts() -> None:
    ours = job(S.DISPATCHED, task_arn="t0")
    assert stop_after_lost_claim(("t0", "t1"), ours, gang=True) == []  # our own write landed
    assert stop_after_lost_claim(("t0", "t1"), job(launch_claim="other"), gang=True) == ["t0", "t1"]
    assert stop_after_lost_claim(("t0",), job(launch_claim="other"), gang=False) == []  # adopted by the takeover
    assert stop_after_lost_claim(("t0",), job(S.CANCELLED), gang=False) == ["t0"]
    assert stop_after_lost_claim(("t0",), None, gang=False) == ["t0"]


# --- backoff --------------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=10_000), st.text(min_size=1, max_size=64))
def test_backoff_is_bounded(deferrals: int, job_id: str) -> None:
    assert 10 <= backoff_seconds(deferrals, job_id) <= MAX_DEFER_SECONDS


def test_backoff_grows_exponentially_to_the_cap() -> None:
    delays = [backoff_seconds(d, "job") for d in range(10)]
    assert delays == sorted(delays)
    assert delays[0] < 13 and 20 <= delays[1] < 26 and delays[-1] == MAX_DEFER_SECONDS
    assert backoff_seconds(3, "a") == backoff_seconds(3, "a")  # deterministic jitter


# --- capacity choice and the RunTask request ------------------------------------------------------


def test_spot_first_with_on_demand_fallback() -> None:
    assert choose_providers(spec(), prefer_on_demand=False, gpu_capacity_provider="") == ("FARGATE_SPOT", "FARGATE")
    assert choose_providers(spec(), prefer_on_demand=True, gpu_capacity_provider="") == ("FARGATE",)
    assert choose_providers(spec(spot=False), prefer_on_demand=False, gpu_capacity_provider="") == ("FARGATE",)
    assert choose_providers(spec(gpu=1), prefer_on_demand=False, gpu_capacity_provider="gpu") == ("gpu",)


def test_run_task_request() -> None:
    plan = plan_launch(
        spec(environment={"EPOCHS": "3"}, cpu=2048, memory=8192, tags={"team": "nlp"}),
        attempt=2,
        prefer_on_demand=False,
        config=CONFIG,
    )
    request = plan.request("FARGATE_SPOT")
    assert request["cluster"] == "training"
    assert request["taskDefinition"] == CONFIG.task_definitions["default"]
    assert request["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]
    assert request["startedBy"] == "j1" and request["count"] == 1
    assert request["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": ["subnet-a", "subnet-b"],
            "securityGroups": ["sg-1"],
            "assignPublicIp": "DISABLED",
        }
    }
    overrides = request["overrides"]
    assert (overrides["cpu"], overrides["memory"]) == ("2048", "8192")
    (container,) = overrides["containerOverrides"]
    assert container["name"] == "trainer" and container["command"] == ["python", "train.py"]
    assert (container["cpu"], container["memory"]) == (2048, 8192)  # the container's own limit follows the job
    assert {e["name"]: e["value"] for e in container["environment"]} == {
        "EPOCHS": "3",
        "TRAIN_JOB_ID": "j1",
        "TRAIN_ATTEMPT": "2",
        "TRAIN_CHECKPOINT_URI": "s3://artifacts/jobs/j1/checkpoints/",
        "TRAIN_ARTIFACTS_URI": "s3://artifacts/jobs/j1/",
    }
    assert "resourceRequirements" not in container
    assert request["tags"] == [
        {"key": "job-id", "value": "j1"},
        {"key": "attempt", "value": "2"},
        {"key": "team", "value": "nlp"},
    ]


def test_gpu_request_uses_the_gpu_task_definition_and_provider() -> None:
    plan = plan_launch(spec(gpu=2), attempt=1, prefer_on_demand=True, config=CONFIG)
    request = plan.request(plan.providers[0])
    assert request["taskDefinition"] == CONFIG.gpu_task_definitions["default"]
    assert request["capacityProviderStrategy"][0]["capacityProvider"] == "gpu-spot"
    assert request["overrides"]["containerOverrides"][0]["resourceRequirements"] == [{"type": "GPU", "value": "2"}]


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True), st.integers(1, 1000))
def test_client_tokens_fit_run_task_and_differ_per_attempt_and_provider(job_id: str, attempt: int) -> None:
    plan = plan_launch(spec(job_id=job_id), attempt=attempt, prefer_on_demand=False, config=CONFIG)
    tokens = {plan.client_token(p) for p in ("FARGATE_SPOT", "FARGATE")}
    again = plan_launch(spec(job_id=job_id), attempt=attempt, prefer_on_demand=False, config=CONFIG)
    assert len(tokens) == 2 and plan.client_token("FARGATE") == again.client_token("FARGATE")
    for token in tokens:
        assert len(token) <= 64 and all(33 <= ord(c) <= 126 for c in token)
    other = plan_launch(spec(job_id=job_id), attempt=attempt + 1, prefer_on_demand=False, config=CONFIG)
    assert other.client_token("FARGATE") not in tokens


def test_overrides_are_bounded_by_run_task_limit() -> None:
    # Within the JobSpec's own bounds, but JSON escaping (quotes, non-ASCII) inflates the overrides document.
    big = spec(command=['"' * 1000, "y" * 1000], environment={f"V{i}": "é" * 75 for i in range(50)})
    with pytest.raises(OverridesTooLarge, match="at most 8192"):
        plan_launch(big, attempt=1, prefer_on_demand=False, config=CONFIG)


def test_plan_needs_a_job_id() -> None:
    with pytest.raises(ValueError, match="job_id"):
        plan_launch(spec(job_id=None), attempt=1, prefer_on_demand=False, config=CONFIG)


# --- reading RunTask responses --------------------------------------------------------------------


def test_read_run_task_outcomes() -> None:
    arn = "arn:aws:ecs:us-east-1:1:task/training/abc"
    assert read_run_task({"tasks": [{"taskArn": arn, "capacityProviderName": "FARGATE"}], "failures": []}, "X") == (
        Launched(arn, "FARGATE")
    )
    capacity = {
        "tasks": [],
        "failures": [{"reason": "Capacity is unavailable at this time. Please try again later or in a different AZ"}],
    }
    assert isinstance(read_run_task(capacity, "FARGATE_SPOT"), NoCapacity)
    assert read_run_task({"tasks": [], "failures": []}, "FARGATE_SPOT") == NoCapacity(
        "FARGATE_SPOT: RunTask returned no task"
    )
    missing = {"tasks": [], "failures": [{"arn": "arn:td", "reason": "MISSING"}]}
    assert read_run_task(missing, "FARGATE") == LaunchFailed("FARGATE: MISSING")


def test_request_is_json_serialisable() -> None:
    plan = plan_launch(spec(), attempt=1, prefer_on_demand=False, config=CONFIG)
    json.dumps(plan.request("FARGATE"))
