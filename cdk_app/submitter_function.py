"""The submitter Lambda: one ECS task per dedicated job (RunTask, Spot first, on-demand fallback)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.cluster import acknowledge_task_arns, task_arns
from cdk_app.config import AppConfig
from cdk_app.jobs_table import grant_jobs_access
from cdk_app.nag import acknowledge_wildcard
from cdk_app.python_function import PythonFunction
from cdk_app.queues import TrainingQueue
from cdk_app.retention import retention
from cdk_app.training_tasks import TrainingTasks

SUBMITTER_TIMEOUT = Duration.seconds(60)


class SubmitterFunction(Construct):
    """`self.function`, fed by the dispatch queue with partial batch responses."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        cluster: ecs.ICluster,
        dispatch: TrainingQueue,
        tasks: TrainingTasks,
        gpu_capacity_provider: str,
        subnets: list[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        table: dynamodb.ITableV2,
        artifacts: s3.IBucket,
        worker_queue: sqs.IQueue,
    ):
        super().__init__(scope, construct_id)
        fn = PythonFunction(
            self,
            "Submitter",
            handler="submitter.handler.handler",
            service_name="submitter",
            description="Launches one ECS task per training job from the dispatch queue",
            timeout=SUBMITTER_TIMEOUT,
            log_retention=retention(config.log_retention_days),
            powertools_layer_version=config.powertools_layer_version,
            environment={
                "JOBS_TABLE_NAME": table.table_name,
                "CLUSTER_NAME": cluster.cluster_name,
                "DISPATCH_QUEUE_URL": dispatch.queue.queue_url,
                "DISPATCH_DLQ_URL": dispatch.dlq.queue_url,
                "TASK_DEFINITIONS": _arn_map(self, tasks.fargate),
                "GPU_TASK_DEFINITIONS": _arn_map(self, tasks.gpu),
                "GPU_CAPACITY_PROVIDER": gpu_capacity_provider,
                "SUBNET_IDS": ",".join(subnet.subnet_id for subnet in subnets),
                "SECURITY_GROUP_IDS": security_group.security_group_id,
                "MAX_CONCURRENT_TASKS": str(config.max_concurrent_tasks),
                "MAX_NODES": str(config.max_nodes),
                "ARTIFACTS_BUCKET": artifacts.bucket_name,
                "WORKER_QUEUE_URL": worker_queue.queue_url,  # children of non-dedicated sweeps
            },
        )
        self.function = fn.function
        fn.function.add_event_source(
            event_sources.SqsEventSource(
                dispatch.queue,
                batch_size=config.submitter_batch_size,
                max_batching_window=Duration.seconds(config.submitter_batching_window_seconds),
                report_batch_item_failures=True,
                max_concurrency=config.submitter_max_concurrency,
            )
        )
        dispatch.queue.grant_send_messages(fn.role)  # deferred jobs go back with a delay
        dispatch.dlq.grant_send_messages(fn.role)  # rejected jobs go to the DLQ with their reason
        worker_queue.grant_send_messages(fn.role)  # the children of a non-dedicated array job or sweep
        grant_jobs_access(table, fn.role)
        _grant_run_tasks(fn.role, cluster, tasks)


def _arn_map(scope: Construct, definitions: dict[str, ecs.TaskDefinition]) -> str:
    """JSON object image name -> task definition ARN (tokens resolve at deploy time)."""
    return Stack.of(scope).to_json_string({name: d.task_definition_arn for name, d in definitions.items()})


def _grant_run_tasks(role: iam.IRole, cluster: ecs.ICluster, tasks: TrainingTasks) -> None:
    """RunTask and PassRole only for the training task definitions and their roles, in this cluster."""
    in_cluster = {"ArnEquals": {"ecs:cluster": cluster.cluster_arn}}
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ecs:RunTask"],
            resources=[d.task_definition_arn for d in tasks.all_definitions],
            conditions=in_cluster,
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ecs:TagResource"],
            resources=[task_arns(cluster)],
            conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
        )
    )
    # ListTasks takes no resource ARN; it is scoped to this cluster by the ecs:cluster condition.
    role.add_to_principal_policy(iam.PolicyStatement(actions=["ecs:ListTasks"], resources=["*"], conditions=in_cluster))
    acknowledge_wildcard(
        role, "*", "ecs:ListTasks has no resource-level permission; the ecs:cluster condition scopes it."
    )
    acknowledge_task_arns(role, cluster)
    pass_roles = {tasks.task_role.role_arn}
    pass_roles.update(d.obtain_execution_role().role_arn for d in tasks.all_definitions)
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=sorted(pass_roles),
            conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        )
    )
