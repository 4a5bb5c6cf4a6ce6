"""Alarms, a dashboard and an SNS topic for people.

The worker queue's backlog alarm is also the scaler's trigger (its state changes reach the scaler
through EventBridge); the scaler itself always reads live queue attributes, because SQS metrics
reach CloudWatch once a minute and can lag up to 15 minutes after an idle queue wakes
(aws-facts.md §3).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from cdk_app.config import AppConfig
from cdk_app.python_function import METRICS_NAMESPACE
from cdk_app.queues import TrainingQueue
from cdk_app.task_events_function import SERVICE_NAME as TASK_EVENTS_SERVICE

MINUTE = Duration.minutes(1)


class Alarms(Construct):
    """`self.backlog_alarm` triggers scaling; every alarm notifies `self.topic`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        worker: TrainingQueue,
        dispatch: TrainingQueue,
        load_balancer: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
    ):
        super().__init__(scope, construct_id)
        key = kms.Key(self, "TopicKey", enable_key_rotation=True, description="Encrypts the alarm topic")
        # CloudWatch publishes to the encrypted topic, so it may use the key (AWS managed keys forbid that).
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "Topic", master_key=key, enforce_ssl=True)
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        notify = cw_actions.SnsAction(self.topic)

        self.backlog_alarm = cloudwatch.Alarm(
            self,
            "WorkerBacklog",
            alarm_description="Jobs are waiting in the worker queue (also triggers the scaler)",
            metric=worker.queue.metric_approximate_number_of_messages_visible(period=MINUTE, statistic="Maximum"),
            threshold=config.backlog_alarm_messages,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarms = [
            *(
                cloudwatch.Alarm(
                    self,
                    f"{name}OldestMessage",
                    alarm_description=f"A job has waited too long in the {name.lower()} queue",
                    metric=queue.queue.metric_approximate_age_of_oldest_message(period=MINUTE, statistic="Maximum"),
                    threshold=config.oldest_message_alarm_seconds,
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
                for name, queue in (("Worker", worker), ("Dispatch", dispatch))
            ),
            *(
                cloudwatch.Alarm(
                    self,
                    f"{name}DeadLetters",
                    alarm_description=f"The {name.lower()} DLQ holds messages: inspect with `trainctl dlq list`",
                    metric=queue.dlq.metric_approximate_number_of_messages_visible(period=MINUTE, statistic="Maximum"),
                    threshold=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
                for name, queue in (("Worker", worker), ("Dispatch", dispatch))
            ),
            cloudwatch.Alarm(
                self,
                "FailedJobs",
                alarm_description="Training jobs ended FAILED (see the jobs table for the reason)",
                metric=cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name="JobsFailed",
                    dimensions_map={"service": TASK_EVENTS_SERVICE},
                    statistic="Sum",
                    period=Duration.minutes(5),
                ),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "Serving5xx",
                alarm_description="The model server answers with 5xx errors",
                metric=load_balancer.metrics.http_code_target(
                    elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=MINUTE, statistic="Sum"
                ),
                threshold=config.serving_5xx_alarm_count,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "ServingLatency",
                alarm_description="The model server's p95 response time is high",
                metric=target_group.metrics.target_response_time(period=MINUTE, statistic="p95"),
                threshold=config.serving_latency_alarm_seconds,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in alarms:
            alarm.add_alarm_action(notify)
        self.alarms = [self.backlog_alarm, *alarms]
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Queues: waiting and in flight",
                left=[
                    worker.queue.metric_approximate_number_of_messages_visible(label="worker: waiting"),
                    worker.queue.metric_approximate_number_of_messages_not_visible(label="worker: in flight"),
                    dispatch.queue.metric_approximate_number_of_messages_visible(label="dispatch: waiting"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Scaler decisions",
                left=[
                    cloudwatch.Metric(
                        namespace=METRICS_NAMESPACE,
                        metric_name="DesiredTasks",
                        dimensions_map={"service": "scaler"},
                        statistic="Maximum",
                    )
                ],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24),
        )
