"""Test kit for the scaler's tests (a uniquely named module, imported by the conftest and
the test modules of this folder): a moto world (worker queue + ECS cluster + worker service),
event payloads in the shapes the AWS docs show, a fake Lambda context, a botocore hook that
counts AWS calls, and a runner for the real handler at a chosen time."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"
CLUSTER = "training"
SERVICE = "worker"
QUEUE = "training-worker-queue"
GRACE_S = 300.0


def scaler_environment(queue_url: str) -> dict[str, str]:
    return {
        "CLUSTER_NAME": CLUSTER,
        "WORKER_SERVICE_NAME": SERVICE,
        "WORKER_QUEUE_URL": queue_url,
        "MIN_WORKERS": "0",
        "MAX_WORKERS": "10",
        "JOBS_PER_WORKER": "1",
        "SCALE_IN_GRACE_SECONDS": str(GRACE_S),
        "JOBS_TABLE_NAME": "jobs",
        "POWERTOOLS_SERVICE_NAME": "scaler",
        "POWERTOOLS_METRICS_NAMESPACE": "TrainingAutoscaler",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


@dataclass
class World:
    """The scaler's AWS world in moto, plus a few helpers to move it."""

    sqs: Any
    ecs: Any
    queue_url: str
    service_arn: str

    def desired(self) -> int:
        svc = self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
        return int(svc["desiredCount"])

    def set_desired(self, count: int) -> None:
        self.ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=count)

    def tags(self) -> dict[str, str]:
        tags = self.ecs.list_tags_for_resource(resourceArn=self.service_arn)["tags"]
        return {t["key"]: t["value"] for t in tags}

    def visible(self) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def send(self, count: int, delay_s: int = 0) -> None:
        for i in range(count):
            self.sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=json.dumps({"command": ["python", "train.py", str(i)]}),
                DelaySeconds=delay_s,
            )

    def take(self, count: int) -> list[str]:
        """Workers receive ``count`` messages: they become in flight. Returns receipt handles."""
        handles: list[str] = []
        while len(handles) < count:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, count - len(handles)),
                VisibilityTimeout=900,
            ).get("Messages", [])
            assert got, "queue ran dry"
            handles += [m["ReceiptHandle"] for m in got]
        return handles

    def finish(self, handles: list[str]) -> None:
        for handle in handles:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=handle)


def build_world() -> World:
    """Create the worker queue, cluster and worker service (desired 0); needs an active mock_aws."""
    sqs = boto3.client("sqs", region_name=REGION)
    ecs = boto3.client("ecs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    ecs.create_cluster(clusterName=CLUSTER)
    ecs.register_task_definition(
        family="worker",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="1024",
        memory="2048",
        containerDefinitions=[{"name": "worker", "image": "worker:latest", "essential": True}],
    )
    arn = ecs.create_service(
        cluster=CLUSTER,
        serviceName=SERVICE,
        taskDefinition="worker",
        desiredCount=0,
        launchType="FARGATE",
    )["service"]["serviceArn"]
    return World(sqs=sqs, ecs=ecs, queue_url=queue_url, service_arn=arn)


class CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at the moment of writing."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@dataclass
class FakeLambdaContext:
    function_name: str = "scaler"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:scaler"
    aws_request_id: str = "3f0b2a4e-5c1d-4e8f-9a7b-1c2d3e4f5a6b"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def alarm_event(state: str = "ALARM", previous: str = "OK") -> dict[str, Any]:
    """CloudWatch alarm state change delivered by EventBridge (CloudWatch User Guide,
    "Alarm events and EventBridge")."""
    alarm = "training-worker-backlog"
    reason_data = {
        "version": "1.0",
        "queryDate": "2026-11-25T10:01:05.123+0000",
        "startDate": "2026-11-25T10:00:00.000+0000",
        "statistic": "Maximum",
        "period": 60,
        "recentDatapoints": [3.0],
        "threshold": 0.0,
        "evaluatedDatapoints": [{"timestamp": "2026-11-25T10:00:00.000+0000", "sampleCount": 1.0, "value": 3.0}],
    }
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2026-11-25T10:01:05Z",
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}"],
        "detail": {
            "alarmName": alarm,
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 1 out of the last 1 datapoints [3.0 (25/11/26 10:00:00)] "
                "was greater than the threshold (0.0) (minimum 1 datapoint for OK -> ALARM transition).",
                "reasonData": json.dumps(reason_data),
                "timestamp": "2026-11-25T10:01:05.127+0000",
            },
            "previousState": {
                "value": previous,
                "reason": "Threshold Crossed: 1 out of the last 1 datapoints [0.0 (25/11/26 09:59:00)] "
                "was not greater than the threshold (0.0).",
                "reasonData": "{}",
                "timestamp": "2026-11-25T09:40:05.127+0000",
            },
            "configuration": {
                "description": "Worker queue has visible messages",
                "metrics": [
                    {
                        "id": "2f7b1c3a-0e1d-4a57-a1c4-9b5d1f1c8e2d",
                        "metricStat": {
                            "metric": {
                                "namespace": "AWS/SQS",
                                "name": "ApproximateNumberOfMessagesVisible",
                                "dimensions": {"QueueName": QUEUE},
                            },
                            "period": 60,
                            "stat": "Maximum",
                        },
                        "returnData": True,
                    }
                ],
            },
        },
    }


def schedule_event() -> dict[str, Any]:
    """EventBridge Scheduled Event (EventBridge User Guide, "Scheduled events")."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2026-11-25T10:02:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/training-scaler-reconcile"],
        "detail": {},
    }


def nudge_event(reason: str = "job submitted") -> dict[str, Any]:
    """A PutEvents custom event, as EventBridge delivers it to the target."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Scale Nudge",
        "source": "training-autoscaler",
        "account": ACCOUNT,
        "time": "2026-11-25T10:01:30Z",
        "region": REGION,
        "resources": [],
        "detail": {"reason": reason},
    }


@dataclass
class CallCounter:
    """Counts API calls (``before-call``: once per operation, retries excluded) and HTTP
    attempts (``before-send``: once per attempt, retries included) on the given clients."""

    calls: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call.*.*", self._on_call)
        # First tier: moto answers in the normal tier of before-send and stops the chain there.
        client.meta.events.register_first("before-send.*.*", self._on_send)

    def _on_call(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def _on_send(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        self.attempts[target.rsplit(".", 1)[-1] or "unknown"] += 1

    def reset(self) -> None:
        self.calls.clear()
        self.attempts.clear()

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass
class Scaler:
    """Runs the real handler with the real boto3 adapters (against moto) at a chosen time,
    counting the AWS calls each decision makes on the scaler's own clients."""

    context: FakeLambdaContext
    counter: CallCounter
    _attached: set[int] = field(default_factory=set)

    def clients(self) -> tuple[Any, Any]:
        """The scaler's process-wide clients (created on first use), with the counter attached."""
        from scaler import wiring

        clients = wiring.client("sqs"), wiring.client("ecs")
        for client in clients:
            if id(client) not in self._attached:
                self.counter.attach(client)
                self._attached.add(id(client))
        return clients

    def __call__(self, event: Any, *, now: float) -> dict[str, Any]:
        from scaler.handler import handler
        from scaler.wiring import default_ports

        self.clients()
        ports = replace(default_ports(), clock=lambda: now)
        self.counter.reset()
        return handler(event, self.context, ports=ports)
