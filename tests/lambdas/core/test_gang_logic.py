"""The gang state machine: pure, no mocks. All ranks start, partial starts, a rank fails or is interrupted,
cancel, timeout, lost ranks, orphans, and duplicated / reordered events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import JobSpecInvalid
from common.jobspec import Deployment, JobSpec, parse_job_spec
from common.states import JobState
from common.store import JobRecord
from common.timeutil import iso
from task_events.gang import decide_gang, observe, orphan_reason
from task_events.logic import MISSING_GRACE_SECONDS, Finish, Ignore, MarkRunning, Retry, StopForTimeout, TaskView

S = JobState
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ARNS = (
    "arn:aws:ecs:us-east-1:123456789012:task/training/rank0",
    "arn:aws:ecs:us-east-1:123456789012:task/training/rank1",
)
SPEC = JobSpec.model_validate(
    {"job_id": "g1", "command": ["train"], "dedicated": True, "nodes": 2, "timeout_seconds": 3600, "max_attempts": 3}
)


def gang(state: JobState = S.RUNNING, **fields: Any) -> JobRecord:
    values: dict[str, Any] = {
        "job_id": "g1",
        "state": state,
        "attempt": 1,
        "task_arn": ARNS[0],
        "dispatched_at": iso(NOW - timedelta(minutes=10)),
        "started_at": iso(NOW - timedelta(minutes=9)),
        "extra": {"gang_tasks": list(ARNS)},
        **fields,
    }
    return JobRecord(**values)


def view(rank: int, status: str, **fields: Any) -> TaskView:
    defaults: dict[str, Any] = {"desired_status": "STOPPED" if status == "STOPPED" else "RUNNING"}
    if status == "STOPPED":
        defaults.update(stop_code="EssentialContainerExited", exit_code=0, stopped_at=iso(NOW))
    if status in ("RUNNING", "STOPPED"):
        defaults["started_at"] = iso(NOW - timedelta(minutes=9, seconds=-rank))
    return TaskView(task_arn=ARNS[rank], last_status=status, **{**defaults, **fields})


def decide(job: JobRecord, *views: TaskView | None, missing_is_lost: bool = False) -> Any:
    return decide_gang(job, SPEC, list(views), now=NOW, missing_is_lost=missing_is_lost)


SPOT_NOTICE = {"desired_status": "STOPPED", "stop_code": "SpotInterruption", "stopped_reason": "Spot interrupted"}
NO_CAPACITY = {
    "stop_code": "TaskFailedToStart",
    "stopped_reason": "Capacity is unavailable at this time",
    "exit_code": None,
}


# --- starting -------------------------------------------------------------------------------------


def test_the_job_runs_only_when_every_rank_runs() -> None:
    dispatched = gang(S.DISPATCHED, started_at=None)
    assert isinstance(decide(dispatched, view(0, "RUNNING"), view(1, "PENDING")).action, Ignore)
    assert isinstance(decide(dispatched, view(0, "RUNNING"), None).action, Ignore)
    decision = decide(dispatched, view(0, "RUNNING"), view(1, "RUNNING"))
    assert decision.action == MarkRunning(view(1, "RUNNING").started_at or "") and decision.stop == ()
    assert isinstance(decide(gang(S.RUNNING), view(0, "RUNNING"), view(1, "RUNNING")).action, Ignore)


def test_a_rank_without_capacity_restarts_the_whole_gang_on_demand() -> None:
    decision = decide(gang(S.DISPATCHED), view(0, "RUNNING"), view(1, "STOPPED", **NO_CAPACITY))
    assert isinstance(decision.action, Retry)
    assert decision.action.prefer_on_demand and decision.action.interruptions == 1 and decision.action.failures == 0
    assert "rank 1 of 2 could not start for lack of capacity" in decision.action.reason
    assert decision.stop == (ARNS[0],)


def test_a_rank_that_fails_to_start_otherwise_uses_an_attempt() -> None:
    failed = view(
        1, "STOPPED", stop_code="TaskFailedToStart", exit_code=None, stopped_reason="ResourceInitializationError"
    )
    decision = decide(gang(S.DISPATCHED), view(0, "PENDING"), failed)
    assert isinstance(decision.action, Retry) and decision.action.failures == 1
    assert decision.stop == (ARNS[0],)


# --- failing and being interrupted ----------------------------------------------------------------


def test_one_rank_failing_stops_the_others_and_retries_the_gang() -> None:
    decision = decide(gang(), view(0, "RUNNING"), view(1, "STOPPED", exit_code=1))
    assert isinstance(decision.action, Retry)
    assert decision.action.failures == 1 and decision.action.next_attempt == 2 and not decision.action.prefer_on_demand
    assert "rank 1 of 2" in decision.action.reason and decision.stop == (ARNS[0],)
    assert decision.cause == view(1, "STOPPED", exit_code=1)


def test_the_last_attempt_fails_the_job_and_still_stops_the_others() -> None:
    decision = decide(gang(failures=2, attempt=3), view(0, "STOPPED", exit_code=2), view(1, "RUNNING"))
    assert isinstance(decision.action, Finish) and decision.action.state == S.FAILED
    assert decision.stop == (ARNS[1],)


def test_an_interruption_notice_restarts_the_gang_before_the_rank_stops() -> None:
    decision = decide(gang(), view(0, "RUNNING"), view(1, "RUNNING", **SPOT_NOTICE))
    assert isinstance(decision.action, Retry)
    assert decision.action.prefer_on_demand and decision.action.interruptions == 1 and decision.action.failures == 0
    assert "rank 1 of 2 was interrupted" in decision.action.reason
    assert decision.stop == (ARNS[0],)  # the interrupted rank is already stopping (and checkpointing) on its own


def test_an_interruption_wins_over_the_peer_exit_it_caused() -> None:
    peer_gave_up = view(0, "STOPPED", exit_code=143)
    interrupted = view(1, "STOPPED", exit_code=143, stop_code="SpotInterruption")
    for views in ((peer_gave_up, interrupted), (peer_gave_up, view(1, "RUNNING", **SPOT_NOTICE))):
        decision = decide(gang(), *views)
        assert isinstance(decision.action, Retry) and decision.action.interruptions == 1, views


def test_success_needs_every_rank_to_exit_zero() -> None:
    assert isinstance(decide(gang(), view(0, "STOPPED"), view(1, "RUNNING")).action, Ignore)
    decision = decide(gang(), view(0, "STOPPED"), view(1, "STOPPED"))
    assert decision.action == Finish(S.SUCCEEDED, None, 0) and decision.stop == ()


def test_cancel_ends_the_gang_cancelled() -> None:
    stopped = view(0, "STOPPED", stop_code="UserInitiated", exit_code=143)
    decision = decide(gang(cancel_requested=True), stopped, view(1, "RUNNING"))
    assert isinstance(decision.action, Finish) and decision.action.state == S.CANCELLED
    assert decision.stop == (ARNS[1],)


def test_timeout_stops_every_rank() -> None:
    late = gang(started_at=iso(NOW - timedelta(hours=2)))
    decision = decide(late, view(0, "RUNNING"), view(1, "RUNNING"))
    assert isinstance(decision.action, StopForTimeout) and decision.stop == ARNS


def test_reconcile_counts_a_vanished_rank_as_lost_after_the_grace() -> None:
    assert isinstance(decide(gang(), view(0, "RUNNING"), None, missing_is_lost=True).action, Retry)
    fresh = gang(S.DISPATCHED, dispatched_at=iso(NOW - timedelta(seconds=MISSING_GRACE_SECONDS - 1)))
    assert isinstance(decide(fresh, view(0, "RUNNING"), None, missing_is_lost=True).action, Ignore)
    assert isinstance(decide(gang(), view(0, "RUNNING"), None).action, Ignore)  # an event: just not seen yet


# --- after the attempt ----------------------------------------------------------------------------


def test_ranks_of_a_finished_or_restarted_gang_are_stopped() -> None:
    for job in (gang(S.SUCCEEDED), gang(S.FAILED), gang(S.RETRYING, attempt=2)):
        decision = decide(job, view(0, "STOPPED", exit_code=1), view(1, "RUNNING"))
        assert isinstance(decision.action, Ignore) and decision.stop == (ARNS[1],), job.state
    assert decide(gang(S.CANCELLED), view(0, "STOPPED"), view(1, "RUNNING", desired_status="STOPPED")).stop == ()


def test_orphans() -> None:
    other = "arn:aws:ecs:us-east-1:123456789012:task/training/old"
    assert orphan_reason(None, other) is None  # not a job of ours
    assert orphan_reason(gang(S.SUCCEEDED), ARNS[0]) == "orphan: job g1 is SUCCEEDED"
    assert orphan_reason(gang(S.RUNNING), ARNS[1]) is None
    assert "not a rank of job g1's attempt 1" in str(orphan_reason(gang(S.RUNNING), other))
    assert "no launch in progress" in str(orphan_reason(gang(S.RETRYING, attempt=2), other))
    assert orphan_reason(gang(S.RETRYING, attempt=2, launch_claim="req:msg"), other) is None  # launching now


# --- duplicated and reordered events -------------------------------------------------------------


def test_a_late_event_never_moves_a_rank_backwards() -> None:
    done = view(1, "STOPPED", exit_code=1)
    assert observe(done, view(1, "RUNNING")) == done
    assert observe(view(1, "RUNNING"), done) == done
    assert observe(done, done) == done
    notice = view(1, "RUNNING", **SPOT_NOTICE)
    assert observe(notice, view(1, "RUNNING")) == notice and observe(view(1, "RUNNING"), notice) == notice


def lifecycle(rank: int, last: TaskView) -> list[TaskView]:
    return [view(rank, "PROVISIONING"), view(rank, "PENDING"), view(rank, "RUNNING"), last]


def fold(events: list[TaskView]) -> list[TaskView | None]:
    views: list[TaskView | None] = [None, None]
    for event in events:
        rank = ARNS.index(event.task_arn)
        views[rank] = observe(views[rank], event)
    return views


SCENARIOS = {
    "success": (lifecycle(0, view(0, "STOPPED")) + lifecycle(1, view(1, "STOPPED")), S.SUCCEEDED),
    "interrupted": (
        lifecycle(0, view(0, "STOPPED", exit_code=143)) + lifecycle(1, view(1, "RUNNING", **SPOT_NOTICE)),
        None,
    ),
    "failed": (lifecycle(0, view(0, "RUNNING")) + lifecycle(1, view(1, "STOPPED", exit_code=3)), None),
}


@given(
    name=st.sampled_from(sorted(SCENARIOS)),
    order=st.randoms(use_true_random=False),
    duplicates=st.lists(st.integers(min_value=0, max_value=7), max_size=6),
)
def test_any_order_with_duplicates_reaches_the_same_decision(name: str, order: Any, duplicates: list[int]) -> None:
    events, _ = SCENARIOS[name]
    shuffled = [*events, *(events[i] for i in duplicates)]
    order.shuffle(shuffled)
    assert fold(shuffled) == fold(events)
    expected = decide(gang(), *fold(events))
    assert decide(gang(), *fold(shuffled)) == expected


def test_the_scenarios_decide_as_expected() -> None:
    assert decide(gang(), *fold(SCENARIOS["success"][0])).action == Finish(S.SUCCEEDED, None, 0)
    interrupted = decide(gang(), *fold(SCENARIOS["interrupted"][0])).action
    assert isinstance(interrupted, Retry) and interrupted.interruptions == 1
    failed = decide(gang(), *fold(SCENARIOS["failed"][0]))
    assert isinstance(failed.action, Retry) and failed.action.failures == 1 and failed.stop == (ARNS[0],)


@given(prefix=st.integers(min_value=0, max_value=7), order=st.randoms(use_true_random=False))
def test_a_healthy_gang_succeeds_only_once_every_rank_exited(prefix: int, order: Any) -> None:
    events = list(SCENARIOS["success"][0])
    order.shuffle(events)
    seen = events[:prefix]
    action = decide(gang(S.DISPATCHED), *fold(seen)).action
    exits = [event for event in seen if event.last_status == "STOPPED"]
    assert isinstance(action, Finish) == (len(exits) == 2)
    assert isinstance(action, Ignore | MarkRunning | Finish)  # never a restart


# --- the spec -------------------------------------------------------------------------------------


def test_nodes_default_to_one_and_need_a_dedicated_job_within_the_deployment_maximum() -> None:
    assert JobSpec.model_validate({"command": ["train"]}).nodes == 1
    with pytest.raises(JobSpecInvalid) as caught:
        parse_job_spec({"command": ["train"], "nodes": 2, "tags": {"rank": "x"}})
    assert set(caught.value.fields) == {"nodes", "tags"}
    assert "must set dedicated=true" in str(caught.value)
    deployment = Deployment(images=("default",), max_nodes=4)
    with pytest.raises(JobSpecInvalid) as caught:
        parse_job_spec({"command": ["train"], "nodes": 5, "dedicated": True, "image": "nope"}, deployment)
    assert set(caught.value.fields) == {"nodes", "image"}  # every problem at once
    assert "5 ranks requested; this deployment allows at most 4" in str(caught.value)
    assert parse_job_spec({"command": ["train"], "nodes": 4, "dedicated": True}, deployment).nodes == 4


# --- retry rules and their defaults (common.retry_rules), as for a single task ------------------


def decide_with(spec: JobSpec, job: JobRecord, *views: TaskView | None) -> Any:
    return decide_gang(job, spec, list(views), now=NOW)


def with_rules(*rules: dict[str, Any]) -> JobSpec:
    return JobSpec.model_validate({**SPEC.model_dump(exclude_defaults=True), "retry_rules": list(rules)})


def test_a_rank_out_of_memory_fails_the_gang_at_once_naming_the_memory_setting() -> None:
    for oom in (
        view(1, "STOPPED", exit_code=137),
        view(1, "STOPPED", exit_code=1, container_reason="OutOfMemoryError"),
    ):
        decision = decide(gang(), view(0, "RUNNING"), oom)
        assert isinstance(decision.action, Finish) and decision.action.state == S.FAILED, oom
        assert "out of memory" in str(decision.action.reason) and "`memory`" in str(decision.action.reason)
        assert "rank 1 of 2" in str(decision.action.reason) and decision.stop == (ARNS[0],)


def test_a_rank_whose_image_cannot_be_pulled_fails_the_gang_at_once() -> None:
    pull = view(
        0,
        "STOPPED",
        stop_code="TaskFailedToStart",
        exit_code=None,
        stopped_reason="CannotPullContainerError: pull image manifest has been retried 5 time(s): not found",
    )
    decision = decide(gang(S.DISPATCHED), pull, view(1, "PENDING"))
    assert isinstance(decision.action, Finish) and decision.action.state == S.FAILED
    assert "image could not be pulled" in str(decision.action.reason) and decision.stop == (ARNS[1],)


def test_the_jobs_retry_rules_decide_for_a_failed_rank() -> None:
    spec = with_rules({"exit_code": "3", "action": "EXIT"}, {"reason": "*NCCL*", "action": "RETRY"})
    decision = decide_with(spec, gang(), view(0, "RUNNING"), view(1, "STOPPED", exit_code=3))
    assert isinstance(decision.action, Finish) and decision.action.state == S.FAILED
    assert "retry_rules[0] matched: EXIT" in str(decision.action.reason)
    nccl = view(1, "STOPPED", exit_code=137, stopped_reason="NCCL watchdog timeout")  # the user's RETRY beats OOM
    decision = decide_with(spec, gang(), view(0, "RUNNING"), nccl)
    assert isinstance(decision.action, Retry) and decision.action.failures == 1
    stop_rule = with_rules({"stop_code": "TaskFailedToStart", "action": "EXIT"})
    failed = view(
        1, "STOPPED", stop_code="TaskFailedToStart", exit_code=None, stopped_reason="ResourceInitializationError"
    )
    decision = decide_with(stop_rule, gang(S.DISPATCHED), view(0, "PENDING"), failed)
    assert isinstance(decision.action, Finish) and decision.action.state == S.FAILED


def test_the_first_rank_to_stop_is_judged_not_the_peer_it_took_down() -> None:
    oom = view(1, "STOPPED", exit_code=137, stopped_at=iso(NOW - timedelta(seconds=5)))
    peer_lost_its_peer = view(0, "STOPPED", exit_code=1, stopped_at=iso(NOW))
    decision = decide(gang(), peer_lost_its_peer, oom)
    assert isinstance(decision.action, Finish) and "out of memory" in str(decision.action.reason)
    assert decision.cause == oom


def test_spot_and_capacity_keep_restarting_the_gang_without_using_attempts_whatever_the_rules() -> None:
    spec = with_rules({"stop_code": "*", "action": "EXIT"})
    last_attempt = gang(
        failures=2, attempt=3, interruptions=1, extra={"gang_tasks": list(ARNS), "prefer_on_demand": True}
    )
    for views in (
        (view(0, "RUNNING"), view(1, "RUNNING", **SPOT_NOTICE)),
        (view(0, "RUNNING"), view(1, "STOPPED", **NO_CAPACITY)),
    ):
        decision = decide_with(spec, last_attempt, *views)
        assert isinstance(decision.action, Retry), views
        assert decision.action.failures == 2 and decision.action.interruptions == 2
        assert decision.action.prefer_on_demand and decision.action.next_attempt == 4
