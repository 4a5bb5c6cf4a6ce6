"""The RunTask request(s) for one attempt of a job, and reading RunTask's answer (pure).

No I/O, no environment, no clock: the spec, the record, the time and the deployment's LaunchConfig come in as
arguments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from contracts import CONTAINER_NAME
from jobs import waiting
from jobs.ecs import FARGATE, FARGATE_SPOT, is_capacity_reason
from jobs.environment import job_environment
from jobs.gang import RENDEZVOUS_COMMAND, group, rank_environment
from jobs.jobspec import JobSpec
from jobs.record import JobRecord

MAX_OVERRIDES_CHARS = 8192
"""RunTask: "A total of 8192 characters are allowed for overrides" (JSON formatting included)."""


@dataclass(frozen=True)
class LaunchConfig:
    """What a launch plan needs from the deployment (the submitter's wiring builds it from its settings)."""

    cluster: str
    task_definitions: Mapping[str, str]
    gpu_task_definitions: Mapping[str, str]
    gpu_capacity_provider: str
    subnet_ids: Sequence[str]
    security_group_ids: Sequence[str]
    artifacts_bucket: str


@dataclass(frozen=True)
class LaunchPlan:
    job_id: str
    attempt: int
    task_definition: str
    providers: tuple[str, ...]
    """Capacity providers to try, in order (Spot first when allowed, on-demand FARGATE as the fallback)."""
    overrides: Mapping[str, Any]
    tags: tuple[Mapping[str, str], ...]
    network: Mapping[str, Any]
    cluster: str

    def client_token(self, provider: str) -> str:
        """RunTask idempotency token (<= 64 chars, ASCII 33-126): one per (job, attempt, provider), so a
        repeated call for the same launch returns the same task and a fallback is a distinct request."""
        digest = hashlib.sha256(f"{self.job_id}\x00{self.attempt}\x00{provider}".encode()).hexdigest()
        return f"a{self.attempt}-{digest}"[:64]

    def request(self, provider: str) -> dict[str, Any]:
        """RunTask keyword arguments for one capacity provider."""
        return {
            "cluster": self.cluster,
            "taskDefinition": self.task_definition,
            "count": 1,
            "capacityProviderStrategy": [{"capacityProvider": provider, "weight": 1, "base": 0}],
            "networkConfiguration": dict(self.network),
            "overrides": dict(self.overrides),
            "startedBy": self.job_id,
            "tags": [dict(t) for t in self.tags],
            "clientToken": self.client_token(provider),
        }


class OverridesTooLarge(ValueError):
    def __init__(self, size: int) -> None:
        super().__init__(
            f"command + environment make {size} characters of RunTask overrides (at most {MAX_OVERRIDES_CHARS})"
        )
        self.size = size


def choose_providers(spec: JobSpec, *, prefer_on_demand: bool, gpu_capacity_provider: str) -> tuple[str, ...]:
    """GPU jobs: the GPU capacity provider. Otherwise Spot first (falling back to FARGATE) when the job
    allows Spot and has not been interrupted, else on-demand FARGATE only."""
    if spec.gpu:
        return (gpu_capacity_provider,)
    if spec.spot and not prefer_on_demand:
        return (FARGATE_SPOT, FARGATE)
    return (FARGATE,)


def plan_launch(spec: JobSpec, *, attempt: int, prefer_on_demand: bool, config: LaunchConfig) -> LaunchPlan:
    """The RunTask request(s) for this attempt of the job. `spec.job_id` must be set."""
    if spec.job_id is None:
        raise ValueError("plan_launch needs a spec with a job_id")
    job_id = spec.job_id
    definitions = config.gpu_task_definitions if spec.gpu else config.task_definitions
    environment = job_environment(spec, attempt=attempt, bucket=config.artifacts_bucket)
    # The trainer container gets the job's size too: the task definition sets its memory (hard limit), which
    # would otherwise cap a bigger job whatever the task-level override says.
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "command": list(spec.command),
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        "cpu": spec.cpu,
        "memory": spec.memory,
    }
    if spec.gpu:
        container["resourceRequirements"] = [{"type": "GPU", "value": str(spec.gpu)}]
    overrides = {"cpu": str(spec.cpu), "memory": str(spec.memory), "containerOverrides": [container]}
    _check_size(overrides)
    tags = (
        {"key": "job-id", "value": job_id},
        {"key": "attempt", "value": str(attempt)},
        *({"key": k, "value": v} for k, v in sorted(spec.tags.items())),
    )
    return LaunchPlan(
        job_id=job_id,
        attempt=attempt,
        task_definition=definitions[spec.image],
        providers=choose_providers(
            spec, prefer_on_demand=prefer_on_demand, gpu_capacity_provider=config.gpu_capacity_provider
        ),
        overrides=overrides,
        tags=tags,
        network={
            "awsvpcConfiguration": {
                "subnets": list(config.subnet_ids),
                "securityGroups": list(config.security_group_ids),
                "assignPublicIp": "DISABLED",
            }
        },
        cluster=config.cluster,
    )


