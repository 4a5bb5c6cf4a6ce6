"""The scaler's dependencies, built once per process from the environment."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from scaler.adapters import EcsService, SqsQueue
from scaler.ports import QueuePort, ServicePort
from scaler.settings import Settings, load_settings


@dataclass(frozen=True)
class Deps:
    settings: Settings
    queue: QueuePort
    service: ServicePort
    clock: Callable[[], float] = time.time


@cache
def default_deps() -> Deps:
    settings = load_settings()
    return Deps(
        settings=settings,
        queue=SqsQueue(settings.queue_url),
        service=EcsService(settings.cluster_name, settings.service_name),
    )
