"""The gang state machine (pure): what the rank tasks of a distributed job, seen together, mean for the job.

Each rank is seen as a TaskView (from an event, or DescribeTasks in the same shape). `observe` keeps the more
advanced of two views of one task, so duplicated and reordered events fold to the same picture. `decide_gang`
reads the picture of the current attempt, all-or-nothing:

- a rank interrupted (Spot) or unable to start for lack of capacity: the whole gang restarts, preferring on-demand,
  as an interruption (jobs.retries); this is decided on the interruption notice, before the rank stops;
- a rank that stops otherwise without exit code 0 (failed to start, lost, non-zero exit): the first to stop is
  judged like a single task (lifecycle.task_decisions.after_failed_stop: the job's retry rules, then the built-in
  defaults, so out of memory or an image that cannot be pulled FAILS the job at once); else the whole gang
  restarts using one attempt, or the job FAILS when none is left;
- every rank exited 0: SUCCEEDED; every rank RUNNING: the job is RUNNING;
- a cancel request or a user's StopTask on a rank ends the job CANCELLED (FAILED past the timeout).

Every decision that ends the attempt names the rank tasks still running, to be stopped once it is recorded.
A STOPPED rank of a gang already RETRYING re-sends its dispatch message (as a single task does), so a lost send
cannot stall the retry. Ranks seen exiting 0 are remembered on the job record (`exited_fields`), so a rank that
DescribeTasks has forgotten an hour later still counts as done (`recall_exited`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobs.ecs import is_capacity_reason
from jobs.gang import gang_tasks
from jobs.jobspec import JobSpec
from jobs.record import JobRecord
from jobs.states import ACTIVE, TERMINAL, JobState
from jobs.timeutil import iso, parse_iso
from lifecycle.outcomes import Finish, after_failure, after_interruption
from lifecycle.task_decisions import (
    INTERRUPTION_STOP_CODES,
    MISSING_GRACE_SECONDS,
    STOPPED,
    Action,
    Ignore,
    MarkRunning,
    ResendRetry,
    StopForTimeout,
    TaskView,
    after_failed_stop,
    describe_stop,
    timed_out,
    timeout_reason,
)

_PHASES = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", STOPPED)


@dataclass(frozen=True)
class GangDecision:
    action: Action
    stop: tuple[str, ...] = ()
    """Rank tasks to stop once the action is recorded."""
    cause: TaskView | None = None
    """The rank whose stop decided the action (its stoppedReason is recorded)."""


def _progress(view: TaskView) -> tuple[int, bool, bool]:
    phase = _PHASES.index(view.last_status) if view.last_status in _PHASES else 0
    return phase, view.desired_status == STOPPED or view.stop_code is not None, view.exit_code is not None


def observe(known: TaskView | None, seen: TaskView) -> TaskView:
    """The more advanced of two views of one task (a late or repeated event never moves a rank backwards)."""
    if known is None or _progress(seen) > _progress(known):
        return seen
    return known


def _stopping(view: TaskView) -> bool:
    return view.last_status == STOPPED or view.desired_status == STOPPED


def _exited_ok(view: TaskView) -> bool:
    return view.last_status == STOPPED and view.exit_code == 0 and view.stop_code in (None, "EssentialContainerExited")


def _interrupted(view: TaskView) -> bool:
    if view.stop_code in INTERRUPTION_STOP_CODES:
        return True
    return view.stop_code == "TaskFailedToStart" and (
        is_capacity_reason(view.stopped_reason) or is_capacity_reason(view.container_reason)
    )


def decide_gang(
    job: JobRecord,
    spec: JobSpec,
    views: Sequence[TaskView | None],
    *,
    now: datetime,
    missing_is_lost: bool = False,
    event: TaskView | None = None,
) -> GangDecision:
    """`views[rank]` is the latest view of the current attempt's rank task (None: not seen). With
    `missing_is_lost` (the reconcile pass, where None means DescribeTasks did not find it) a missing rank counts
    as a failure once the dispatch is older than MISSING_GRACE_SECONDS. `event`: the rank event being handled
    (None in the reconcile pass); a STOPPED one for a RETRYING gang re-sends its dispatch message, like a
    single task's duplicate STOPPED event (lifecycle.task_decisions.decide_task), so a lost message costs no wait."""
    arns = gang_tasks(job.extra)
    live = tuple(arn for arn, view in zip(arns, views, strict=True) if view is None or not _stopping(view))
    if job.state in TERMINAL:
        return GangDecision(Ignore(f"job already {job.state}"), stop=live)
    if job.state == JobState.RETRYING and event is not None and event.last_status == STOPPED:
        return GangDecision(ResendRetry("a rank STOPPED event for a gang already re-submitted"), live)
    if job.state not in ACTIVE:  # the gang was restarted: these ranks belong to an earlier attempt
        return GangDecision(Ignore(f"job is {job.state} at attempt {job.attempt}"), stop=live)
    seen = [(rank, view) for rank, view in enumerate(views) if view is not None]
    stopped = [(rank, view) for rank, view in seen if view.last_status == STOPPED]
    failed = [(rank, view) for rank, view in stopped if not _exited_ok(view)]
    if job.cancel_requested and stopped:
        if len(stopped) == len(arns) and not failed:
            return GangDecision(Finish(JobState.SUCCEEDED, None, 0))
        rank, view = (failed or stopped)[0]
        reason = f"cancelled by user (rank {rank}: {describe_stop(view)})"
        return GangDecision(Finish(JobState.CANCELLED, reason, view.exit_code), live, view)
    interrupted = [(rank, view) for rank, view in seen if _interrupted(view)]
    if interrupted:
        rank, view = interrupted[0]
        what = "could not start for lack of capacity" if view.stop_code == "TaskFailedToStart" else "was interrupted"
        action = after_interruption(job, f"rank {rank} of {len(arns)} {what} ({describe_stop(view)})")
        return GangDecision(action, live, view)
    if failed:
        rank, view = min(failed, key=_first_stopped)  # the cause; the peers' later exits are its consequence
        what = f"rank {rank} of {len(arns)}: {describe_stop(view)}"
        if view.stop_code == "UserInitiated":
            stopped_at = parse_iso(view.stopped_at) if view.stopped_at else now
            if timed_out(job, spec, stopped_at):
                return GangDecision(Finish(JobState.FAILED, f"{timeout_reason(job, spec)}; {what}"), live, view)
            return GangDecision(Finish(JobState.CANCELLED, f"a rank was stopped by a user ({what})"), live, view)
        return GangDecision(after_failed_stop(job, spec, view, what), live, view)
    if len(stopped) == len(arns):
        return GangDecision(Finish(JobState.SUCCEEDED, None, 0))
    if timed_out(job, spec, now):
        return GangDecision(StopForTimeout(timeout_reason(job, spec)), live)
    missing = [rank for rank, view in enumerate(views) if view is None]
    if missing and missing_is_lost and _dispatched_before(job, now, MISSING_GRACE_SECONDS):
        what = f"rank {missing[0]} task {arns[missing[0]]} not found by DescribeTasks: its outcome is unknown"
        return GangDecision(after_failure(job, spec, what, None), live)
    running = [view for _, view in seen if view.last_status == "RUNNING" and view.desired_status != STOPPED]
    if job.state == JobState.DISPATCHED and len(running) == len(arns):
        starts = [view.started_at for view in running if view.started_at]
        return GangDecision(MarkRunning(max(starts) if starts else iso(now)))
    return GangDecision(
        Ignore(f"{len(running)} of {len(arns)} ranks running, {len(stopped)} exited 0; job {job.state}")
    )


