"""Builders for realistic AWS payloads and a moto world for the core Lambdas (submitter, task events)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
CLUSTER = "training"


@dataclass
class FakeLambdaContext:
    function_name: str = "submitter"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:submitter"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class World:
    """What the moto fixture created: names, URLs and ARNs, plus the env the Lambdas get."""

    table: str
    dispatch_url: str
    dispatch_arn: str
    dlq_url: str
    worker_url: str
    cluster: str
    cluster_arn: str
    task_definitions: dict[str, str]
    subnets: list[str]
    security_group: str
    env: dict[str, str]


def sqs_record(
    body: str,
    *,
    message_id: str | None = None,
    attributes: Mapping[str, Mapping[str, str]] | None = None,
    queue_arn: str = f"arn:aws:sqs:{REGION}:{ACCOUNT}:dispatch",
    receive_count: int = 1,
) -> dict[str, Any]:
    """One record of an SQS Lambda event, in the documented shape."""
    message_attributes: dict[str, dict[str, Any]] = {
        name: {
            "stringValue": value.get("StringValue", value.get("stringValue")),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", value.get("dataType")),
        }
        for name, value in (attributes or {}).items()
    }
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1764114000000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1764114000001",
        },
        "messageAttributes": message_attributes,
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def sqs_event(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def receive_all(sqs: Any, queue_url: str, *, max_messages: int = 10) -> list[dict[str, Any]]:
    """Receive what is visible on a queue (ReceiveMessage shape, all attributes)."""
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max_messages,
        MessageAttributeNames=["All"],
        AttributeNames=["All"],
        WaitTimeSeconds=0,
    )
    return list(response.get("Messages", []))


def event_from_queue(sqs: Any, queue_url: str, queue_arn: str, *, max_messages: int = 10) -> dict[str, Any]:
    """An SQS Lambda event made of the messages really received from a (moto) queue."""
    records = []
    for message in receive_all(sqs, queue_url, max_messages=max_messages):
        record = sqs_record(
            message["Body"],
            message_id=message["MessageId"],
            attributes=message.get("MessageAttributes"),
            queue_arn=queue_arn,
            receive_count=int(message["Attributes"].get("ApproximateReceiveCount", "1")),
        )
        record["receiptHandle"] = message["ReceiptHandle"]
        records.append(record)
    return sqs_event(records)


def queue_depth(sqs: Any, queue_url: str) -> dict[str, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return {
        "visible": int(attributes["ApproximateNumberOfMessages"]),
        "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
    }


def job_body(job_id: str | None = "job-1", **fields: Any) -> str:
    document: dict[str, Any] = {"command": ["python", "train.py"], "dedicated": True, **fields}
    if job_id is not None:
        document["job_id"] = job_id
    return json.dumps(document)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def task_state_change(
    *,
    task_arn: str,
    job_id: str,
    last_status: str,
    desired_status: str | None = None,
    exit_code: int | None = None,
    stop_code: str | None = None,
    stopped_reason: str | None = None,
    capacity_provider: str = "FARGATE_SPOT",
    cluster_arn: str = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
    task_definition_arn: str = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/training:1",
    at: datetime | None = None,
    started_at: datetime | None = None,
    version: int = 2,
) -> dict[str, Any]:
    """An EventBridge "ECS Task State Change" event in the shape the ECS developer guide documents."""
    at = at or datetime.now(UTC)
    stopped = last_status == "STOPPED"
    container: dict[str, Any] = {
        "containerArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/{CLUSTER}/{uuid.uuid4().hex}",
        "lastStatus": last_status if last_status in ("RUNNING", "STOPPED") else "PENDING",
        "name": "trainer",
        "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/trainer:latest",
        "taskArn": task_arn,
        "networkInterfaces": [{"attachmentId": str(uuid.uuid4()), "privateIpv4Address": "10.0.1.23"}],
        "cpu": "0",
        "memory": "2048",
    }
    if exit_code is not None:
        container["exitCode"] = exit_code
    detail: dict[str, Any] = {
        "attachments": [
            {
                "id": str(uuid.uuid4()),
                "type": "eni",
                "status": "ATTACHED" if not stopped else "DELETED",
                "details": [{"name": "subnetId", "value": "subnet-0123456789abcdef0"}],
            }
        ],
        "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
        "availabilityZone": f"{REGION}a",
        "capacityProviderName": capacity_provider,
        "clusterArn": cluster_arn,
        "connectivity": "CONNECTED",
        "connectivityAt": _iso(at),
        "containers": [container],
        "cpu": "1024",
        "createdAt": _iso(at),
        "desiredStatus": desired_status or ("STOPPED" if stopped else "RUNNING"),
        "enableExecuteCommand": False,
        "ephemeralStorage": {"sizeInGiB": 20},
        "group": "family:training",
        "launchType": "FARGATE",
        "lastStatus": last_status,
        "memory": "2048",
        "overrides": {"containerOverrides": [{"name": "trainer"}]},
        "platformVersion": "1.4.0",
        "pullStartedAt": _iso(at),
        "pullStoppedAt": _iso(at),
        "startedBy": job_id,
        "tags": [],
        "taskArn": task_arn,
        "taskDefinitionArn": task_definition_arn,
        "updatedAt": _iso(at),
        "version": version,
    }
    if last_status in ("RUNNING", "STOPPED"):
        detail["startedAt"] = _iso(started_at or at)
    if stopped:
        detail.update(
            {
                "executionStoppedAt": _iso(at),
                "stoppingAt": _iso(at),
                "stoppedAt": _iso(at),
                "stopCode": stop_code or "EssentialContainerExited",
                "stoppedReason": stopped_reason or "Essential container in task exited",
            }
        )
    elif stop_code:  # e.g. the Spot interruption notice: still RUNNING, desired STOPPED
        detail["stopCode"] = stop_code
        detail["stoppedReason"] = stopped_reason or ""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": _iso(at),
        "region": REGION,
        "resources": [task_arn],
        "detail": detail,
    }


def scheduled_event(at: datetime | None = None) -> dict[str, Any]:
    """An EventBridge schedule event, as documented for scheduled rules."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": _iso(at or datetime.now(UTC)),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/task-events-reconcile"],
        "detail": {},
    }


def run_batch(
    sqs: Any, queue_url: str, queue_arn: str, invoke: Any, *, max_messages: int = 10
) -> dict[str, Any] | None:
    """Play the SQS event source mapping once: receive a batch, invoke, delete the records that succeeded
    and make the reported failures visible again (as their visibility timeout would). None if empty."""
    event = event_from_queue(sqs, queue_url, queue_arn, max_messages=max_messages)
    if not event["Records"]:
        return None
    result: dict[str, Any] = invoke(event)
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    for record in event["Records"]:
        if record["messageId"] in failed:
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )
        else:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])
    return result
