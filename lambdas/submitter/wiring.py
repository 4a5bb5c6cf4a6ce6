"""Builds the submitter's real ports (lazily, once per process)."""

from __future__ import annotations

import functools

from common import aws
from common.store import JobStore
from common.timeutil import utcnow
from submitter.adapters import EcsAdapter
from submitter.service import Ports
from submitter.settings import get_settings

__all__ = ["default_ports", "get_settings", "reset"]


@functools.cache
def default_ports() -> Ports:
    settings = get_settings()
    return Ports(
        store=JobStore(aws.client("dynamodb"), settings.table_name),
        ecs=EcsAdapter(aws.client("ecs"), settings.cluster),
        queues=aws.SqsSender(aws.client("sqs")),
        clock=utcnow,
    )


def reset() -> None:
    """Forget settings, clients and ports (tests change the environment between cases)."""
    default_ports.cache_clear()
    get_settings.cache_clear()
    aws.reset_clients()