def _first_stopped(ranked: tuple[int, TaskView]) -> tuple[bool, str, int]:
    rank, view = ranked
    return view.stopped_at is None, view.stopped_at or "", rank


def _dispatched_before(job: JobRecord, now: datetime, seconds: int) -> bool:
    return job.dispatched_at is not None and parse_iso(job.dispatched_at) + timedelta(seconds=seconds) <= now


def orphan_reason(job: JobRecord | None, task_arn: str) -> str | None:
    """Why a live rank task should be stopped (None: leave it): its job is over, runs other ranks, or waits
    with no launch in progress. A job waiting with a launch claim may be starting this very gang: left alone."""
    if job is None:
        return None
    if job.state in TERMINAL:
        return f"orphan: job {job.job_id} is {job.state}"
    if job.state in ACTIVE and task_arn not in gang_tasks(job.extra):
        return f"orphan: not a rank of job {job.job_id}'s attempt {job.attempt}"
    if job.state not in ACTIVE and job.launch_claim is None:
        return f"orphan: job {job.job_id} is {job.state} with no launch in progress"
    return None


EXITED_FIELD = "gang_exited_{rank}"
"""Job-record attribute noting that a rank's task exited 0 (one attribute per rank: concurrent writes keep all)."""


def exited_fields(job: JobRecord, views: Sequence[TaskView | None]) -> dict[str, Any]:
    """Fields recording the ranks seen exited 0 and not yet recorded, so one DescribeTasks forgets (about an
    hour after it stopped) still counts as done (`recall_exited`)."""
    fields: dict[str, Any] = {}
    for rank, (arn, view) in enumerate(zip(gang_tasks(job.extra), views, strict=True)):
        key = EXITED_FIELD.format(rank=rank)
        if view is not None and _exited_ok(view) and _recorded(job, key, arn) is None:
            fields[key] = {
                "task": arn,
                "started_at": view.started_at,
                "stopped_at": view.stopped_at,
                "capacity_provider": view.capacity_provider,
            }
    return fields


def recall_exited(job: JobRecord, views: Sequence[TaskView | None]) -> list[TaskView | None]:
    """`views` with each missing rank that the job recorded as exited 0 (this very task) seen as that exit."""
    recalled = list(views)
    for rank, (arn, view) in enumerate(zip(gang_tasks(job.extra), views, strict=True)):
        noted = _recorded(job, EXITED_FIELD.format(rank=rank), arn)
        if view is None and noted is not None:
            recalled[rank] = TaskView(
                task_arn=arn,
                last_status=STOPPED,
                desired_status=STOPPED,
                stop_code="EssentialContainerExited",
                exit_code=0,
                started_at=_str(noted.get("started_at")),
                stopped_at=_str(noted.get("stopped_at")),
                capacity_provider=_str(noted.get("capacity_provider")),
            )
    return recalled


def _recorded(job: JobRecord, key: str, arn: str) -> dict[str, object] | None:
    noted = job.extra.get(key)
    return noted if isinstance(noted, dict) and noted.get("task") == arn else None


def _str(value: object) -> str | None:
    return str(value) if value else None
