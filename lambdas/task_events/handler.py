"""Task-events Lambda handler: ECS Task State Change events and the scheduled reconcile pass."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import ValidationError, parse

from task_events.models import SCHEDULED_EVENT, TASK_STATE_CHANGE, TaskStateChangeEvent, event_kind
from task_events.service import Ports, Summary, TaskEvents
from task_events.wiring import default_ports, get_settings

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any, ports: Ports | None = None) -> dict[str, int]:
    events = TaskEvents(ports or default_ports(), get_settings())
    kind = event_kind(event)
    if kind == TASK_STATE_CHANGE:
        try:
            detail = parse(event=event, model=TaskStateChangeEvent).detail.model_dump()
        except ValidationError as exc:  # retrying a malformed event cannot help: log it and drop it
            logger.error("malformed ECS task event", extra={"errors": exc.errors(include_url=False)})
            detail = None
        summary = events.on_task_state_change(detail) if detail else Summary({"MalformedEvent": 1})
    elif kind == SCHEDULED_EVENT:
        summary = events.reconcile()
    else:
        logger.warning("unexpected event ignored", extra={"kind": kind})
        summary = Summary({"UnexpectedEvent": 1})
    metrics.add_metric(name="EventsHandled", unit=MetricUnit.Count, value=1)
    for name, count in summary.counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    return summary.counts
