"""Builds the scaler's real ports (lazily, once per process)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws import clients as aws_clients
from aws.ecs_service import EcsWorkerService
from aws.sqs import SqsQueueDepth
from lifecycle.scaling import QueueDepthPort, WorkerServicePort
from scaler.settings import get_settings

__all__ = ["Ports", "client", "default_ports", "get_settings", "reset"]

READ_TIMEOUT_S = 10
"""Per attempt: with botocore's 4 attempts and their backoff, a decision's calls fit in the 30 s function timeout."""


@dataclass(frozen=True)
class Ports:
    queue: QueueDepthPort
    service: WorkerServicePort
    clock: Callable[[], float] = time.time
    """Epoch seconds (the surplus clock is stored as epoch seconds)."""


def client(service: str) -> Any:
    """The scaler's process-wide client for `service` (created on first use)."""
    return aws_clients.client(service, read_timeout=READ_TIMEOUT_S)


@functools.cache
def default_ports() -> Ports:
    settings = get_settings()
    return Ports(
        queue=SqsQueueDepth(client("sqs"), settings.queue_url),
        service=EcsWorkerService(client("ecs"), settings.cluster_name, settings.service_name),
    )


def reset() -> None:
    """Forget settings, clients and ports (tests change the environment between cases)."""
    default_ports.cache_clear()
    get_settings.cache_clear()
    aws_clients.reset_clients()
