"""The gang state machine: pure, no mocks. All ranks start, partial starts, a rank fails or is interrupted,
cancel, timeout, lost ranks, orphans, and duplicated / reordered events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.errors import JobSpecInvalid
from jobs.jobspec import Deployment, JobSpec, parse_job_spec
from jobs.record import JobRecord
from jobs.states import JobState
from jobs.timeutil import iso
from lifecycle.gang_decisions import decide_gang, observe, orphan_reason
from lifecycle.outcomes import Finish, Retry
from lifecycle.task_decisions import (
    MISSING_GRACE_SECONDS,
    Ignore,
    MarkRunning,
    ResendRetry,
    StopForTimeout,
    TaskView,
)

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


def test_a_stopped_rank_of_a_retrying_gang_resends_its_dispatch_message() -> None:
    retrying = gang(S.RETRYING, attempt=2)
    stopped, running = view(0, "STOPPED", exit_code=143, stop_code="UserInitiated"), view(1, "RUNNING")
    decision = decide_gang(retrying, SPEC, [stopped, running], now=NOW, event=stopped)
    assert isinstance(decision.action, ResendRetry) and decision.stop == (ARNS[1],)
    # only a STOPPED event re-sends (bounded like a single task's), not the other ranks' progress events
    assert isinstance(decide_gang(retrying, SPEC, [stopped, running], now=NOW, event=running).action, Ignore)
    assert isinstance(decide_gang(retrying, SPEC, [stopped, running], now=NOW).action, Ignore)  # reconcile pass
    assert isinstance(decide_gang(gang(S.SUCCEEDED), SPEC, [stopped, running], now=NOW, event=stopped).action, Ignore)


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


# --- retry rules and their defaults (jobs.retry_rules), as for a single task ------------------


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


# --- cost -----------------------------------------------------------------------------------------


def test_each_rank_is_billed_from_its_own_start_to_its_own_stop() -> None:
    from jobs.cost import Rate
    from lifecycle.attempt_usage import attempt_fields

    prices = {"FARGATE": Rate(0.04048, 0.004445), "FARGATE_SPOT": Rate(0.012144, 0.0013335)}
    spot = {"capacity_provider": "FARGATE_SPOT"}
    # 1 vCPU / 2 GB per rank. Rank 0 ran 12:00:30 -> 12:09:00 (510 s), rank 1 12:01:00 -> 12:09:50 (530 s);
    # the reconcile pass settles the success at 12:40, long after (the job's start is the later rank's).
    t0 = NOW - timedelta(minutes=10)
    ranks = [
        view(
            0, "STOPPED", started_at=iso(t0 + timedelta(seconds=30)), stopped_at=iso(t0 + timedelta(minutes=9)), **spot
        ),
        view(
            1, "STOPPED", started_at=iso(t0 + timedelta(minutes=1)), stopped_at=iso(t0 + timedelta(seconds=590)), **spot
        ),
    ]
    job = gang(started_at=iso(t0 + timedelta(minutes=1)), capacity_provider="FARGATE_SPOT")
    fields: Any = attempt_fields(job, SPEC, None, now=NOW + timedelta(minutes=30), prices=prices, ranks=ranks)
    (usage,) = fields["usage"]
    assert usage == {
        "attempt": 1,
        "capacity_provider": "FARGATE_SPOT",
        "seconds": 1040,  # 510 + 530 task-seconds
        "tasks": 2,
        "vcpu_seconds": 1040.0,
        "gb_seconds": 2080.0,
        "interrupted": False,
    }
    # (1040 vCPU-s x 0.012144 + 2080 GB-s x 0.0013335) / 3600 = 0.0042787...; on-demand 0.0142624...
    assert fields["cost_usd"] == 0.004279 and fields["on_demand_cost_usd"] == 0.014262
    # A gang never marked RUNNING whose ranks ran 30 s each: 60 s minimum per task, not 0.
    dispatched = gang(S.DISPATCHED, started_at=None)
    short = [
        view(r, "STOPPED", started_at=iso(NOW - timedelta(seconds=40)), stopped_at=iso(NOW - timedelta(seconds=10)))
        for r in (0, 1)
    ]
    fields = attempt_fields(dispatched, SPEC, short[0], now=NOW, prices=prices, ranks=short)
    assert fields["usage"][0]["seconds"] == 120 and fields["usage"][0]["vcpu_seconds"] == 120.0
    # A rank that never started costs nothing; a live one is billed up to now (a timeout stops it).
    never = view(1, "STOPPED", started_at=None, **NO_CAPACITY)
    running = view(0, "RUNNING", started_at=iso(NOW - timedelta(seconds=100)))
    fields = attempt_fields(dispatched, SPEC, never, now=NOW, prices=prices, ranks=[running, never])
    assert fields["usage"][0]["seconds"] == 100


def test_a_rank_recorded_as_exited_zero_still_counts_once_describe_tasks_forgets_it() -> None:
    from lifecycle.gang_decisions import exited_fields, recall_exited

    job = gang(S.RUNNING)
    early = view(0, "STOPPED", stopped_at=iso(NOW - timedelta(minutes=70)), capacity_provider="FARGATE_SPOT")
    fields = exited_fields(job, [early, view(1, "RUNNING")])
    assert fields == {
        "gang_exited_0": {
            "task": ARNS[0],
            "started_at": early.started_at,
            "stopped_at": early.stopped_at,
            "capacity_provider": "FARGATE_SPOT",
        }
    }
    recorded = gang(S.RUNNING, extra={"gang_tasks": list(ARNS), **fields})
    assert exited_fields(recorded, [early, view(1, "RUNNING")]) == {}  # written once
    # An hour later DescribeTasks no longer finds rank 0; rank 1 exits 0 too.
    unrecorded = decide(job, None, view(1, "STOPPED"), missing_is_lost=True)
    assert isinstance(unrecorded.action, Retry)  # without the record: rank 0 counted as lost
    views = recall_exited(recorded, [None, view(1, "STOPPED")])
    assert views[0] is not None and views[0].stopped_at == early.stopped_at and views[0].started_at == early.started_at
    assert decide(recorded, *views, missing_is_lost=True).action == Finish(S.SUCCEEDED, None, 0)
    # A record of another attempt's task (same rank) is not this rank's exit.
    stale = gang(S.RUNNING, extra={"gang_tasks": ["arn:new0", ARNS[1]], **fields})
    assert recall_exited(stale, [None, None]) == [None, None]
