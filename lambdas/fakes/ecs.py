"""A fake ECS cluster (lifecycle.ports.EcsPort): tasks as DescribeTasks items, capacity you can run out of.

RunTask starts PROVISIONING tasks (desired status RUNNING) on the request's capacity provider, or answers with
ECS's capacity failure when the provider already runs its `capacity` of tasks; a repeated clientToken returns
the first launch (ECS's idempotency). The test moves tasks on with `start` and `end` (and `forget`, as ECS
forgets stopped tasks). Timestamps are datetimes from the clock, as boto3's DescribeTasks gives them.
`inject("run_task", Throttled(...))` (any method name) makes the next call raise. Unlike ECS, the listing reads
are strongly consistent.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from contracts import CONTAINER_NAME
from fakes.faults import FaultInjection
from jobs.errors import RequestRejected
from lifecycle.ports import Clock

REGION = "us-east-1"
ACCOUNT = "123456789012"
NO_CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone"
RUNNING = "RUNNING"
STOPPED = "STOPPED"


def family(task_definition: str) -> str:
    """`training` of "arn:aws:ecs:...:task-definition/training:3", "training:3" or "training"."""
    return task_definition.rsplit("/", 1)[-1].split(":", 1)[0]


class FakeEcs(FaultInjection):
    """One cluster. `capacity`: capacity provider -> how many tasks (desired RUNNING) it can hold (absent:
    unlimited). `run_requests` and `stop_requests` record the calls."""

    def __init__(self, clock: Clock, *, cluster: str = "training", capacity: Mapping[str, int] | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.cluster = cluster
        self.cluster_arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}"
        self.capacity = dict(capacity or {})
        self.tasks: dict[str, dict[str, Any]] = {}
        """Task ARN -> its DescribeTasks item (the last state the fake gave it)."""
        self.run_requests: list[dict[str, Any]] = []
        self.stop_requests: list[tuple[str, str]] = []
        self._launches: dict[str, dict[str, Any]] = {}
        self._launched = 0

    # -- the port ---------------------------------------------------------------------------

    def run_task(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        self._fire("run_task")
        self.run_requests.append(copy.deepcopy(dict(request)))
        token = request.get("clientToken")
        if token is not None and token in self._launches:
            return copy.deepcopy(self._launches[token])
        strategy = request.get("capacityProviderStrategy") or []
        provider = str(strategy[0]["capacityProvider"]) if strategy else str(request.get("launchType", "FARGATE"))
        count = int(request.get("count", 1))
        limit = self.capacity.get(provider)
        if limit is not None and self._active(provider) + count > limit:
            return {"tasks": [], "failures": [{"reason": NO_CAPACITY}]}
        tasks = [self._new_task(request, provider) for _ in range(count)]
        response = {"tasks": tasks, "failures": []}
        if token is not None:
            self._launches[token] = response
        return copy.deepcopy(response)

    def stop_task(self, task_arn: str, reason: str) -> None:
        """StopTask: the task stops at once (stop code UserInitiated); a task already stopped stays as it was."""
        self._fire("stop_task")
        self.stop_requests.append((task_arn, reason))
        task = self._task(task_arn, "StopTask")
        if task["lastStatus"] != STOPPED:
            self.end(task_arn, stop_code="UserInitiated", reason=reason[:255])

    def describe_tasks(self, task_arns: Sequence[str]) -> Mapping[str, Mapping[str, Any]]:
        self._fire("describe_tasks")
        if len(task_arns) > 100:
            raise RequestRejected("DescribeTasks", "InvalidParameterException", "Tasks cannot be more than 100.")
        return {arn: copy.deepcopy(self.tasks[arn]) for arn in task_arns if arn in self.tasks}

    def count_active(self, families: tuple[str, ...]) -> int:
        self._fire("count_active")
        return sum(1 for task in self._running() if family(task["taskDefinitionArn"]) in families)

    def list_running_task_arns(self) -> list[str]:
        self._fire("list_running_task_arns")
        return [task["taskArn"] for task in self._running()]

    def list_started_by(self, started_by: str) -> list[str]:
        self._fire("list_started_by")
        return [task["taskArn"] for task in self._running() if task.get("startedBy") == started_by]

    def find_task_started_by(self, started_by: str) -> tuple[str, str | None] | None:
        self._fire("find_task_started_by")
        task = next((t for t in self._running() if t.get("startedBy") == started_by), None)
        return None if task is None else (task["taskArn"], task.get("capacityProviderName"))

    # -- what happens to tasks --------------------------------------------------------------

    def start(self, task_arn: str) -> dict[str, Any]:
        """The task runs (lastStatus RUNNING). Returns its DescribeTasks item."""
        task = self._task(task_arn, "start")
        task.update(lastStatus=RUNNING, startedAt=self.clock())
        for container in task["containers"]:
            container["lastStatus"] = RUNNING
        return copy.deepcopy(task)

    def end(
        self,
        task_arn: str,
        *,
        exit_code: int | None = None,
        stop_code: str = "EssentialContainerExited",
        reason: str = "Essential container in task exited",
    ) -> dict[str, Any]:
        """The task stops: e.g. the trainer exits (the defaults), ``stop_code="SpotInterruption"``, or
        ``stop_code="TaskFailedToStart"`` with a capacity reason. Returns its DescribeTasks item."""
        task = self._task(task_arn, "end")
        task.update(lastStatus=STOPPED, desiredStatus=STOPPED, stopCode=stop_code, stoppedReason=reason)
        task["stoppedAt"] = self.clock()
        for container in task["containers"]:
            container["lastStatus"] = STOPPED
            if exit_code is not None:
                container["exitCode"] = exit_code
        return copy.deepcopy(task)

    def forget(self, task_arn: str) -> None:
        """ECS no longer knows the task (it keeps stopped tasks for about an hour)."""
        del self.tasks[task_arn]

    def _new_task(self, request: Mapping[str, Any], provider: str) -> dict[str, Any]:
        self._launched += 1
        arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{self.cluster}/{self._launched:032x}"
        definition = str(request["taskDefinition"])
        overrides = request.get("overrides") or {}
        names = [c["name"] for c in overrides.get("containerOverrides", [])] or [CONTAINER_NAME]
        task: dict[str, Any] = {
            "taskArn": arn,
            "clusterArn": self.cluster_arn,
            "taskDefinitionArn": definition,
            "group": request.get("group", f"family:{family(definition)}"),
            "capacityProviderName": provider,
            "lastStatus": "PROVISIONING",
            "desiredStatus": RUNNING,
            "createdAt": self.clock(),
            "containers": [{"name": name, "lastStatus": "PENDING"} for name in names],
            "overrides": copy.deepcopy(dict(overrides)),
            "tags": copy.deepcopy(list(request.get("tags", []))),
        }
        if request.get("startedBy"):
            task["startedBy"] = request["startedBy"]
        self.tasks[arn] = task
        return copy.deepcopy(task)

    def _task(self, task_arn: str, operation: str) -> dict[str, Any]:
        if task_arn not in self.tasks:
            raise RequestRejected(operation, "InvalidParameterException", "The referenced task was not found.")
        return self.tasks[task_arn]

    def _running(self) -> list[dict[str, Any]]:
        return [task for task in self.tasks.values() if task["desiredStatus"] == RUNNING]

    def _active(self, provider: str) -> int:
        return sum(1 for task in self._running() if task["capacityProviderName"] == provider)
