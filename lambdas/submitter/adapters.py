"""boto3 adapters for the submitter's ports (errors translated in aws.clients)."""

from __future__ import annotations

from collections.abc import Mapping
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

    def run_task(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        response: Mapping[str, Any] = _call("RunTask", self._ecs.run_task, **request)
        return response

    def count_active(self, families: tuple[str, ...]) -> int:
        """ListTasks per training task family (one call per family per 100 tasks)."""
        total = 0
        for family in families:
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"cluster": self._cluster, "family": family, "desiredStatus": "RUNNING"}
                if token:
                    kwargs["nextToken"] = token
                response = _call("ListTasks", self._ecs.list_tasks, **kwargs)
                total += len(response.get("taskArns", []))
                token = response.get("nextToken")
                if not token:
                    break
        return total

    def find_task_started_by(self, started_by: str) -> tuple[str, str | None] | None:
        # "When you specify startedBy as the filter, it must be the only filter that you use" (ListTasks);
        # the default desired-status filter is RUNNING.
        response = _call("ListTasks", self._ecs.list_tasks, cluster=self._cluster, startedBy=started_by)
        arns = response.get("taskArns", [])
        if not arns:
            return None
        described = _call("DescribeTasks", self._ecs.describe_tasks, cluster=self._cluster, tasks=arns[:1])
        tasks = described.get("tasks", [])
        provider = tasks[0].get("capacityProviderName") if tasks else None
        return str(arns[0]), provider

    def list_started_by(self, started_by: str) -> list[str]:
        arns: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"cluster": self._cluster, "startedBy": started_by}
            if token:
                kwargs["nextToken"] = token
            response = _call("ListTasks", self._ecs.list_tasks, **kwargs)
            arns += [str(arn) for arn in response.get("taskArns", [])]
            token = response.get("nextToken")
            if not token:
                return arns

    def stop_task(self, task_arn: str, reason: str) -> None:
        _call("StopTask", self._ecs.stop_task, cluster=self._cluster, task=task_arn, reason=reason[:255])
