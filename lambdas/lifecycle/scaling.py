"""One scaling decision of the worker service: read live state, apply the pure policy, write at most once.

No boto3, no environment, no clock: the ports and ``now`` come in as arguments (the scaler Lambda passes
the adapters in ``aws.sqs`` / ``aws.ecs_service``, the benchmark its simulator, the tests fakes).

AWS calls per decision: GetQueueAttributes + DescribeServices, then at most one write:
UpdateService when the desired count changes, else TagResource / UntagResource when the
surplus clock starts / stops (or a stale clock is cleaned up). The policy never changes
the count and starts a clock in the same decision, so the budget of 3 calls holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from lifecycle.scaling_policy import Decision, QueueState, ScalingConfig, ServiceState, decide

READS_PER_DECISION = 2


class TriggerKind(StrEnum):
    ALARM = "alarm"
    SCHEDULE = "schedule"
    NUDGE = "nudge"
    MANUAL = "manual"


@dataclass(frozen=True)
class Trigger:
    """What woke the scaler. It never changes the decision (which depends on live state only): it is logged."""

    kind: TriggerKind
    event_id: str | None = None
    name: str | None = None  # alarm name, schedule rule ARN or nudge reason
    state: str | None = None  # alarm state (ALARM / OK / INSUFFICIENT_DATA)

    def as_log(self) -> dict[str, str | None]:
        return {"kind": self.kind, "event_id": self.event_id, "name": self.name, "state": self.state}


# --- ports: what a decision needs from AWS; one method call is one AWS API call ----------------


@dataclass(frozen=True)
class ServiceSnapshot:
    """The worker service as one DescribeServices call sees it.

    ``surplus_since`` is the stored surplus clock if it was written for the current
    desired count, else None. A clock record written for another desired count (or one
    that cannot be read) is ignored and reported as ``stale_clock`` so that a decision
    with a free write can remove it.
    """

    arn: str
    state: ServiceState
    surplus_since: float | None = None
    stale_clock: bool = False


class QueueDepthPort(Protocol):
    def read(self) -> QueueState:
        """Live counts of the worker queue (GetQueueAttributes)."""
        ...


class WorkerServicePort(Protocol):
    def read(self) -> ServiceSnapshot:
        """Counts and the stored surplus clock of the worker service (DescribeServices)."""
        ...

    def set_desired(self, desired: int) -> None:
        """Set the desired count (UpdateService). Invalidates any stored clock."""
        ...

    def save_surplus_clock(self, service_arn: str, since: float, desired: int) -> None:
        """Store the surplus clock, bound to the desired count it was started for (TagResource)."""
        ...

    def clear_surplus_clock(self, service_arn: str) -> None:
        """Remove the stored surplus clock (UntagResource)."""
        ...


# --- the decision ---------------------------------------------------------------------------------


class Write(StrEnum):
    UPDATE_SERVICE = "update_service"
    SAVE_CLOCK = "save_clock"
    CLEAR_CLOCK = "clear_clock"


@dataclass(frozen=True)
class Outcome:
    trigger: Trigger
    queue: QueueState
    service: ServiceState
    config: ScalingConfig
    now: float
    surplus_since_in: float | None
    decision: Decision
    writes: tuple[Write, ...]

    @property
    def changed(self) -> bool:
        return self.decision.desired != self.service.desired

    @property
    def aws_calls(self) -> int:
        return READS_PER_DECISION + len(self.writes)

    @property
    def backlog_per_task(self) -> float:
        """Messages (visible + in flight) per running task; per one task when none runs."""
        return (self.queue.visible + self.queue.in_flight) / max(self.service.running, 1)

    def as_response(self) -> dict[str, Any]:
        return {
            "desired": self.decision.desired,
            "previous_desired": self.service.desired,
            "reason": str(self.decision.reason),
            "changed": self.changed,
        }

    def as_log(self) -> dict[str, Any]:
        """Every input and the outcome of the decision, for the one structured log line.

        ("worker_service", not "service": Powertools Logger owns the "service" key.)
        """
        return {
            "trigger": self.trigger.as_log(),
            "queue": {
                "visible": self.queue.visible,
                "in_flight": self.queue.in_flight,
                "delayed": self.queue.delayed,
            },
            "worker_service": {
                "desired": self.service.desired,
                "running": self.service.running,
                "pending": self.service.pending,
            },
            "config": {
                "min_tasks": self.config.min_tasks,
                "max_tasks": self.config.max_tasks,
                "jobs_per_task": self.config.jobs_per_task,
                "scale_in_grace_s": self.config.scale_in_grace_s,
            },
            "now": self.now,
            "surplus_since_in": self.surplus_since_in,
            "decision": {
                "desired": self.decision.desired,
                "reason": str(self.decision.reason),
                "surplus_since": self.decision.surplus_since,
            },
            "changed": self.changed,
            "writes": [str(w) for w in self.writes],
            "aws_calls": self.aws_calls,
        }


def reconcile(
    *,
    trigger: Trigger,
    config: ScalingConfig,
    queue: QueueDepthPort,
    service: WorkerServicePort,
    now: float,
) -> Outcome:
    # visible + in_flight does not change when a worker takes a message, so a pickup
    # between the two reads cannot make a busy worker look idle.
    queue_state = queue.read()
    snapshot = service.read()
    decision = decide(queue_state, snapshot.state, config, now=now, surplus_since=snapshot.surplus_since)
    writes = _apply(decision, snapshot, service)
    return Outcome(
        trigger=trigger,
        queue=queue_state,
        service=snapshot.state,
        config=config,
        now=now,
        surplus_since_in=snapshot.surplus_since,
        decision=decision,
        writes=writes,
    )


def _apply(decision: Decision, snapshot: ServiceSnapshot, service: WorkerServicePort) -> tuple[Write, ...]:
    if decision.desired != snapshot.state.desired:
        # Changing the count invalidates the stored clock (it is bound to the old count).
        service.set_desired(decision.desired)
        if decision.surplus_since is None:
            return (Write.UPDATE_SERVICE,)
        # Not produced by scaling_policy; kept correct for any policy, at one extra call.
        service.save_surplus_clock(snapshot.arn, decision.surplus_since, decision.desired)
        return (Write.UPDATE_SERVICE, Write.SAVE_CLOCK)
    if decision.surplus_since is not None and decision.surplus_since != snapshot.surplus_since:
        service.save_surplus_clock(snapshot.arn, decision.surplus_since, decision.desired)
        return (Write.SAVE_CLOCK,)
    if decision.surplus_since is None and (snapshot.surplus_since is not None or snapshot.stale_clock):
        service.clear_surplus_clock(snapshot.arn)
        return (Write.CLEAR_CLOCK,)
    return ()
