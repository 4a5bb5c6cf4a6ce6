"""The events this handler accepts, parsed with the Powertools parser's EventBridge model."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict

TASK_STATE_CHANGE = "aws.ecs/ECS Task State Change"
SCHEDULED_EVENT = "aws.events/Scheduled Event"

logger = Logger(child=True)


class EcsContainer(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    exitCode: int | None = None
    reason: str | None = None
    lastStatus: str | None = None


class EcsTaskDetail(BaseModel):
    """The fields of an "ECS Task State Change" detail this handler reads (others are kept, unvalidated)."""

    model_config = ConfigDict(extra="allow")

    clusterArn: str
    taskArn: str
    lastStatus: str
    desiredStatus: str | None = None
    startedBy: str | None = None
    stopCode: str | None = None
    stoppedReason: str | None = None
    containers: list[EcsContainer] = []
    capacityProviderName: str | None = None
    startedAt: str | None = None
    stoppedAt: str | None = None


class TaskStateChangeEvent(EventBridgeModel):
    detail: EcsTaskDetail


def event_kind(event: dict[str, Any]) -> str:
    """`source/detail-type`, e.g. "aws.ecs/ECS Task State Change"."""
    return f"{event.get('source')}/{event.get('detail-type')}"


def task_detail(event: dict[str, Any]) -> dict[str, Any] | None:
    """A Task State Change event's task, or None for a malformed event (logged; retrying it cannot help)."""
    try:
        return parse(event=event, model=TaskStateChangeEvent).detail.model_dump()
    except ValidationError as exc:
        logger.error("malformed ECS task event", extra={"errors": exc.errors(include_url=False)})
        return None
