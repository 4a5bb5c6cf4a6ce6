"""Launching a distributed job: one RunTask per rank, every rank on the same capacity provider.

The providers of the launch plan are tried in order (Spot first when allowed). When a rank cannot be placed on a
provider, the ranks already started there are stopped and the whole gang moves to the next provider, so an
attempt never mixes Spot and on-demand ranks. When no provider can take the whole gang, nothing is left running
and the caller defers the job. Client tokens are per (job, attempt, provider, rank, claim): a retried call of one
launch is idempotent, and a relaunch after a takeover (which first stops whatever the lost launch started) is not
answered with the stopped tasks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from jobs.errors import RequestRejected, Throttled, TransientAwsError
from jobs.gang import RENDEZVOUS_COMMAND, group, rank_environment
from submitter.logic import MAX_OVERRIDES_CHARS, Launched, LaunchFailed, LaunchPlan, OverridesTooLarge, read_run_task

logger = Logger(child=True)


class GangEcs(Protocol):
    def run_task(self, request: Mapping[str, Any]) -> Mapping[str, Any]: ...

    def stop_task(self, task_arn: str, reason: str) -> None: ...

    def list_started_by(self, started_by: str) -> list[str]: ...


@dataclass(frozen=True)
class GangLaunched:
    task_arns: tuple[str, ...]
    """Index = rank."""
    provider: str
    notes: tuple[str, ...] = ()
    """Providers that could not take the whole gang first."""


@dataclass(frozen=True)
class GangWaiting:
    """No task of the gang is left running: release the claim and defer."""

    reason: str


@dataclass(frozen=True)
class GangUnknown:
    """A RunTask outcome is unknown (server error): keep the claim; a takeover stops what may exist."""

    reason: str


@dataclass(frozen=True)
class GangRefused:
    """AWS refused the launch (not a capacity problem): the message goes to the DLQ."""

    reason: str


GangOutcome = GangLaunched | GangWaiting | GangUnknown | GangRefused


def rank_request(
    plan: LaunchPlan,
    provider: str,
    *,
    rank: int,
    nodes: int,
    jobs_table: str,
    claim: str,
    master_task: str | None = None,
) -> dict[str, Any]:
    """The RunTask request of one rank: the plan's request plus the rank's environment, the rendezvous wrapper
    around the job's command, the gang's group, a rank tag and a rank-specific client token. Ranks > 0 need
    `master_task`, rank 0's task ARN of this launch (so rank 0 is started first)."""
    request = plan.request(provider)
    (container,) = request["overrides"]["containerOverrides"]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    environment.update(
        rank_environment(rank=rank, nodes=nodes, jobs_table=jobs_table, claim=claim, master_task=master_task)
    )
    container = {
        **container,
        "command": [*RENDEZVOUS_COMMAND, *container["command"]],
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
    }
    overrides = {**request["overrides"], "containerOverrides": [container]}
    size = len(json.dumps(overrides, separators=(",", ":")))
    if size > MAX_OVERRIDES_CHARS:
        raise OverridesTooLarge(size)
    token = hashlib.sha256(f"{plan.job_id}\x00{plan.attempt}\x00{provider}\x00{rank}\x00{claim}".encode()).hexdigest()
    return {
        **request,
        "overrides": overrides,
        "group": group(plan.job_id),
        "tags": [*request["tags"], {"key": "rank", "value": str(rank)}],
        "clientToken": f"a{plan.attempt}r{rank}-{token}"[:64],
    }


def launch_gang(ecs: GangEcs, plan: LaunchPlan, *, nodes: int, jobs_table: str, claim: str) -> GangOutcome:
    """Start ranks 0..nodes-1 on the first provider that takes all of them."""
    notes: list[str] = []
    for provider in plan.providers:
        started: list[str] = []
        for rank in range(nodes):
            try:
                master = started[0] if started else None
                request = rank_request(
                    plan, provider, rank=rank, nodes=nodes, jobs_table=jobs_table, claim=claim, master_task=master
                )
                response = ecs.run_task(request)
            except OverridesTooLarge as exc:
                return GangRefused(f"invalid job spec: environment: {exc}")
            except Throttled as exc:
                stop_tasks(ecs, started, "gang launch throttled")
                return GangWaiting(f"waiting: RunTask on {provider} throttled after retries ({exc})")
            except TransientAwsError as exc:
                stop_tasks(ecs, started, "gang launch failed")
                return GangUnknown(f"waiting: RunTask on {provider} failed for rank {rank} ({exc}); outcome unknown")
            except RequestRejected as exc:
                stop_tasks(ecs, started, "gang launch rejected")
                return GangRefused(f"RunTask rejected the launch: {exc}")
            outcome = read_run_task(response, provider)
            if isinstance(outcome, Launched):
                started.append(outcome.task_arn)
                continue
            stop_tasks(ecs, started, f"rank {rank} of {nodes} could not start on {provider}")
            if isinstance(outcome, LaunchFailed):
                return GangRefused(f"RunTask failed for rank {rank}: {outcome.reason}")
            notes.append(f"no capacity for rank {rank} of {nodes} on {outcome.reason}")
            logger.warning("gang does not fit, falling back", extra={"job_id": plan.job_id, "reason": notes[-1]})
            break
        else:
            return GangLaunched(tuple(started), provider, tuple(notes))
    return GangWaiting("waiting: " + "; ".join(notes))


def stop_tasks(ecs: GangEcs, task_arns: list[str], reason: str) -> None:
    """Best effort: a rank that cannot be stopped now is found by the task-events reconcile pass."""
    for arn in task_arns:
        with contextlib.suppress(Throttled, TransientAwsError, RequestRejected):
            ecs.stop_task(arn, reason)


def stop_started_by(ecs: GangEcs, job_id: str, reason: str) -> int:
    """Stop every live task of a job (a takeover: whatever a lost launch left behind). Returns how many."""
    arns = ecs.list_started_by(job_id)
    stop_tasks(ecs, arns, reason)
    return len(arns)
