"""boto3 adapters for the task-events ports (errors translated in aws.clients)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws.clients import translate


def _call(operation: str, fn: Any, **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except Exception as exc:
        error = translate(operation, exc)
        if error is None:
            raise
        raise error from exc


class EcsAdapter:
    def __init__(self, ecs: Any, cluster: str) -> None:
        self._ecs = ecs
        self._cluster = cluster

    def describe_tasks(self, task_arns: Sequence[str]) -> Mapping[str, Mapping[str, Any]]:
        """One DescribeTasks call (<= 100 ARNs). Tasks ECS no longer knows are simply absent."""
        if not task_arns:
            return {}
        response = _call("DescribeTasks", self._ecs.describe_tasks, cluster=self._cluster, tasks=list(task_arns))
        return {str(task["taskArn"]): task for task in response.get("tasks", [])}

    def list_running_task_arns(self) -> list[str]:
        """ListTasks with desired status RUNNING, every page (100 tasks per call)."""
        arns: list[str] = []
        kwargs: dict[str, Any] = {"cluster": self._cluster, "desiredStatus": "RUNNING"}
        while True:
            response = _call("ListTasks", self._ecs.list_tasks, **kwargs)
            arns += [str(arn) for arn in response.get("taskArns", [])]
            if not response.get("nextToken"):
                return arns
            kwargs["nextToken"] = response["nextToken"]

    def stop_task(self, task_arn: str, reason: str) -> None:
        _call("StopTask", self._ecs.stop_task, cluster=self._cluster, task=task_arn, reason=reason[:255])
