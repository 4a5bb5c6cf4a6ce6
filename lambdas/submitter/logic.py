"""Pure submitter logic: what to do with one dispatch-queue message, and the RunTask request for a job.

No boto3, no environment, no clock: the job record, the time and the capacity left come in as arguments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contracts import CONTAINER_NAME
from jobs.ecs import FARGATE, FARGATE_SPOT, is_capacity_reason
from jobs.environment import job_environment
from jobs.jobspec import JobSpec
from jobs.record import JobRecord
from jobs.states import ACTIVE, WAITING
from jobs.timeutil import parse_iso

LAUNCH_LEASE_SECONDS = 300
"""How long a launch claim protects (job, attempt) before another consumer may recover it. Must exceed the
submitter Lambda's timeout, so a live invocation never loses its claim."""
BASE_DEFER_SECONDS = 10
MAX_DEFER_SECONDS = 900
"""SQS DelaySeconds maximum."""
MAX_OVERRIDES_CHARS = 8192
"""RunTask: "A total of 8192 characters are allowed for overrides" (JSON formatting included)."""


# --- decisions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skip:
    """Acknowledge the message without doing anything (duplicate, stale or finished job)."""

    reason: str


@dataclass(frozen=True)
class Defer:
    """Put the message back on the queue with a delay; the job stays waiting with `reason`."""

    reason: str


@dataclass(frozen=True)
class Launch:
    """Claim the job and run its task. `takeover` is the expired claim being recovered, if any."""

    takeover: str | None = None


@dataclass(frozen=True)
class CancelWaiting:
    """The job was cancelled before it got a task: record CANCELLED."""

    reason: str


Decision = Skip | Defer | Launch | CancelWaiting


def claim_expired(job: JobRecord, now: datetime) -> bool:
    if job.launch_claimed_at is None:
        return True
    return parse_iso(job.launch_claimed_at) + timedelta(seconds=LAUNCH_LEASE_SECONDS) <= now


def decide(*, job: JobRecord, message_attempt: int, now: datetime, room: bool, room_reason: str) -> Decision:
    """What to do with a valid message for an existing job record.

    `room` says whether one more training task fits under the concurrency cap (`room_reason` says why not).
    """
    if job.terminal:
        return Skip(f"job already {job.state}")
    if message_attempt != job.attempt:
        return Skip(f"message is for attempt {message_attempt}, job is at attempt {job.attempt}")
    if job.state in ACTIVE:
        return Skip(f"attempt {job.attempt} already launched ({job.state}, task {job.task_arn})")
    if job.state not in WAITING:  # pragma: no cover - every state is terminal, active or waiting
        return Skip(f"job in unexpected state {job.state}")
    if job.launch_claim is not None and not claim_expired(job, now):
        # A cancel waits too: the claim holder's record sees cancel_requested and stops the task it launched.
        return Defer(f"launch of attempt {job.attempt} in progress elsewhere (claim {job.launch_claim})")
    if job.cancel_requested:  # with an expired claim, the cancel first stops whatever that launch started
        return CancelWaiting("cancelled before a task was launched")
    if job.launch_claim is not None:
        return Launch(takeover=job.launch_claim)
    if not room:
        return Defer(room_reason)
    return Launch()


def backoff_seconds(deferrals: int, job_id: str) -> int:
    """Exponential backoff for a deferred message: 10 s, 20 s, 40 s ... capped at 900 s (SQS's maximum
    DelaySeconds), with up to +25% deterministic jitter from the job id so a burst does not return at once."""
    base = min(MAX_DEFER_SECONDS, BASE_DEFER_SECONDS * (2 ** min(deferrals, 16)))
    spread = int.from_bytes(hashlib.sha256(f"{job_id}:{deferrals}".encode()).digest()[:2], "big") / 65535
    return min(MAX_DEFER_SECONDS, int(base * (1 + 0.25 * spread)))


def cap_reason(active: int, maximum: int) -> str:
    return f"waiting: concurrency cap reached ({active} of {maximum} training tasks active)"


# --- the launch plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchConfig:
    """The parts of the submitter's settings a launch plan needs."""

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
    size = len(json.dumps(overrides, separators=(",", ":")))
    if size > MAX_OVERRIDES_CHARS:
        raise OverridesTooLarge(size)
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


class OverridesTooLarge(ValueError):
    def __init__(self, size: int) -> None:
        super().__init__(
            f"command + environment make {size} characters of RunTask overrides (at most {MAX_OVERRIDES_CHARS})"
        )
        self.size = size


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
