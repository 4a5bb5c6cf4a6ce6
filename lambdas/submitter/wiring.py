"""Builds the submitter's real ports and its lifecycle config (lazily, once per process)."""

from __future__ import annotations

import functools

from aws import clients as aws_clients
from aws.ecs import EcsAdapter
from aws.job_store import DynamoJobStore
from aws.sqs import SqsSender
from jobs.jobspec import Deployment
from jobs.timeutil import utcnow
from lifecycle.launch import DispatchConfig
from lifecycle.launch_plan import LaunchConfig
from lifecycle.ports import Ports
from submitter.settings import get_settings

__all__ = ["default_ports", "dispatch_config", "reset"]


@functools.cache
def default_ports() -> Ports:
    settings = get_settings()
    return Ports(
        store=DynamoJobStore(aws_clients.client("dynamodb"), settings.table_name),
        ecs=EcsAdapter(aws_clients.client("ecs"), settings.cluster),
        queues=SqsSender(aws_clients.client("sqs")),
        clock=utcnow,
    )


@functools.cache
def dispatch_config() -> DispatchConfig:
    settings = get_settings()
    return DispatchConfig(
        dispatch_queue_url=settings.dispatch_queue_url,
        dispatch_dlq_url=settings.dispatch_dlq_url,
        worker_queue_url=settings.worker_queue_url,
        jobs_table=settings.table_name,
        launch=LaunchConfig(
            cluster=settings.cluster,
            task_definitions=settings.task_definitions,
            gpu_task_definitions=settings.gpu_task_definitions,
            gpu_capacity_provider=settings.gpu_capacity_provider,
            subnet_ids=settings.subnet_ids,
            security_group_ids=settings.security_group_ids,
            artifacts_bucket=settings.artifacts_bucket,
        ),
        deployment=Deployment(
            images=settings.task_definitions.keys(),
            gpu_images=settings.gpu_task_definitions.keys(),
            gpu_enabled=settings.gpu_enabled,
            max_nodes=settings.max_nodes,
        ),
        task_families=settings.task_families,
        max_concurrent_tasks=settings.max_concurrent_tasks,
    )


def reset() -> None:
    """Forget settings, config, clients and ports (tests change the environment between cases)."""
    default_ports.cache_clear()
    dispatch_config.cache_clear()
    get_settings.cache_clear()
    aws_clients.reset_clients()
