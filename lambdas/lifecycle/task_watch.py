"""Watches the dedicated training tasks for their jobs: each ECS Task State Change event, and the scheduled
reconcile pass (lifecycle.reconcile), become job transitions. The task-events Lambda is a thin adapter over it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobs.cost import Rate
from jobs.gang import is_gang_task
from jobs.jobspec import JOB_ID_PATTERN
from lifecycle.gang_events import GangEvents
from lifecycle.ports import Clock, EcsPort, JobStore, QueuePort
from lifecycle.reconcile import reconcile
from lifecycle.task_actions import TaskActions
from lifecycle.task_decisions import TaskView, decide_task


@dataclass(frozen=True)
class TaskWatchConfig:
    """The deployment's names and prices the watch needs (the task-events Lambda builds it from its settings)."""

    cluster: str
    """The training cluster: events from other clusters are not about our jobs."""
    dispatch_queue_url: str
    """Where a retried job's dispatch message goes."""
    prices: Mapping[str, Rate] | None = None
    """This region's Fargate price table (jobs.cost); None: usage recorded, no dollars."""


class TaskWatch:
    def __init__(
        self, *, store: JobStore, ecs: EcsPort, queues: QueuePort, clock: Clock, config: TaskWatchConfig
    ) -> None:
        self._cluster = config.cluster
        self._actions = TaskActions(
            store=store,
            ecs=ecs,
            queues=queues,
            clock=clock,
            dispatch_queue_url=config.dispatch_queue_url,
            prices=config.prices,
        )
        self._gangs = GangEvents(self._actions)

    def on_task_state_change(self, detail: Mapping[str, Any]) -> dict[str, int]:
        """One event's `detail` (an ECS task); returns what was done as {metric name: 1}."""
        return {self._on_task(detail): 1}

    def reconcile(self) -> dict[str, int]:
        """Catch what events missed (lifecycle.reconcile); returns counts by metric name."""
        return dict(reconcile(self._actions, self._gangs))

    def _on_task(self, detail: Mapping[str, Any]) -> str:
        cluster_arn = str(detail.get("clusterArn") or "")
        if cluster_arn.rsplit("/", 1)[-1] != self._cluster and cluster_arn != self._cluster:
            return "OtherCluster"
        job_id = str(detail.get("startedBy") or "")
        if not re.match(JOB_ID_PATTERN, job_id):
            return "NotAJob"  # e.g. a worker-service task, startedBy "ecs-svc/..."
        task = TaskView.from_ecs(detail)
        if is_gang_task(detail):
            return self._gangs.on_task(job_id, task)
        return self._actions.settle(job_id, lambda job, spec, now: decide_task(job, spec, task, now=now), task)
