"""Builds the task-events handler's lifecycle (lifecycle.task_watch) over the real ports, created lazily, once per
process, and its config from the settings."""

from __future__ import annotations

import functools

from aws import clients as aws_clients
from aws.ecs import EcsAdapter
from aws.job_store import DynamoJobStore
from aws.sqs import SqsSender
from jobs.timeutil import utcnow
from lifecycle.ports import Ports
from lifecycle.task_watch import TaskWatch, TaskWatchConfig
from task_events.settings import get_settings

__all__ = ["default_ports", "reset", "task_watch"]


@functools.cache
def default_ports() -> Ports:
    settings = get_settings()
    return Ports(
        store=DynamoJobStore(aws_clients.client("dynamodb"), settings.table_name),
        ecs=EcsAdapter(aws_clients.client("ecs"), settings.cluster),
        queues=SqsSender(aws_clients.client("sqs")),
        clock=utcnow,
    )


def task_watch(ports: Ports | None = None) -> TaskWatch:
    """The task watch over `ports` (default: the real ones), configured from the environment."""
    ports = ports or default_ports()
    settings = get_settings()
    config = TaskWatchConfig(
        cluster=settings.cluster, dispatch_queue_url=settings.dispatch_queue_url, prices=settings.prices
    )
    return TaskWatch(store=ports.store, ecs=ports.ecs, queues=ports.queues, clock=ports.clock, config=config)


def reset() -> None:
    default_ports.cache_clear()
    get_settings.cache_clear()
    aws_clients.reset_clients()
