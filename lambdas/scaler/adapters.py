"""boto3 implementations of the scaler's ports.

The surplus clock lives in one tag on the worker service itself, so that a single
DescribeServices(include=["TAGS"]) reads the counts and the clock together:

    training-autoscaler:surplus-since = "<epoch seconds>@<desired count it was started for>"

Binding the clock to the desired count means an UpdateService needs no second write
to invalidate it: after the count changes the old tag no longer applies and is removed
later by a decision that has a write to spare. Calls per decision: 2 reads, plus at
most one of UpdateService / TagResource / UntagResource.

Clients are created lazily, once per process, with botocore's standard retry mode
(exponential backoff with jitter on throttling and transient errors).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from scaler.errors import AwsCallFailed, QueueNotFound, ScalerError, ServiceNotFound, Throttled
from scaler.policy import QueueState, ServiceState
from scaler.ports import ServiceSnapshot

CLOCK_TAG = "training-autoscaler:surplus-since"

# Standard mode: up to 4 attempts in all (3 retries), backoff min(20 s, random * 2**n). Lambda timeout
# must leave room for ~7 s of backoff per call.
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=3, read_timeout=10)

_QUEUE_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
_THROTTLING = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    }
)
_NO_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
_NO_SERVICE = frozenset({"ServiceNotFoundException", "ServiceNotActiveException", "ClusterNotFoundException"})


@cache
def aws_client(service_name: str) -> Any:
    """One client per AWS service per process, created on first use (never at import)."""
    return boto3.client(service_name, config=CLIENT_CONFIG)


def translate_client_error(operation: str, error: ClientError | BotoCoreError) -> ScalerError:
    """The one place where AWS errors become the scaler's typed errors."""
    if isinstance(error, BotoCoreError):
        return AwsCallFailed(operation, type(error).__name__, str(error))
    code = str(error.response.get("Error", {}).get("Code", ""))
    message = str(error.response.get("Error", {}).get("Message", ""))
    if code in _THROTTLING:
        return Throttled(f"{operation} still throttled after retries: {code}")
    if code in _NO_QUEUE:
        return QueueNotFound(f"{operation}: worker queue not found: {message}")
    if code in _NO_SERVICE:
        return ServiceNotFound(f"{operation}: {code}: {message}")
    return AwsCallFailed(operation, code, message)


@contextmanager
def aws_call(operation: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise translate_client_error(operation, error) from error


def encode_clock(since: float, desired: int) -> str:
    return f"{since:.3f}@{desired}"


def decode_clock(value: str, desired: int) -> tuple[float | None, bool]:
    """(surplus_since, stale): the clock applies only to the desired count it was written for."""
    since_text, _, desired_text = value.partition("@")
    try:
        since, written_for = float(since_text), int(desired_text)
    except ValueError:
        return None, True
    if written_for != desired or since != since:  # NaN never equals itself
        return None, True
    return since, False


class SqsQueue:
    """QueuePort over GetQueueAttributes."""

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self._url = queue_url
        self._client = client

    def read(self) -> QueueState:
        client = self._client or aws_client("sqs")
        with aws_call("GetQueueAttributes"):
            attrs = client.get_queue_attributes(QueueUrl=self._url, AttributeNames=list(_QUEUE_ATTRIBUTES))
        values = attrs.get("Attributes", {})
        visible, in_flight, delayed = (int(values.get(name, 0)) for name in _QUEUE_ATTRIBUTES)
        return QueueState(visible=visible, in_flight=in_flight, delayed=delayed)


class EcsService:
    """ServicePort over DescribeServices / UpdateService / TagResource / UntagResource."""

    def __init__(self, cluster: str, service: str, client: Any | None = None) -> None:
        self._cluster = cluster
        self._service = service
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws_client("ecs")

    def read(self) -> ServiceSnapshot:
        with aws_call("DescribeServices"):
            response = self.client.describe_services(cluster=self._cluster, services=[self._service], include=["TAGS"])
        services = response.get("services") or []
        if not services or services[0].get("status") != "ACTIVE":
            failures = response.get("failures") or [{}]
            status = services[0].get("status") if services else failures[0].get("reason", "MISSING")
            raise ServiceNotFound(f"DescribeServices: {self._cluster}/{self._service} is {status}")
        svc = services[0]
        state = ServiceState(
            desired=int(svc.get("desiredCount", 0)),
            running=int(svc.get("runningCount", 0)),
            pending=int(svc.get("pendingCount", 0)),
        )
        tags = {tag.get("key"): tag.get("value", "") for tag in svc.get("tags") or []}
        raw = tags.get(CLOCK_TAG)
        since, stale = (None, False) if raw is None else decode_clock(raw, state.desired)
        return ServiceSnapshot(arn=svc["serviceArn"], state=state, surplus_since=since, stale_clock=stale)

    def set_desired(self, desired: int) -> None:
        with aws_call("UpdateService"):
            self.client.update_service(cluster=self._cluster, service=self._service, desiredCount=desired)

    def save_surplus_clock(self, service_arn: str, since: float, desired: int) -> None:
        with aws_call("TagResource"):
            self.client.tag_resource(
                resourceArn=service_arn, tags=[{"key": CLOCK_TAG, "value": encode_clock(since, desired)}]
            )

    def clear_surplus_clock(self, service_arn: str) -> None:
        with aws_call("UntagResource"):
            self.client.untag_resource(resourceArn=service_arn, tagKeys=[CLOCK_TAG])
