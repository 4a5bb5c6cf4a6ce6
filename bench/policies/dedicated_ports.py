"""Thin bridges from the lifecycle's ports (lifecycle.ports) to the simulated world, for the dedicated-task row
(bench.policies.dedicated): ECS calls against the account's API budgets, SQS sends onto the simulated queue."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import count
from typing import TYPE_CHECKING, Any, NoReturn

from bench.models import TokenBucket, take_all
from bench.sim import Message, Process
from jobs.ecs import FARGATE_SPOT
from jobs.errors import Throttled
from jobs.messages import read_dispatch_attributes

if TYPE_CHECKING:
    from bench.policies.dedicated import OursDedicated

DISPATCH_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/dispatch"
DISPATCH_DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/dispatch-dlq"


class SimEcs:
    """lifecycle.ports.EcsPort over the simulated cluster. ``process``: the submitter invocation whose calls wait
    (None: the task-events Lambda, which makes no ECS call on the modelled paths)."""

    def __init__(self, owner: OursDedicated, process: Process | None) -> None:
        self.owner, self.process = owner, process

    def _call(self, operation: str, buckets: list[TokenBucket], n: int = 1) -> None:
        """One SDK call against the API budgets: retried while throttled, ``Throttled`` once the attempts are used
        up."""
        owner, attempt = self.owner, 1
        while True:
            owner.ledger.calls[operation] += n
            if not take_all(owner.sim.now, buckets, n):
                return
            delay = owner.retry_delay(attempt)
            if delay is None or self.process is None:
                raise Throttled(operation, "ThrottlingException", "Rate exceeded")
            self.process.wait(delay)
            attempt += 1

    def count_active(self, families: tuple[str, ...]) -> int:
        """ListTasks (100 tasks per page) over the tasks launched and not stopped."""
        pages = 1 + len(self.owner.active) // 100
        self._call("ListTasks", [self.owner.cluster_read], pages)
        return len(self.owner.active)

    def run_task(self, request: Mapping[str, Any]) -> Mapping[str, Any]:
        fargate = self.owner.fargate
        spot = request["capacityProviderStrategy"][0]["capacityProvider"] == FARGATE_SPOT
        self._call("RunTask", [fargate.runtask_calls, fargate.cluster_modify, fargate.launch_bucket[spot]])
        return self.owner.launch(request)

    def stop_task(self, task_arn: str, reason: str) -> None:
        _not_modelled("StopTask (cancels, timeouts, lost launch claims)")

    def describe_tasks(self, task_arns: Sequence[str]) -> Mapping[str, Mapping[str, Any]]:
        _not_modelled("DescribeTasks (the task-events reconcile pass)")

    def list_running_task_arns(self) -> list[str]:
        _not_modelled("ListTasks of every task (the task-events reconcile pass)")

    def list_started_by(self, started_by: str) -> list[str]:
        _not_modelled("ListTasks by startedBy (taking over a lost launch)")

    def find_task_started_by(self, started_by: str) -> tuple[str, str | None] | None:
        _not_modelled("ListTasks by startedBy (taking over a lost launch)")


def _not_modelled(what: str) -> NoReturn:
    raise NotImplementedError(f"the benchmark models no {what}")


class SimQueues:
    """lifecycle.ports.QueuePort over the simulated dispatch queue."""

    def __init__(self, owner: OursDedicated) -> None:
        self.owner = owner
        self._ids = count(1)

    def send(
        self, queue_url: str, body: str, attributes: Mapping[str, Mapping[str, str]], *, delay_seconds: int = 0
    ) -> str:
        owner = self.owner
        run = owner.runs[json.loads(body)["job_id"]]
        if queue_url == DISPATCH_DLQ_URL:
            run.lost = "sent to the dispatch DLQ"
        else:
            meta = read_dispatch_attributes(attributes)
            if meta.deferrals:
                owner.ledger.deferred += 1
                owner.ledger.calls["SendMessage (deferred)"] += 1
            owner.queue.send(Message(run, meta.attempt, meta.prefer_on_demand, meta.deferrals), float(delay_seconds))
        return f"sent-{next(self._ids)}"

    def send_batch(self, queue_url: str, bodies: Sequence[tuple[str, str]]) -> None:
        _not_modelled("SendMessageBatch (array jobs and sweeps)")
