"""Pure scaling policy for the worker service: desired task count from live queue depth.

No I/O, no clock, no imports beyond the standard library: the scaler Lambda and the
benchmark simulator run this exact module. Time comes in as ``now`` (epoch seconds)
and the only state carried between decisions is ``surplus_since``.

Rules (``jobs_per_task`` = jobs one worker task runs at once):

* demand  = ceil((visible + in_flight) / jobs_per_task); needed = demand clamped to [min, max].
  In-flight messages count: a worker busy with a job is capacity in use (KEDA's
  ``scaleOnInFlight`` default does the same; see docs/aws-facts.md section 4).
* busy    = ceil(in_flight / jobs_per_task), reserve = ceil(delayed / jobs_per_task),
  both capped at max. Delayed messages never scale out, but the tasks they will need
  are not scaled away. floor = max(needed, busy, reserve).
* Scale out at once (from zero too) when needed > desired.
* When desired > floor the fleet has a surplus: the clock starts (``surplus_since``)
  and desired holds; once the surplus has lasted ``scale_in_grace_s`` the fleet scales
  in to floor, never below the tasks busy with jobs, never below min.
* A desired count outside [min, max] (edited by hand) is corrected at once.

The decision acts on the service's *desired* count, not on running tasks: tasks that
are still starting (Fargate takes ~35 s, docs/aws-facts.md section 1) already count
as capacity, so a slow start never triggers more scale-out. ``running`` and ``pending``
are carried for observability only.

Every change of the desired count comes back with ``surplus_since=None``: a decision
changes the count or the clock, never both, which keeps the scaler within one write call.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why a decision came out as it did (a str: compare with plain strings freely)."""

    BACKLOG = "backlog"  # scale out: more work than capacity
    BELOW_MIN = "below_min"  # desired was below min: corrected at once
    ABOVE_MAX = "above_max"  # desired was above max: corrected at once
    STEADY = "steady"  # capacity matches the work: nothing to do
    GRACE_STARTED = "grace_started"  # surplus seen: clock started, holding
    GRACE = "grace"  # surplus, still within the grace period: holding
    SCALE_IN = "scale_in"  # surplus lasted the whole grace period: scale in to the floor


@dataclass(frozen=True)
class ScalingConfig:
    min_tasks: int
    max_tasks: int
    jobs_per_task: int
    scale_in_grace_s: float

    def __post_init__(self) -> None:
        if self.min_tasks < 0:
            raise ValueError(f"min_tasks must be >= 0, got {self.min_tasks}")
        if self.max_tasks < self.min_tasks:
            raise ValueError(f"max_tasks ({self.max_tasks}) must be >= min_tasks ({self.min_tasks})")
        if self.jobs_per_task < 1:
            raise ValueError(f"jobs_per_task must be >= 1, got {self.jobs_per_task}")
        if not self.scale_in_grace_s >= 0:  # also rejects NaN
            raise ValueError(f"scale_in_grace_s must be >= 0, got {self.scale_in_grace_s}")


@dataclass(frozen=True)
class QueueState:
    visible: int
    in_flight: int
    delayed: int

    def __post_init__(self) -> None:
        _non_negative(visible=self.visible, in_flight=self.in_flight, delayed=self.delayed)


@dataclass(frozen=True)
class ServiceState:
    desired: int
    running: int
    pending: int

    def __post_init__(self) -> None:
        _non_negative(desired=self.desired, running=self.running, pending=self.pending)


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str
    surplus_since: float | None


def tasks_for(jobs: int, jobs_per_task: int) -> int:
    """Tasks needed to run ``jobs`` jobs at ``jobs_per_task`` each (ceiling division)."""
    return -(-jobs // jobs_per_task)


def decide(
    queue: QueueState,
    service: ServiceState,
    config: ScalingConfig,
    *,
    now: float,
    surplus_since: float | None,
) -> Decision:
    """Return the desired count for the worker service and the surplus clock to carry on.

    ``Decision.desired == service.desired`` means "leave the service alone".
    """
    lo, hi, per_task = config.min_tasks, config.max_tasks, config.jobs_per_task
    desired = service.desired

    if desired > hi:
        return Decision(hi, Reason.ABOVE_MAX, None)

    needed = min(max(tasks_for(queue.visible + queue.in_flight, per_task), lo), hi)
    if needed > desired:
        return Decision(needed, Reason.BELOW_MIN if desired < lo else Reason.BACKLOG, None)

    busy = min(tasks_for(queue.in_flight, per_task), hi)
    reserve = min(tasks_for(queue.delayed, per_task), hi)
    floor = max(needed, busy, reserve)
    if desired <= floor:
        return Decision(desired, Reason.STEADY, None)

    # Surplus: desired > floor. A clock from the future (clock skew) restarts now.
    if surplus_since is None or surplus_since > now:
        started, reason = now, Reason.GRACE_STARTED
    else:
        started, reason = surplus_since, Reason.GRACE
    if now - started >= config.scale_in_grace_s:
        return Decision(floor, Reason.SCALE_IN, None)
    return Decision(desired, reason, started)


def _non_negative(**counts: int) -> None:
    for name, value in counts.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
