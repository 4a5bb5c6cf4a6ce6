"""Task-events decisions: pure, no mocks (including out-of-order and duplicate events)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from jobs.jobspec import JobSpec
from jobs.record import JobRecord
from jobs.retries import MAX_INTERRUPTIONS
from jobs.states import JobState
from jobs.timeutil import iso
from lifecycle.outcomes import Finish, Retry
from lifecycle.task_decisions import (
    MISSING_GRACE_SECONDS,
    Ignore,
    MarkRunning,
    ResendRetry,
    StopForTimeout,
    TaskView,
    decide_reconcile,
    decide_task,
)

S = JobState
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ARN = "arn:aws:ecs:us-east-1:123456789012:task/training/aaa"
SPEC = JobSpec.model_validate({"job_id": "j1", "command": ["train"], "dedicated": True, "timeout_seconds": 3600})


def job(state: JobState = S.RUNNING, **fields: Any) -> JobRecord:
    values: dict[str, Any] = {
        "job_id": "j1",
        "state": state,
        "attempt": 1,
        "task_arn": ARN,
        "dispatched_at": iso(NOW - timedelta(minutes=10)),
        "started_at": iso(NOW - timedelta(minutes=9)),
        **fields,
    }
    return JobRecord(**values)


def stopped(
    exit_code: int | None = 0, stop_code: str = "EssentialContainerExited", reason: str = "", **kw: Any
) -> TaskView:
    return TaskView(
        task_arn=kw.pop("task_arn", ARN),
        last_status="STOPPED",
        desired_status="STOPPED",
        stop_code=stop_code,
        stopped_reason=reason or "Essential container in task exited",
        exit_code=exit_code,
        stopped_at=iso(NOW),
        **kw,
    )


def running(task_arn: str = ARN) -> TaskView:
    return TaskView(task_arn=task_arn, last_status="RUNNING", desired_status="RUNNING", started_at=iso(NOW))


def test_task_view_from_an_event_detail() -> None:
    view = TaskView.from_ecs(
        {
            "taskArn": ARN,
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "startedBy": "j1",
            "containers": [{"name": "sidecar", "exitCode": 0}, {"name": "trainer", "exitCode": 137}],
            "startedAt": "2026-11-25T11:00:00.5Z",
            "stoppedAt": datetime(2026, 11, 25, 11, 30, tzinfo=UTC),
            "capacityProviderName": "FARGATE_SPOT",
        }
    )
    assert view.exit_code == 137 and view.started_at == "2026-11-25T11:00:00.500Z"
    assert view.stopped_at == "2026-11-25T11:30:00.000Z" and view.capacity_provider == "FARGATE_SPOT"


def test_running_event_marks_a_dispatched_job_running() -> None:
    assert decide_task(job(S.DISPATCHED), SPEC, running(), now=NOW) == MarkRunning(iso(NOW))
    assert isinstance(decide_task(job(S.RUNNING), SPEC, running(), now=NOW), Ignore)  # duplicate


def test_exit_zero_succeeds() -> None:
    assert decide_task(job(), SPEC, stopped(0), now=NOW) == Finish(S.SUCCEEDED, None, 0)
    assert decide_task(job(S.DISPATCHED), SPEC, stopped(0), now=NOW) == Finish(S.SUCCEEDED, None, 0)


def test_non_zero_exit_retries_with_the_reason() -> None:
    action = decide_task(job(), SPEC, stopped(3), now=NOW)
    assert isinstance(action, Retry)
    assert action.next_attempt == 2 and action.failures == 1 and action.exit_code == 3
    assert action.delay_seconds == 30 and not action.prefer_on_demand
    assert "trainer exit code 3" in action.reason and "Essential container in task exited" in action.reason
    assert "1 of max_attempts=3 used" in action.reason


def test_last_attempt_fails() -> None:
    action = decide_task(job(attempt=3, failures=2), SPEC, stopped(1), now=NOW)
    assert isinstance(action, Finish) and action.state == S.FAILED and action.exit_code == 1
    assert "no attempts left (3 of max_attempts=3)" in str(action.reason) and "trainer exit code 1" in str(
        action.reason
    )


def test_spot_interruption_resubmits_on_demand_without_using_an_attempt() -> None:
    action = decide_task(
        job(failures=1), SPEC, stopped(143, "SpotInterruption", "Your Spot Task was interrupted."), now=NOW
    )
    assert isinstance(action, Retry)
    assert action.prefer_on_demand and action.next_attempt == 2 and action.failures == 1 and action.interruptions == 1
    assert action.delay_seconds == 0 and "interrupted" in action.reason


def test_capacity_start_failure_resubmits_on_demand() -> None:
    view = stopped(None, "TaskFailedToStart", "Capacity is unavailable at this time. Please try again later")
    action = decide_task(job(S.DISPATCHED), SPEC, view, now=NOW)
    assert isinstance(action, Retry) and action.prefer_on_demand and "lack of capacity" in action.reason


def test_other_start_failures_use_an_attempt() -> None:
    view = stopped(None, "TaskFailedToStart", "ResourceInitializationError: unable to pull secrets")
    action = decide_task(job(S.DISPATCHED), SPEC, view, now=NOW)
    assert isinstance(action, Retry) and action.failures == 1 and "ResourceInitializationError" in action.reason


def test_image_pull_errors_fail_at_once() -> None:
    view = stopped(None, "TaskFailedToStart", "CannotPullContainerError: pull access denied")
    action = decide_task(job(S.DISPATCHED), SPEC, view, now=NOW)
    assert isinstance(action, Finish) and action.state == S.FAILED
    assert "CannotPullContainerError" in str(action.reason) and "image could not be pulled" in str(action.reason)


def test_interruptions_are_bounded() -> None:
    action = decide_task(job(interruptions=MAX_INTERRUPTIONS), SPEC, stopped(143, "SpotInterruption"), now=NOW)
    assert isinstance(action, Finish) and action.state == S.FAILED
    assert f"gave up after {MAX_INTERRUPTIONS} interruptions" in str(action.reason)


def test_interruption_notice_before_the_stop_is_ignored() -> None:
    notice = TaskView(task_arn=ARN, last_status="RUNNING", desired_status="STOPPED", stop_code="SpotInterruption")
    assert isinstance(decide_task(job(), SPEC, notice, now=NOW), Ignore)


def test_user_stop_after_cancel_is_cancelled() -> None:
    action = decide_task(job(cancel_requested=True), SPEC, stopped(143, "UserInitiated", "cancelled by user"), now=NOW)
    assert isinstance(action, Finish) and action.state == S.CANCELLED
    # A job that finished just before the cancel landed keeps its success.
    assert decide_task(job(cancel_requested=True), SPEC, stopped(0), now=NOW) == Finish(S.SUCCEEDED, None, 0)


def test_user_stop_without_cancel_is_cancelled_too() -> None:
    action = decide_task(job(), SPEC, stopped(143, "UserInitiated", "stopped in the console"), now=NOW)
    assert isinstance(action, Finish) and action.state == S.CANCELLED and "stopped in the console" in str(action.reason)


def test_stop_of_a_timed_out_task_is_a_timeout_failure() -> None:
    late = job(started_at=iso(NOW - timedelta(hours=2)))
    action = decide_task(late, SPEC, stopped(143, "UserInitiated", "timeout: attempt 1 ran longer"), now=NOW)
    assert isinstance(action, Finish) and action.state == S.FAILED and str(action.reason).startswith("timeout:")


def test_events_for_other_tasks_are_ignored() -> None:
    assert isinstance(decide_task(job(), SPEC, stopped(1, task_arn="arn:old"), now=NOW), Ignore)
    assert isinstance(decide_task(job(S.SUCCEEDED), SPEC, stopped(1), now=NOW), Ignore)


def test_duplicate_stop_of_a_retrying_job_resends_its_message() -> None:
    retrying = job(S.RETRYING, attempt=2, failures=1)
    assert isinstance(decide_task(retrying, SPEC, stopped(1), now=NOW), ResendRetry)
    assert isinstance(decide_task(retrying, SPEC, running(), now=NOW), Ignore)  # late RUNNING of the old task


# --- reconcile ------------------------------------------------------------------------------------


def test_reconcile_times_out_a_long_job() -> None:
    late = job(started_at=iso(NOW - timedelta(seconds=3601)))
    action = decide_reconcile(late, SPEC, running(), now=NOW)
    assert isinstance(action, StopForTimeout) and "timeout_seconds=3600" in action.reason


def test_reconcile_uses_dispatch_time_when_running_was_missed() -> None:
    late = job(S.DISPATCHED, started_at=None, dispatched_at=iso(NOW - timedelta(hours=2)))
    assert isinstance(decide_reconcile(late, SPEC, None, now=NOW), StopForTimeout)


def test_reconcile_handles_a_missed_stop() -> None:
    assert decide_reconcile(job(), SPEC, stopped(0), now=NOW) == Finish(S.SUCCEEDED, None, 0)


def test_reconcile_marks_a_missed_running() -> None:
    assert isinstance(decide_reconcile(job(S.DISPATCHED), SPEC, running(), now=NOW), MarkRunning)


def test_reconcile_missing_task() -> None:
    fresh = job(S.DISPATCHED, dispatched_at=iso(NOW - timedelta(seconds=MISSING_GRACE_SECONDS - 1)), started_at=None)
    assert isinstance(decide_reconcile(fresh, SPEC, None, now=NOW), Ignore)
    action = decide_reconcile(job(), SPEC, None, now=NOW)
    assert isinstance(action, Retry) and "not found by DescribeTasks" in action.reason


# --- out of order and duplicated: the final state does not depend on delivery -----------------------


def apply(record: JobRecord, view: TaskView) -> tuple[JobRecord, str]:
    """An in-memory stand-in for the conditional writes, to replay event sequences."""
    action = decide_task(record, SPEC, view, now=NOW)
    if isinstance(action, MarkRunning):
        return replace(record, state=S.RUNNING, started_at=action.started_at), "running"
    if isinstance(action, Finish):
        return replace(record, state=action.state, reason=action.reason), "finish"
    if isinstance(action, Retry):
        return replace(record, state=S.RETRYING, attempt=action.next_attempt, failures=action.failures), "retry"
    return record, type(action).__name__


@given(
    exit_code=st.sampled_from([0, 1, 137]),
    order=st.permutations([0, 1, 2, 3]),
    duplicates=st.lists(st.integers(0, 3), max_size=4),
)
def test_any_order_and_duplicates_give_the_in_order_result(
    exit_code: int, order: list[int], duplicates: list[int]
) -> None:
    other = "arn:aws:ecs:us-east-1:123456789012:task/training/old"
    events = [running(), stopped(exit_code), running(other), stopped(1, task_arn=other)]
    expected = job(S.DISPATCHED)
    for view in events[:2]:
        expected, _ = apply(expected, view)

    record, retries = job(S.DISPATCHED), 0
    for index in [*order, *duplicates]:
        record, what = apply(record, events[index])
        retries += what == "retry"
    assert record.state == expected.state and record.attempt == expected.attempt
    assert retries <= 1  # a duplicated STOPPED never re-submits twice