def plan_for_record(
    plan: LaunchPlan, spec: JobSpec, job: JobRecord, now: datetime, *, prefer_on_demand: bool, config: LaunchConfig
) -> LaunchPlan:
    """The message's plan adjusted to the job's record: on-demand only when the record asks for it (an
    interrupted attempt whose message lost that attribute), Spot only while a max_wait ON_DEMAND job still holds
    for Spot."""
    if job.extra.get("prefer_on_demand") and not prefer_on_demand:
        plan = plan_launch(spec, attempt=plan.attempt, prefer_on_demand=True, config=config)
    return hold_for_spot(plan, spec, job, now)


def hold_for_spot(plan: LaunchPlan, spec: JobSpec, job: JobRecord, now: datetime) -> LaunchPlan:
    """A max_wait ON_DEMAND job tries Spot only until its deadline (jobs.waiting), then falls back."""
    if waiting.hold_for_spot(spec, job, now) and FARGATE_SPOT in plan.providers:
        return replace(plan, providers=(FARGATE_SPOT,))
    return plan


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
    """The RunTask request of one rank of a distributed job: the plan's request plus the rank's environment, the
    rendezvous wrapper around the job's command, the gang's group, a rank tag and a client token per (job,
    attempt, provider, rank, claim). Ranks > 0 need `master_task`, rank 0's task ARN of this launch (so rank 0
    is started first)."""
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
    _check_size(overrides)
    token = hashlib.sha256(f"{plan.job_id}\x00{plan.attempt}\x00{provider}\x00{rank}\x00{claim}".encode()).hexdigest()
    return {
        **request,
        "overrides": overrides,
        "group": group(plan.job_id),
        "tags": [*request["tags"], {"key": "rank", "value": str(rank)}],
        "clientToken": f"a{plan.attempt}r{rank}-{token}"[:64],
    }


def _check_size(overrides: Mapping[str, Any]) -> None:
    size = len(json.dumps(overrides, separators=(",", ":")))
    if size > MAX_OVERRIDES_CHARS:
        raise OverridesTooLarge(size)


# --- reading RunTask's answer ------------------------------------------------------------------


@dataclass(frozen=True)
class Launched:
    task_arn: str
    provider: str


@dataclass(frozen=True)
class NoCapacity:
    reason: str


@dataclass(frozen=True)
class LaunchFailed:
    reason: str


RunOutcome = Launched | NoCapacity | LaunchFailed


def read_run_task(response: Mapping[str, Any], provider: str) -> RunOutcome:
    """Classify a RunTask response: a task (launched), capacity failures, or other failures."""
    tasks = response.get("tasks") or []
    if tasks:
        task = tasks[0]
        return Launched(str(task["taskArn"]), str(task.get("capacityProviderName") or provider))
    failures = response.get("failures") or []
    reasons = "; ".join(" ".join(str(part) for part in (f.get("reason"), f.get("detail")) if part) for f in failures)
    if not failures or any(
        is_capacity_reason(f.get("reason")) or is_capacity_reason(f.get("detail")) for f in failures
    ):
        return NoCapacity(f"{provider}: {reasons or 'RunTask returned no task'}")
    return LaunchFailed(f"{provider}: {reasons}")
