"""The ECS adapter of the lifecycle's EcsPort (errors translated in aws.clients)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws.clients import call


class EcsAdapter:
    """One cluster's tasks: RunTask, StopTask, ListTasks (every page, 100 tasks per call), DescribeTasks."""

    def __init__(self, ecs: Any, cluster: str) -> None:
        self._ecs = ecs
        self._cluster = cluster

    def run_task(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        response: Mapping[str, Any] = call("RunTask", self._ecs.run_task, **request)
        return response

    def stop_task(self, task_arn: str, reason: str) -> None:
        call("StopTask", self._ecs.stop_task, cluster=self._cluster, task=task_arn, reason=reason[:255])

    def describe_tasks(self, task_arns: Sequence[str]) -> Mapping[str, Mapping[str, Any]]:
        """One DescribeTasks call (<= 100 ARNs). Tasks ECS no longer knows are simply absent."""
        if not task_arns:
            return {}
        response = call("DescribeTasks", self._ecs.describe_tasks, cluster=self._cluster, tasks=list(task_arns))
        return {str(task["taskArn"]): task for task in response.get("tasks", [])}

    def count_active(self, families: tuple[str, ...]) -> int:
        """Training tasks whose desired status is RUNNING (pending or running): ListTasks per family."""
        return sum(len(self._list(family=family, desiredStatus="RUNNING")) for family in families)

    def list_running_task_arns(self) -> list[str]:
        """Every task of the cluster with desired status RUNNING."""
        return self._list(desiredStatus="RUNNING")

    def list_started_by(self, started_by: str) -> list[str]:
        """ARNs of every task with desired status RUNNING started by `started_by` (the ranks of a gang).

        "When you specify startedBy as the filter, it must be the only filter that you use" (ListTasks); the
        default desired-status filter is RUNNING."""
        return self._list(startedBy=started_by)

    def find_task_started_by(self, started_by: str) -> tuple[str, str | None] | None:
        """(task ARN, capacity provider) of a task with desired status RUNNING started by `started_by`."""
        response = call("ListTasks", self._ecs.list_tasks, cluster=self._cluster, startedBy=started_by)
        arns = response.get("taskArns", [])
        if not arns:
            return None
        tasks = self.describe_tasks(arns[:1])
        return str(arns[0]), (tasks[str(arns[0])].get("capacityProviderName") if tasks else None)

    def _list(self, **filters: str) -> list[str]:
        arns: list[str] = []
        kwargs: dict[str, Any] = {"cluster": self._cluster, **filters}
        while True:
            response = call("ListTasks", self._ecs.list_tasks, **kwargs)
            arns += [str(arn) for arn in response.get("taskArns", [])]
            if not response.get("nextToken"):
                return arns
            kwargs["nextToken"] = response["nextToken"]
