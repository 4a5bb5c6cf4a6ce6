"""A fake SQS sender (lifecycle.ports.QueuePort): records every message it accepted, per queue URL.

It refuses what SQS refuses (an empty body or attribute value, a batch of 0 or more than 10 entries or with
repeated ids) with RequestRejected, as aws.sqs.SqsSender would raise. `inject("send", fault)` (or "send_batch")
makes the next call raise; `refuse_entries(n)` makes SQS refuse the next n batch entries (the rest of their batch
is sent, then TransientAwsError, as SqsSender raises for a partial failure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fakes.faults import FaultInjection
from jobs.errors import RequestRejected, TransientAwsError

MAX_DELAY_SECONDS = 900
MAX_BATCH = 10


@dataclass(frozen=True)
class SentMessage:
    queue_url: str
    body: str
    message_id: str
    attributes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    delay_seconds: int = 0
    entry_id: str | None = None
    """The SendMessageBatch entry id (None for SendMessage)."""


class FakeQueues(FaultInjection):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[SentMessage] = []
        """Every accepted message, in order."""
        self._refused_entries = 0

    def messages(self, queue_url: str) -> list[SentMessage]:
        return [m for m in self.sent if m.queue_url == queue_url]

    def bodies(self, queue_url: str) -> list[str]:
        return [m.body for m in self.messages(queue_url)]

    def refuse_entries(self, count: int) -> None:
        self._refused_entries += count

    def send(
        self, queue_url: str, body: str, attributes: Mapping[str, Mapping[str, str]], *, delay_seconds: int = 0
    ) -> str:
        """SendMessage; the delay is clamped to SQS's 0..900 s, as SqsSender does."""
        self._fire("send")
        _check_body("SendMessage", body)
        for name, attribute in attributes.items():
            if not attribute.get("StringValue"):
                raise RequestRejected("SendMessage", "InvalidParameterValue", f"message attribute {name} is empty")
        message = SentMessage(
            queue_url,
            body,
            self._next_id(),
            {name: dict(attribute) for name, attribute in attributes.items()},
            max(0, min(MAX_DELAY_SECONDS, delay_seconds)),
        )
        self.sent.append(message)
        return message.message_id

    def send_batch(self, queue_url: str, bodies: Sequence[tuple[str, str]]) -> None:
        self._fire("send_batch")
        ids = [entry for entry, _ in bodies]
        if not 1 <= len(ids) <= MAX_BATCH or len(set(ids)) != len(ids):
            raise RequestRejected("SendMessageBatch", "InvalidParameterValue", f"bad batch entry ids {ids}")
        for _, body in bodies:
            _check_body("SendMessageBatch", body)
        refused = []
        for entry, body in bodies:
            if self._refused_entries:
                self._refused_entries -= 1
                refused.append(f"{entry}: InternalError")
            else:
                self.sent.append(SentMessage(queue_url, body, self._next_id(), entry_id=entry))
        if refused:
            raise TransientAwsError("SendMessageBatch", "PartialFailure", "; ".join(refused))

    def _next_id(self) -> str:
        return f"message-{len(self.sent) + 1}"


def _check_body(operation: str, body: str) -> None:
    if not body:
        raise RequestRejected(operation, "InvalidParameterValue", "the message body must not be empty")
