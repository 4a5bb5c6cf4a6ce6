"""Builds the submitter's real ports (lazily, once per process)."""

from __future__ import annotations

import functools

from aws import clients as aws_clients
from aws.ecs import EcsAdapter
from aws.job_store import DynamoJobStore
from aws.sqs import SqsSender
from jobs.timeutil import utcnow
from submitter.service import Ports
from submitter.settings import get_settings

__all__ = ["default_ports", "get_settings", "reset"]


@functools.cache
def default_ports() -> Ports:
    settings = get_settings()
    return Ports(
        store=DynamoJobStore(aws_clients.client("dynamodb"), settings.table_name),
        ecs=EcsAdapter(aws_clients.client("ecs"), settings.cluster),
        queues=SqsSender(aws_clients.client("sqs")),
        clock=utcnow,
    )


def reset() -> None:
    """Forget settings, clients and ports (tests change the environment between cases)."""
    default_ports.cache_clear()
    get_settings.cache_clear()
    aws_clients.reset_clients()
