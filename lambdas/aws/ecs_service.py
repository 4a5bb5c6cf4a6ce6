"""The ECS adapter of the scaler's WorkerServicePort: DescribeServices / UpdateService / TagResource / UntagResource.

The surplus clock lives in one tag on the worker service itself, so that a single
DescribeServices(include=["TAGS"]) reads the counts and the clock together:

    training-autoscaler:surplus-since = "<epoch seconds>@<desired count it was started for>"

Binding the clock to the desired count means an UpdateService needs no second write
to invalidate it: after the count changes the old tag no longer applies and is removed
later by a decision that has a write to spare. Errors are translated in aws.clients.
"""

from __future__ import annotations

from typing import Any

from aws.clients import call
from jobs.errors import ServiceNotFound
from lifecycle.scaling import ServiceSnapshot
from lifecycle.scaling_policy import ServiceState

CLOCK_TAG = "training-autoscaler:surplus-since"


def encode_clock(since: float, desired: int) -> str:
    return f"{since:.3f}@{desired}"


def decode_clock(value: str, desired: int) -> tuple[float | None, bool]:
    """(surplus_since, stale): the clock applies only to the desired count it was written for."""
    since_text, _, desired_text = value.partition("@")
    try:
        since, written_for = float(since_text), int(desired_text)
    except ValueError:
        return None, True
    if written_for != desired or since != since:  # NaN never equals itself
        return None, True
    return since, False


class EcsWorkerService:
    """One ECS service's desired count and its surplus clock tag."""

    def __init__(self, ecs: Any, cluster: str, service: str) -> None:
        self._ecs = ecs
        self._cluster = cluster
        self._service = service

    def read(self) -> ServiceSnapshot:
        response = call(
            "DescribeServices",
            self._ecs.describe_services,
            cluster=self._cluster,
            services=[self._service],
            include=["TAGS"],
        )
        services = response.get("services") or []
        if not services or services[0].get("status") != "ACTIVE":
            failures = response.get("failures") or [{}]
            status = services[0].get("status") if services else failures[0].get("reason", "MISSING")
            raise ServiceNotFound("DescribeServices", str(status), f"{self._cluster}/{self._service} is {status}")
        svc = services[0]
        state = ServiceState(
            desired=int(svc.get("desiredCount", 0)),
            running=int(svc.get("runningCount", 0)),
            pending=int(svc.get("pendingCount", 0)),
        )
        tags = {tag.get("key"): tag.get("value", "") for tag in svc.get("tags") or []}
        raw = tags.get(CLOCK_TAG)
        since, stale = (None, False) if raw is None else decode_clock(raw, state.desired)
        return ServiceSnapshot(arn=svc["serviceArn"], state=state, surplus_since=since, stale_clock=stale)

    def set_desired(self, desired: int) -> None:
        call(
            "UpdateService",
            self._ecs.update_service,
            cluster=self._cluster,
            service=self._service,
            desiredCount=desired,
        )

    def save_surplus_clock(self, service_arn: str, since: float, desired: int) -> None:
        tags = [{"key": CLOCK_TAG, "value": encode_clock(since, desired)}]
        call("TagResource", self._ecs.tag_resource, resourceArn=service_arn, tags=tags)

    def clear_surplus_clock(self, service_arn: str) -> None:
        call("UntagResource", self._ecs.untag_resource, resourceArn=service_arn, tagKeys=[CLOCK_TAG])
