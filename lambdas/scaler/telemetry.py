"""The decision's one structured log line and its EMF metrics.

Metrics (namespace POWERTOOLS_METRICS_NAMESPACE, default dimension ``service``):
BacklogPerTask, DesiredTasks, and ScalerErrors on failure. The reason and the trigger
go in as EMF metadata, not dimensions: a dimension per reason would split the
DesiredTasks series into one series per reason.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from jobs.errors import ConfigError, TrainingError
from lifecycle.scaling import Outcome, Trigger


def report_decision(outcome: Outcome, logger: Logger, metrics: Metrics) -> None:
    metrics.add_metric(name="BacklogPerTask", unit=MetricUnit.Count, value=outcome.backlog_per_task)
    metrics.add_metric(name="DesiredTasks", unit=MetricUnit.Count, value=outcome.decision.desired)
    metrics.add_metadata(key="reason", value=str(outcome.decision.reason))
    metrics.add_metadata(key="trigger", value=str(outcome.trigger.kind))
    logger.info("scaling decision", extra=outcome.as_log())


def report_failure(error: TrainingError, trigger: Trigger, logger: Logger, metrics: Metrics) -> None:
    if not isinstance(error, ConfigError):  # without settings there may be no metrics namespace
        metrics.add_metric(name="ScalerErrors", unit=MetricUnit.Count, value=1)
        metrics.add_metadata(key="trigger", value=str(trigger.kind))
    logger.error(
        "scaling decision failed",
        extra={"trigger": trigger.as_log(), "error_type": type(error).__name__, "error": str(error)},
    )
