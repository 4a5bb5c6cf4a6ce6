"""Fargate service of long-lived queue workers; its desired count belongs to the scaler Lambda."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.artifacts import JOBS_PREFIX, MODELS_PREFIX, grant_prefix
from cdk_app.cluster import acknowledge_task_arns, task_arns
from cdk_app.config import AppConfig
from cdk_app.images import acknowledge_image_pull, container_image
from cdk_app.jobs_table import grant_jobs_access
from cdk_app.nag import acknowledge
from cdk_app.retention import retention


class WorkerService(Construct):
    """Workers long-poll `queue`, protect their task while busy, and record job states in `table`.

    The template carries no DesiredCount (feature flag `@aws-cdk/aws-ecs:removeDefaultDesiredCount`):
    CloudFormation then keeps the live count on every update, so a redeploy never resets a running
    fleet (aws-cdk#13130). On first create ECS starts the service at 1 task and the scaler's first
    reconciliation brings it to what the queue needs (0 when empty, after the scale-in grace).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        cluster: ecs.ICluster,
        capacity_provider_strategies: list[ecs.CapacityProviderStrategy],
        task_subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        queue: sqs.IQueue,
        dead_letters: sqs.IQueue,
        table: dynamodb.ITableV2,
        artifacts: s3.IBucket,
    ):
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=config.worker_cpu,
            memory_limit_mib=config.worker_memory,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        definition.add_container(
            "worker",
            image=container_image(config.worker_image),
            memory_limit_mib=config.worker_memory,
            stop_timeout=Duration.seconds(config.worker_stop_timeout_seconds),
            # An init process as PID 1 forwards SIGTERM and reaps the worker's job processes.
            linux_parameters=ecs.LinuxParameters(self, "Linux", init_process_enabled=True),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="worker", log_group=self.log_group),
            environment={
                "WORKER_QUEUE_URL": queue.queue_url,
                "WORKER_DLQ_URL": dead_letters.queue_url,
                "JOBS_TABLE_NAME": table.table_name,
                "ARTIFACTS_BUCKET": artifacts.bucket_name,
                "WORKER_CONCURRENCY": str(config.jobs_per_worker),
                "WORKER_HEARTBEAT_SECONDS": str(config.worker_heartbeat_seconds),
                "WORKER_VISIBILITY_SECONDS": str(config.queue_visibility_seconds),
                "WORKER_SHUTDOWN_GRACE_SECONDS": str(max(1, config.worker_stop_timeout_seconds - 10)),
            },
        )
        acknowledge_image_pull(definition)
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=definition,
            capacity_provider_strategies=capacity_provider_strategies,
            vpc_subnets=task_subnets,
            security_groups=[security_group],
            assign_public_ip=False,
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        queue.grant_consume_messages(definition.task_role)
        dead_letters.grant_send_messages(definition.task_role)  # malformed messages, with their reason
        grant_jobs_access(table, definition.task_role)
        grant_prefix(artifacts, definition.task_role, JOBS_PREFIX, write=True)
        grant_prefix(artifacts, definition.task_role, MODELS_PREFIX, write=True)
        # Scale-in protection for its own task while busy, through the ECS agent endpoint.
        definition.task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
                resources=[task_arns(cluster)],
            )
        )
        acknowledge_task_arns(definition.task_role, cluster)
        acknowledge(definition, "AwsSolutions-ECS2", "Plain settings (queue URL, table and bucket names); no secrets.")
        self.task_role = definition.task_role
