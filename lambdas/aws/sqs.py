"""The SQS adapter: SendMessage and SendMessageBatch with errors translated to domain errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws.clients import translate
from jobs.errors import TransientAwsError


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
        try:
            response = self._sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=body,
                MessageAttributes=dict(attributes),
                DelaySeconds=max(0, min(900, delay_seconds)),
            )
        except Exception as exc:
            error = translate("SendMessage", exc)
            if error is None:
                raise
            raise error from exc
        return str(response["MessageId"])

    def send_batch(self, queue_url: str, bodies: Sequence[tuple[str, str]]) -> None:
        """SendMessageBatch of up to 10 (entry id, body) pairs; any entry SQS refused raises TransientAwsError
        (the caller repeats the batch: consumers are idempotent on the job id)."""
        try:
            response = self._sqs.send_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": entry, "MessageBody": body} for entry, body in bodies]
            )
        except Exception as exc:
            error = translate("SendMessageBatch", exc)
            if error is None:
                raise
            raise error from exc
        failed = response.get("Failed") or []
        if failed:
            detail = "; ".join(f"{f.get('Id')}: {f.get('Code')} {f.get('Message', '')}".strip() for f in failed)
            raise TransientAwsError("SendMessageBatch", "PartialFailure", detail)
