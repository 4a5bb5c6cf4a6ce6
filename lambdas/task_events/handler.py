"""Task-events Lambda handler: ECS Task State Change events and the scheduled reconcile pass (lifecycle.task_watch)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from lifecycle.ports import Ports
from task_events.models import SCHEDULED_EVENT, TASK_STATE_CHANGE, event_kind, task_detail
from task_events.wiring import task_watch

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"lifecycle"})  # its stdlib loggers, as JSON
logger.remove_keys(["name"])  # the copy adds a `name` key to every line; keep the log format as it was


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any, ports: Ports | None = None) -> dict[str, int]:
    watch, kind = task_watch(ports), event_kind(event)
    if kind == TASK_STATE_CHANGE:
        detail = task_detail(event)
        counts = watch.on_task_state_change(detail) if detail else {"MalformedEvent": 1}
    elif kind == SCHEDULED_EVENT:
        counts = watch.reconcile()
    else:
        logger.warning("unexpected event ignored", extra={"kind": kind})
        counts = {"UnexpectedEvent": 1}
    for name, count in {"EventsHandled": 1, **counts}.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    return counts
