"""The stack: composes one construct per concern and adds outputs and tags; no raw resources here."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack, Tags
from constructs import Construct

from cdk_app.alarms import Alarms
from cdk_app.artifacts import ArtifactsBucket
from cdk_app.cluster import TrainingCluster
from cdk_app.config import AppConfig
from cdk_app.jobs_table import JobsTable, grant_rendezvous_access
from cdk_app.network import Network
from cdk_app.queues import EventDeadLetters, TrainingQueue
from cdk_app.retention import retention
from cdk_app.scaler_function import ScalerFunction
from cdk_app.serving import ModelServing
from cdk_app.submitter_function import SUBMITTER_TIMEOUT, SubmitterFunction
from cdk_app.task_events_function import TaskEventsFunction
from cdk_app.training_tasks import TrainingTasks
from cdk_app.worker_service import WorkerService


class TrainingAutoscalerStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: object):
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        Tags.of(self).add("project", "ecs-training-autoscaler")
        log_retention = retention(config.log_retention_days)

        network = Network(self, "Network", nat_gateways=config.nat_gateways, log_retention=log_retention)
        cluster = TrainingCluster(self, "Cluster", config=config, vpc=network.vpc, task_subnets=network.task_subnets)
        jobs = JobsTable(self, "Jobs")
        artifacts = ArtifactsBucket(self, "Artifacts", checkpoint_retention_days=config.checkpoint_retention_days)
        worker_queue = TrainingQueue(
            self,
            "WorkerQueue",
            visibility_timeout=Duration.seconds(config.queue_visibility_seconds),
            max_receive_count=config.worker_max_receive_count,
        )
        # AWS asks for a source-queue visibility of at least 6x the consuming function's timeout.
        dispatch_queue = TrainingQueue(
            self,
            "DispatchQueue",
            visibility_timeout=Duration.seconds(6 * SUBMITTER_TIMEOUT.to_seconds()),
            max_receive_count=config.dispatch_max_receive_count,
        )
        tasks = TrainingTasks(self, "TrainingTasks", config=config, artifacts=artifacts.bucket)
        grant_rendezvous_access(jobs.table, tasks.task_role)  # ranks of distributed jobs publish / read rank 0
        workers = WorkerService(
            self,
            "Workers",
            config=config,
            cluster=cluster.cluster,
            capacity_provider_strategies=cluster.default_strategy,
            task_subnets=network.task_subnets,
            security_group=network.task_security_group,
            queue=worker_queue.queue,
            dead_letters=worker_queue.dlq,
            table=jobs.table,
            artifacts=artifacts.bucket,
        )
        serving = ModelServing(
            self,
            "Serving",
            config=config,
            cluster=cluster.cluster,
            task_subnets=network.task_subnets,
            artifacts=artifacts.bucket,
            access_logs=artifacts.access_logs,
        )
        alarms = Alarms(
            self,
            "Alarms",
            config=config,
            worker=worker_queue,
            dispatch=dispatch_queue,
            load_balancer=serving.service.load_balancer,
            target_group=serving.service.target_group,
        )
        event_dead_letters = EventDeadLetters(self, "EventDeadLetters")
        ScalerFunction(
            self,
            "Scaler",
            config=config,
            service=workers.service,
            queue=worker_queue.queue,
            trigger_alarms=[alarms.backlog_alarm],
            event_dead_letters=event_dead_letters.queue,
        )
        gpu = cluster.gpu_capacity_provider
        SubmitterFunction(
            self,
            "Submitter",
            config=config,
            cluster=cluster.cluster,
            dispatch=dispatch_queue,
            tasks=tasks,
            gpu_capacity_provider=gpu.capacity_provider_name if gpu else "",
            subnets=network.vpc.select_subnets(subnet_group_name="tasks").subnets,
            security_group=network.task_security_group,
            table=jobs.table,
            artifacts=artifacts.bucket,
            worker_queue=worker_queue.queue,
        )
        TaskEventsFunction(
            self,
            "TaskEvents",
            config=config,
            cluster=cluster.cluster,
            dispatch_queue=dispatch_queue.queue,
            table=jobs.table,
            event_dead_letters=event_dead_letters.queue,
        )

        outputs = {
            "WorkerQueueUrl": worker_queue.queue.queue_url,
            "WorkerDlqUrl": worker_queue.dlq.queue_url,
            "DispatchQueueUrl": dispatch_queue.queue.queue_url,
            "DispatchDlqUrl": dispatch_queue.dlq.queue_url,
            "JobsTableName": jobs.table.table_name,
            "ArtifactsBucketName": artifacts.bucket.bucket_name,
            "ClusterName": cluster.cluster.cluster_name,
            "WorkerServiceName": workers.service.service_name,
            "TrainingLogGroupName": tasks.log_group.log_group_name,
            "WorkerLogGroupName": workers.log_group.log_group_name,
            "ServingUrl": f"http://{serving.service.load_balancer.load_balancer_dns_name}",
            "AlarmTopicArn": alarms.topic.topic_arn,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
