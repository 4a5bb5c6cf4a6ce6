"""Submitter Lambda handler: an SQS batch (partial batch responses) -> lifecycle.submit, one message at a time."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lifecycle.ports import Ports
from lifecycle.submit import Message, Submitter
from submitter.wiring import default_ports, dispatch_config

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"lifecycle"})  # its stdlib loggers, as JSON
logger.remove_keys(["name"])  # the copy adds a `name` key to every line; keep the log format as it was
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any, ports: Ports | None = None) -> dict[str, Any]:
    submitter = Submitter(ports or default_ports(), dispatch_config(), claim_prefix=context.aws_request_id)

    def record_handler(record: SQSRecord) -> str:
        outcome = submitter.handle(Message.from_sqs_record(record.raw_event))
        metrics.add_metric(name=outcome.value, unit=MetricUnit.Count, value=1)  # the Outcome names the metric
        return outcome.value

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    metrics.add_metric(name="RecordFailures", unit=MetricUnit.Count, value=len(response["batchItemFailures"]))
    return dict(response)
