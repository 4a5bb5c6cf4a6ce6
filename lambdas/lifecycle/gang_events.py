"""Applies the gang state machine (lifecycle.gang_decisions) through the one applier (lifecycle.task_actions).

For an event about one rank, every rank of the job's current attempt is read with one DescribeTasks call and the
event is folded in, so the decision rests on the whole gang, whatever order the events come in. The job's
transition is recorded first (conditional on state, attempt and rank 0's task, like every task-events write),
then the ranks still running are stopped. If the Lambda dies in between, the next event or the reconcile pass
stops them: the pass re-reads every active gang and also stops orphans, live rank tasks whose job is terminal or
has moved on to another attempt.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Sequence

from jobs.errors import JobStateConflict, RequestRejected, Throttled, TransientAwsError
from jobs.gang import gang_tasks, is_gang_task
from jobs.jobspec import JOB_ID_PATTERN
from jobs.record import JobRecord
from jobs.states import ACTIVE
from lifecycle.gang_decisions import decide_gang, exited_fields, observe, orphan_reason, recall_exited
from lifecycle.task_actions import TaskActions, describe_all, spec_of
from lifecycle.task_decisions import Ignore, TaskView

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 8
"""Every rank reports at about the same time, so writes race more often than for a single task."""


class GangEvents:
    def __init__(self, actions: TaskActions) -> None:
        self._actions = actions
        self._known: set[str] = set()

    def on_task(self, job_id: str, task: TaskView) -> str:
        """An ECS Task State Change event of one rank; returns its metric name."""
        return self._settle(job_id, task)

    def reconcile(self, job_ids: Iterable[str], *, known: Iterable[str]) -> dict[str, int]:
        """Re-decide the given active gang jobs from DescribeTasks alone, then stop orphaned ranks. `known`: task
        ARNs the caller has already matched to their jobs (they are not described again)."""
        counts: dict[str, int] = {}
        self._known = set(known)
        for job_id in job_ids:
            name = self._settle(job_id, None)
            counts[name] = counts.get(name, 0) + 1
        orphans = self._stop_orphans()
        if orphans:
            counts["OrphanRanksStopped"] = orphans
        return counts

    def _settle(self, job_id: str, event: TaskView | None) -> str:
        store, ecs = self._actions.store, self._actions.ecs
        for _ in range(MAX_CONFLICT_RETRIES):
            job = store.get(job_id)
            spec = spec_of(job_id, job)
            if isinstance(spec, str):
                return spec
            assert job is not None
            arns = gang_tasks(job.extra)
            if event is not None and event.task_arn not in arns:
                log.debug("event for a rank of another launch", extra={"job_id": job_id, "task": event.task_arn})
                return "Ignored"
            described = describe_all(ecs, arns)
            self._known.update(arns)
            views = [TaskView.from_ecs(described[arn]) if arn in described else None for arn in arns]
            if event is not None:
                rank = arns.index(event.task_arn)
                views[rank] = observe(views[rank], event)
            views = recall_exited(job, views)  # a rank that exited 0 long ago may be gone from DescribeTasks
            now = self._actions.clock()
            decision = decide_gang(job, spec, views, now=now, missing_is_lost=event is None, event=event)
            try:
                name = self._actions.apply(job, spec, decision.action, decision.cause, views)
            except JobStateConflict as conflict:
                log.info("lost a race, re-reading the gang", extra={"job_id": job_id, "conflict": str(conflict)})
                continue
            self._stop(decision.stop, f"job {job_id} attempt {job.attempt} ended on another rank")
            if isinstance(decision.action, Ignore) and job.state in ACTIVE:
                self._note_exited(job, views)
            return name
        return "ConflictGaveUp"

    def _note_exited(self, job: JobRecord, views: Sequence[TaskView | None]) -> None:
        """Best effort: record the ranks seen exited 0 (a later event or pass records what this one misses)."""
        fields = exited_fields(job, views)
        if fields:
            with contextlib.suppress(JobStateConflict):
                self._actions.store.annotate(
                    job.job_id,
                    expected_states=job.state,
                    expected_attempt=job.attempt,
                    now=self._actions.clock(),
                    reason=job.reason,
                    **fields,
                )

    def _stop_orphans(self) -> int:
        """Live rank tasks that no active job claims (ListTasks; only the unknown ones are described)."""
        unknown = [arn for arn in self._actions.ecs.list_running_task_arns() if arn not in self._known]
        jobs: dict[str, JobRecord | None] = {}
        stopped = 0
        for task in describe_all(self._actions.ecs, unknown).values():
            job_id = str(task.get("startedBy") or "")
            if not is_gang_task(task) or not re.match(JOB_ID_PATTERN, job_id):
                continue
            if job_id not in jobs:
                jobs[job_id] = self._actions.store.get(job_id)
            reason = orphan_reason(jobs[job_id], str(task["taskArn"]))
            if reason:
                log.warning("stopping an orphaned rank", extra={"task_arn": task["taskArn"], "reason": reason})
                self._stop([str(task["taskArn"])], reason)
                stopped += 1
        return stopped

    def _stop(self, task_arns: Iterable[str], reason: str) -> None:
        """Best effort: a rank left running is stopped by the next event or reconcile pass."""
        for arn in task_arns:
            with contextlib.suppress(Throttled, TransientAwsError, RequestRejected):
                self._actions.ecs.stop_task(arn, reason)
