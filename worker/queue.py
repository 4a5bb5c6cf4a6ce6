"""The worker queue as the worker sees it: its messages, its rules, and the SQS calls on one message.

Deleting a message and changing its visibility log a failure instead of raising: by then the job's record says
what happened (a stale receipt, or SQS's 12-hour visibility limit, leaves the job's lease in the table holding).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobs.children import size_of
from jobs.errors import FieldError, JobSpecInvalid
from jobs.jobspec import JobSpec
from worker.settings import WorkerSettings

log = logging.getLogger("worker")


def check_worker_queue(spec: JobSpec) -> None:
    """Rules of the worker queue: commands run inside the worker's own image, on Fargate (no GPUs)."""
    errors = []
    if spec.dedicated:
        errors.append(FieldError("dedicated", "dedicated jobs belong on the dispatch queue, not the worker queue"))
    if size_of(spec):
        errors.append(FieldError("array", "array jobs and sweeps go to the dispatch queue (it enqueues the children)"))
    if spec.image != "default":
        errors.append(
            FieldError("image", f"the worker queue runs the worker image only; set dedicated: true for {spec.image!r}")
        )
    if errors:
        raise JobSpecInvalid(errors)


@dataclass
class Message:
    message_id: str
    receipt: str
    body: str
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_sqs(cls, raw: Mapping[str, Any]) -> Message:
        return cls(
            message_id=str(raw["MessageId"]),
            receipt=str(raw["ReceiptHandle"]),
            body=str(raw.get("Body") or ""),
            attributes=raw.get("MessageAttributes") or {},
        )


def receive(sqs: Any, settings: WorkerSettings) -> Message | None:
    """One long poll for one message, hidden for a visibility period (SQS errors raise)."""
    raw = sqs.receive_message(
        QueueUrl=settings.queue_url,
        MaxNumberOfMessages=1,
        WaitTimeSeconds=settings.wait_seconds,
        VisibilityTimeout=settings.visibility_seconds,
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    return Message.from_sqs(raw[0]) if raw else None


def delete(sqs: Any, queue_url: str, message: Message) -> None:
    try:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message.receipt)
    except Exception as exc:
        log.warning("DeleteMessage %s failed: %s", message.message_id, exc)


def set_visibility(sqs: Any, queue_url: str, message: Message, seconds: int, why: str) -> None:
    try:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message.receipt, VisibilityTimeout=seconds)
    except Exception as exc:
        log.warning("ChangeMessageVisibility(%d) for %s (%s) failed: %s", seconds, message.message_id, why, exc)
