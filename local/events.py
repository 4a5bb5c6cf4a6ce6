"""Event payloads in the shapes AWS documents, as EventBridge and the SQS event source deliver them."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

ACCOUNT = "123456789012"  # moto's default account


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(
    source: str, detail_type: str, detail: Mapping[str, Any], *, region: str, resources: Sequence[str]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": _now(),
        "region": region,
        "resources": list(resources),
        "detail": dict(detail),
    }


def alarm_state_change(
    alarm_name: str, alarm_arn: str, *, state: str, previous: str, reason: str, region: str
) -> dict[str, Any]:
    """EventBridge "CloudWatch Alarm State Change"."""
    detail = {
        "alarmName": alarm_name,
        "state": {"value": state, "reason": reason, "timestamp": _now()},
        "previousState": {"value": previous, "reason": "", "timestamp": _now()},
        "configuration": {"description": ""},
    }
    return envelope("aws.cloudwatch", "CloudWatch Alarm State Change", detail, region=region, resources=[alarm_arn])


def scheduled(rule_name: str, *, region: str) -> dict[str, Any]:
    """EventBridge "Scheduled Event" of a rate/cron rule."""
    rule_arn = f"arn:aws:events:{region}:{ACCOUNT}:rule/{rule_name}"
    return envelope("aws.events", "Scheduled Event", {}, region=region, resources=[rule_arn])


def task_state_change(detail: Mapping[str, Any], *, region: str) -> dict[str, Any]:
    """EventBridge "ECS Task State Change" (detail as DescribeTasks returns a task, camelCase)."""
    return envelope("aws.ecs", "ECS Task State Change", detail, region=region, resources=[str(detail["taskArn"])])


def sqs_batch(messages: Sequence[Mapping[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The SQS event source's batch, from ReceiveMessage results (with all attributes requested)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }
