"""What the scaler needs from AWS, as Protocols: tests pass fakes, the Lambda passes
``scaler.adapters``. One method call is one AWS API call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from scaler.policy import QueueState, ServiceState


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


class QueuePort(Protocol):
    def read(self) -> QueueState:
        """Live counts of the worker queue (GetQueueAttributes)."""
        ...


class ServicePort(Protocol):
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
