"""The SQS adapters: SendMessage / SendMessageBatch, and the queue depth the scaler reads; errors translated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws.clients import call
from jobs.errors import TransientAwsError
from lifecycle.scaling_policy import QueueState


class SqsSender:
    """SendMessage to a queue URL, errors translated."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs

    def send(
        self,
        queue_url: str,
        body: str,
        attributes: Mapping[str, Mapping[str, str]],
        *,
        delay_seconds: int = 0,
    ) -> str:
        response = call(
            "SendMessage",
            self._sqs.send_message,
            QueueUrl=queue_url,
            MessageBody=body,
            MessageAttributes=dict(attributes),
            DelaySeconds=max(0, min(900, delay_seconds)),
        )
        return str(response["MessageId"])

    def send_batch(self, queue_url: str, bodies: Sequence[tuple[str, str]]) -> None:
        """SendMessageBatch of up to 10 (entry id, body) pairs; any entry SQS refused raises TransientAwsError
        (the caller repeats the batch: consumers are idempotent on the job id)."""
        entries = [{"Id": entry, "MessageBody": body} for entry, body in bodies]
        response = call("SendMessageBatch", self._sqs.send_message_batch, QueueUrl=queue_url, Entries=entries)
        failed = response.get("Failed") or []
        if failed:
            detail = "; ".join(f"{f.get('Id')}: {f.get('Code')} {f.get('Message', '')}".strip() for f in failed)
            raise TransientAwsError("SendMessageBatch", "PartialFailure", detail)


class SqsQueueDepth:
    """The scaler's QueueDepthPort: one queue's visible, in-flight and delayed counts (GetQueueAttributes)."""

    ATTRIBUTES = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    )

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url

    def read(self) -> QueueState:
        response = call(
            "GetQueueAttributes",
            self._sqs.get_queue_attributes,
            QueueUrl=self._url,
            AttributeNames=list(self.ATTRIBUTES),
        )
        values = response.get("Attributes", {})
        visible, in_flight, delayed = (int(values.get(name, 0)) for name in self.ATTRIBUTES)
        return QueueState(visible=visible, in_flight=in_flight, delayed=delayed)
