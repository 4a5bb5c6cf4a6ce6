"""Submitter Lambda handler: SQS batch (partial batch responses) -> one RunTask per job."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from submitter.service import Batch, Message, Ports
from submitter.wiring import default_ports, get_settings

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any, ports: Ports | None = None) -> dict[str, Any]:
    batch = Batch(ports or default_ports(), get_settings(), claim_prefix=context.aws_request_id)

    def record_handler(record: SQSRecord) -> str:
        outcome = batch.handle(Message.from_sqs_record(record.raw_event))
        metrics.add_metric(name=outcome.value, unit=MetricUnit.Count, value=1)
        return outcome.value

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    metrics.add_metric(name="RecordFailures", unit=MetricUnit.Count, value=len(response["batchItemFailures"]))
    return dict(response)
