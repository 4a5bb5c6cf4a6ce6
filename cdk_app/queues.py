"""A training queue with its dead-letter queue: SSE, TLS-only policies, redrive on repeated failure."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.nag import acknowledge

# Messages wait up to 14 days (the SQS maximum), so a job never expires while the fleet scales.
RETENTION = Duration.days(14)


class TrainingQueue(Construct):
    """`self.queue` carries JobSpec documents; `self.dlq` keeps what failed `max_receive_count` times."""

    def __init__(self, scope: Construct, construct_id: str, *, visibility_timeout: Duration, max_receive_count: int):
        super().__init__(scope, construct_id)
        self.dlq = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION,
            visibility_timeout=visibility_timeout,
            receive_message_wait_time=Duration.seconds(20),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=max_receive_count),
        )


class EventDeadLetters(Construct):
    """Where EventBridge parks events it could not deliver to a Lambda after its retries."""

    def __init__(self, scope: Construct, construct_id: str):
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION,
        )
        acknowledge(
            self.queue, "AwsSolutions-SQS3", "This queue is itself a dead-letter queue (for EventBridge targets)."
        )
