"""The task-events Lambda: turns ECS task state changes into job states (and retries).

Also runs a periodic reconcile pass for timeouts and for task events that never arrived.
"""

from __future__ import annotations

import json

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.cluster import acknowledge_task_arns, task_arns
from cdk_app.config import AppConfig
from cdk_app.jobs_table import grant_jobs_access
from cdk_app.python_function import PythonFunction
from cdk_app.retention import retention

SERVICE_NAME = "task-events"


class TaskEventsFunction(Construct):
    """`self.function` with a rule for "ECS Task State Change" events of this cluster and a schedule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        cluster: ecs.ICluster,
        dispatch_queue: sqs.IQueue,
        table: dynamodb.ITableV2,
        event_dead_letters: sqs.IQueue,
    ):
        super().__init__(scope, construct_id)
        fn = PythonFunction(
            self,
            "TaskEvents",
            handler="task_events.handler.handler",
            service_name=SERVICE_NAME,
            description="Records job states from ECS task state changes; retries interrupted jobs",
            timeout=Duration.seconds(60),
            log_retention=retention(config.log_retention_days),
            powertools_layer_version=config.powertools_layer_version,
            environment={
                "JOBS_TABLE_NAME": table.table_name,
                "CLUSTER_NAME": cluster.cluster_name,
                "DISPATCH_QUEUE_URL": dispatch_queue.queue_url,
                "FARGATE_PRICES": json.dumps(config.fargate_prices[config.region], sort_keys=True),
            },
        )
        self.function = fn.function
        grant_jobs_access(table, fn.role)
        acknowledge_task_arns(fn.role, cluster)
        dispatch_queue.grant_send_messages(fn.role)  # re-submits interrupted jobs (attempt + 1)
        fn.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks", "ecs:StopTask"],
                resources=[task_arns(cluster)],
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            )
        )
        target = targets.LambdaFunction(
            fn.function,
            retry_attempts=8,
            max_event_age=Duration.hours(6),
            dead_letter_queue=event_dead_letters,
        )
        events.Rule(
            self,
            "OnTaskStateChange",
            description="ECS task state changes of this cluster",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={"clusterArn": [cluster.cluster_arn]},
            ),
            targets=[target],
        )
        events.Rule(
            self,
            "Reconcile",
            description="Job timeouts and task events that never arrived",
            schedule=events.Schedule.rate(Duration.minutes(config.reconcile_minutes)),
            targets=[target],
        )
