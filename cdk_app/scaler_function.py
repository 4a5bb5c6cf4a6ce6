"""The scaler Lambda: sets the worker service's desired count from live queue depth.

Triggered by the backlog alarm's state changes, a reconciliation schedule and nudge events.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.config import AppConfig
from cdk_app.python_function import PythonFunction
from cdk_app.retention import retention
from contracts import NUDGE_DETAIL_TYPE, NUDGE_SOURCE


class ScalerFunction(Construct):
    """`self.function` and the three EventBridge rules that invoke it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        service: ecs.BaseService,
        queue: sqs.IQueue,
        trigger_alarms: Sequence[cloudwatch.IAlarm],
        event_dead_letters: sqs.IQueue,
    ):
        super().__init__(scope, construct_id)
        fn = PythonFunction(
            self,
            "Scaler",
            handler="scaler.handler.handler",
            service_name="scaler",
            description="Sets the worker service's desired count from live queue depth",
            timeout=Duration.seconds(30),
            log_retention=retention(config.log_retention_days),
            powertools_layer_version=config.powertools_layer_version,
            reserved_concurrency=1,  # one decision at a time: two triggers never race on UpdateService
            environment={
                "CLUSTER_NAME": service.cluster.cluster_name,
                "WORKER_SERVICE_NAME": service.service_name,
                "WORKER_QUEUE_URL": queue.queue_url,
                "MIN_WORKERS": str(config.min_workers),
                "MAX_WORKERS": str(config.max_workers),
                "JOBS_PER_WORKER": str(config.jobs_per_worker),
                "SCALE_IN_GRACE_SECONDS": str(config.scale_in_grace_seconds),
            },
        )
        self.function = fn.function
        queue.grant(fn.role, "sqs:GetQueueAttributes")
        fn.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "ecs:DescribeServices",
                    "ecs:UpdateService",
                    "ecs:TagResource",
                    "ecs:UntagResource",
                    "ecs:ListTagsForResource",
                ],
                resources=[service.service_arn],
            )
        )
        target = targets.LambdaFunction(
            fn.function,
            retry_attempts=4,
            max_event_age=Duration.minutes(10),
            dead_letter_queue=event_dead_letters,
        )
        events.Rule(
            self,
            "OnBacklogAlarm",
            description="Backlog alarm state changes trigger a scaling decision",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                resources=[alarm.alarm_arn for alarm in trigger_alarms],
            ),
            targets=[target],
        )
        events.Rule(
            self,
            "Reconcile",
            description="Periodic reconciliation (scale-in after the grace period, repairs)",
            schedule=events.Schedule.rate(Duration.minutes(config.reconcile_minutes)),
            targets=[target],
        )
        events.Rule(
            self,
            "OnNudge",
            description="Immediate decision on request (e.g. right after a submit)",
            event_pattern=events.EventPattern(source=[NUDGE_SOURCE], detail_type=[NUDGE_DETAIL_TYPE]),
            targets=[target],
        )
