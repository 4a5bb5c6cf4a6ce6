"""Scaler Lambda: sets the worker service's desired count from live queue depth.

Triggers: CloudWatch alarm state changes, an EventBridge schedule (reconciliation) and
"Scale Nudge" events; all lead to the same decision from live state (scaler.logic).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from scaler.deps import Deps, default_deps
from scaler.errors import ScalerError
from scaler.events import parse_trigger
from scaler.logic import reconcile
from scaler.telemetry import report_decision, report_failure

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext, deps: Deps | None = None) -> dict[str, Any]:
    trigger = parse_trigger(event)
    try:
        deps = deps or default_deps()
        metrics.namespace = deps.settings.metrics_namespace
        outcome = reconcile(
            trigger=trigger,
            config=deps.settings.scaling,
            queue=deps.queue,
            service=deps.service,
            now=deps.clock(),
        )
    except ScalerError as error:
        report_failure(error, trigger, logger, metrics)
        raise
    report_decision(outcome, logger, metrics)
    return outcome.as_response()
