"""Scaler Lambda: sets the worker service's desired count from live queue depth.

Triggers: CloudWatch alarm state changes, an EventBridge schedule (reconciliation) and
"Scale Nudge" events; all lead to the same decision from live state (lifecycle.scaling).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs.errors import TrainingError
from lifecycle.scaling import reconcile
from scaler.events import parse_trigger
from scaler.telemetry import report_decision, report_failure
from scaler.wiring import Ports, default_ports, get_settings

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext, ports: Ports | None = None) -> dict[str, Any]:
    trigger = parse_trigger(event)
    try:
        settings = get_settings()
        metrics.namespace = settings.metrics_namespace
        ports = ports or default_ports()
        outcome = reconcile(
            trigger=trigger, config=settings.scaling, queue=ports.queue, service=ports.service, now=ports.clock()
        )
    except TrainingError as error:
        report_failure(error, trigger, logger, metrics)
        raise
    report_decision(outcome, logger, metrics)
    return outcome.as_response()
